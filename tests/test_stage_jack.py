"""Faults on real JACK ports, with the daemon in this process: a player's port that vanishes
while a key is held."""

from __future__ import annotations

import time

import mido
import pytest

from live.config import agent_spec
from live.daemon import Daemon, DaemonOptions
from live.daemon.snapshot import make_snapshot
from tests.jack import in_own_process, unique_client_name
from harness.jackd import NamedJackClient, RemotePlayer
from tests.midi_io.test_ports_jack import SETTLE


def test_a_vanished_players_held_keys_are_let_go(jack_server, melody_model_file):
    """The keyboard's port goes away with a key down: its note ends for the agent (the call
    closes and is answered at once, not seconds later) and for the synth (the passthrough
    note does not hang)."""
    keys = NamedJackClient(unique_client_name("keys"), "out")
    synth = NamedJackClient(unique_client_name("synth"), "in")
    options = DaemonOptions(
        backend="jack", input_ports=[keys.port_name], output_ports=[synth.port_name], passthrough=True,
        agents=[agent_spec({"model": str(melody_model_file), "silence": 2})], seed=1,
        client_name=unique_client_name("stage"),
    )
    try:
        with Daemon(options) as daemon:
            time.sleep(SETTLE)
            agent = daemon.session.agents[0]
            for _ in range(4):  # the dummy JACK server loses an event now and then: press again
                for note in (60, 64):
                    keys.send(mido.Message("note_on", note=note, velocity=90))
                daemon.run(0.4)
                if agent.state == "listening":
                    break
            assert agent.state == "listening"
            keys.send(mido.Message("note_off", note=60))  # 64 stays down
            daemon.run(0.1)
            keys.close()
            gone = time.perf_counter()
            released = None
            while time.perf_counter() - gone < 3.0 and agent.state == "listening":
                daemon.run(0.05)
                if released is None and any("vanished: released 1 held note" in line for line in daemon.log_lines):
                    released = time.perf_counter() - gone
            assert released is not None and released < 1.5, list(daemon.log_lines)
            assert agent.state != "listening"  # the call ended: the answer is on its way
            heard = [m for m in synth.messages() if m.type in ("note_on", "note_off")]
            assert sum(1 for m in heard if m.note == 64 and m.type == "note_on" and m.velocity) == sum(
                1 for m in heard if m.note == 64 and (m.type == "note_off" or m.velocity == 0)
            ), heard
    finally:
        keys.close()
        synth.close()


def _wait_for(synth: NamedJackClient | RemotePlayer, condition, seconds: float = 3.0, daemon: Daemon | None = None) -> list[mido.Message]:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if daemon is not None:
            daemon.run(0.05)
        else:
            time.sleep(0.05)
        heard = synth.messages()
        if condition(heard):
            break
    return synth.messages()


SILENCING = [(c, cc) for c in range(16) for cc in (120, 123)]


def test_the_daemon_silences_its_synth_at_start_and_the_daws_all_notes_off_and_stop_release_everything(jack_server):
    keys = NamedJackClient(unique_client_name("daw"), "out")
    synth = NamedJackClient(unique_client_name("synth"), "in")
    options = DaemonOptions(backend="jack", input_ports=[keys.port_name], output_ports=[synth.port_name], passthrough=True,
                            agents=[], client_name=unique_client_name("stage"))
    ccs = lambda heard: [(m.channel, m.control) for m in heard if m.type == "control_change"]  # noqa: E731
    try:
        with Daemon(options) as daemon:
            # a run killed with SIGKILL may have left notes sounding on this synth: they end first
            heard = _wait_for(synth, lambda h: len(ccs(h)) >= 32, daemon=daemon)
            assert ccs(heard)[:32] == SILENCING
            for kind, why in ((mido.Message("control_change", channel=3, control=123), "All Notes Off"),
                              (mido.Message("stop"), "MIDI Stop"),
                              (mido.Message("control_change", channel=0, control=120), "All Sound Off")):
                synth.received.clear()
                for _ in range(4):  # the dummy JACK server loses an event now and then
                    keys.send(mido.Message("note_on", channel=3, note=62, velocity=90))
                    if _wait_for(synth, lambda h: any(m.type == "note_on" for m in h), 1.0, daemon):
                        break
                assert daemon.schedulers[0].ledger.sounding() == [(3, 62)]
                keys.send(kind)
                heard = _wait_for(synth, lambda h: any(m.type == "note_off" for m in h), daemon=daemon)
                assert any(m.type == "note_off" and m.note == 62 for m in heard), (why, heard)
                assert daemon.schedulers[0].ledger.sounding() == [], why
                assert any(f"{why}: every note released" in line for line in daemon.log_lines)
    finally:
        keys.close()
        synth.close()


def test_the_panic_command_silences_a_synth_on_demand(jack_server, capsys):
    from live.cli import main

    synth = NamedJackClient(unique_client_name("synth"), "in")
    try:
        assert main(["panic", "--backend", "jack", "--output-port", synth.port_name]) == 0
        heard = _wait_for(synth, lambda h: len(h) >= 32)
        assert [(m.channel, m.control) for m in heard] == SILENCING
        assert "All Sound Off and All Notes Off on 16 channels" in capsys.readouterr().out
        assert main(["panic"]) == 1 and "--output-port" in capsys.readouterr().err
    finally:
        synth.close()


@pytest.mark.parametrize("fast", [False, True], ids=["seen down", "back within one supervisor pass"])
def test_the_daemon_survives_a_jack_server_restart(fast):
    """In a process of its own (tests.jack.in_own_process says why): restart_scenario."""
    run = in_own_process(f"from tests.test_stage_jack import restart_scenario; restart_scenario(fast={fast})")
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]


def restart_scenario(fast: bool = False) -> None:
    """jackd is killed (SIGKILL: it cannot clean up) and started again under its name: the
    daemon says so, its notes are released, its ports (virtual and connected) are registered
    again on the new server, the connection to the player's and the synth's ports is restored
    once they are back, and it plays on. ``fast``: the new server is started at once, before the
    daemon's loop runs again (its port supervisor may see only a server of another identity)."""
    from harness.jackd import RemotePlayer, start_jackd
    from live.midi_io.backends import port_names, resolve_backend

    server = start_jackd(period=256)
    name = server.name
    player = RemotePlayer(name)  # the keys and the synth: another program, in a process of its own
    options = DaemonOptions(
        backend="jack", input_ports=[player.keys_port], output_ports=[player.synth_port, None], passthrough=True,  # type: ignore[list-item]
        agents=[], client_name=f"{name}-stage",
    )
    daemon = Daemon(options)
    try:
        daemon.open()

        def note_reaches_the_synth(note: int) -> bool:
            for _ in range(4):
                player.messages()
                player.received.clear()
                player.send(mido.Message("note_on", note=note, velocity=90))
                if any(m.type == "note_on" and m.note == note for m in _wait_for(player, lambda h: bool(h), 1.0, daemon)):
                    return True
            return False

        assert note_reaches_the_synth(60)
        assert daemon.schedulers[0].ledger.sounding() == [(0, 60)]
        virtual = daemon.outputs[1].name  # what others connect to: it must come back as it was
        supervisor = daemon.supervisor
        if fast:  # hold the supervisor's thread (its listing clients kept), so its next pass sees only the new server
            supervisor._stop.set()
            supervisor._thread.join()
            supervisor._thread = None
        server.process.kill()
        server.process.wait(10)
        player.abandon()  # its clients died with the server
        if not fast:
            deadline = time.perf_counter() + 5
            while time.perf_counter() < deadline and not any("JACK server stopped" in line for line in daemon.log_lines):
                daemon.run(0.1)
            assert any("the JACK server stopped" in line for line in daemon.log_lines), list(daemon.log_lines)
            assert daemon.schedulers[0].ledger.sounding() == []  # held notes released first
            assert not any(p.up for p in (*daemon.inputs, *daemon.outputs))

        server = server.restart()  # the daemon must not see another server meanwhile
        restarted = time.perf_counter()
        if fast:
            supervisor.start()
        while time.perf_counter() - restarted < 10 and not any("JACK server is back" in line for line in daemon.log_lines):
            daemon.run(0.1)
        back = time.perf_counter() - restarted
        assert any("the JACK server is back" in line for line in daemon.log_lines), list(daemon.log_lines)
        assert any("the JACK server stopped" in line for line in daemon.log_lines), list(daemon.log_lines)
        assert daemon.schedulers[0].ledger.sounding() == []  # the held note was released
        assert back < 5, back
        assert virtual in port_names(resolve_backend("jack"), "input"), (virtual, port_names(resolve_backend("jack"), "input"), [p.name for p in (*daemon.inputs, *daemon.outputs)])  # the virtual port, under its name
        player = RemotePlayer(name)  # the player and the synth come back too
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline and not all(p.up for p in (*daemon.inputs, *daemon.outputs)):
            daemon.run(0.1)
        assert all(p.up for p in (*daemon.inputs, *daemon.outputs))
        time.sleep(SETTLE)
        assert note_reaches_the_synth(62)  # it plays on, through restored connections
    finally:
        daemon.close()
        player.close()
        server.stop()


@pytest.mark.parametrize("backend", ["jack-rtmidi", "jack"])
def test_a_flood_past_the_drivers_queue_is_counted_and_nothing_reaches_the_terminal(jack_server, capfd, caplog, backend):
    """RtMidi drops what overflows its input queue and prints a line per message: the daemon
    counts those lines as dropped input and keeps them off the terminal (the panel's screen).
    Our JACK binding's reader empties its ring as input comes, so there the daemon's own queue
    (4096 messages) overflows while the loop does not read: counted the same way."""
    keys = NamedJackClient(unique_client_name("flood"), "out")
    options = DaemonOptions(backend=backend, input_ports=[keys.port_name], agents=[], client_name=unique_client_name("stage"),
                            take_library_output=True)
    try:
        with Daemon(options) as daemon:
            time.sleep(SETTLE)
            sent = keys.flood(12)  # the loop does not read meanwhile: RtMidi's queue (8192) overflows
            time.sleep(0.3)
            daemon.run(1.0)
            received = daemon.counters.notes_in
            driver = daemon.library_output.dropped
            assert (driver if backend == "jack-rtmidi" else daemon.dropped) > 0, (received, sent)
            assert received + daemon.dropped <= sent and received + daemon.dropped >= 0.99 * sent, (received, daemon.dropped, sent)
            assert make_snapshot(daemon).dropped == daemon.dropped  # the panel's "dropped"
    finally:
        keys.close()
    err = capfd.readouterr().err
    assert "queue limit" not in err, err[-500:]
    summary = "the MIDI driver dropped" if backend == "jack-rtmidi" else "dropped (input queue full: a flood)"
    assert summary in caplog.text  # one summary line in the log


def test_a_midi_clock_that_races_then_stops_mid_bar_leaves_no_note_sounding(jack_server, melody_model_file):
    """The DAW's clock runs at 10 kHz (a broken sender) while the player plays and the agent
    answers, then stops mid-bar: every note the daemon sounded ends."""
    daw = NamedJackClient(unique_client_name("daw"), "out")
    synth = NamedJackClient(unique_client_name("synth"), "in")
    options = DaemonOptions(
        backend="jack", input_ports=[daw.port_name], output_ports=[synth.port_name], clock="midi", clock_port=daw.port_name,
        agents=[agent_spec({"model": str(melody_model_file), "silence": 1, "response_quantize": "step"})], seed=3,
        client_name=unique_client_name("stage"), max_note_seconds=2.0,
    )
    try:
        with Daemon(options) as daemon:
            time.sleep(SETTLE)
            daw.send(mido.Message("start"))
            end = time.perf_counter() + 1.5
            pulses = 0
            while time.perf_counter() < end:
                for _ in range(10):
                    daw.send(mido.Message("clock"))
                pulses += 10
                phase = pulses % 1200  # a phrase of three held notes, then silence for the answer
                if phase in (0, 120, 240):
                    daw.send(mido.Message("note_on", note=60 + phase // 60, velocity=90))
                elif phase in (110, 230, 350):
                    daw.send(mido.Message("note_off", note=60 + (phase - 110) // 60))
                daemon.run(0.001)
            for _ in range(7):  # a little more at a sane pace, then Stop in the middle of a bar
                daw.send(mido.Message("clock"))
                daemon.run(0.02)
            daw.send(mido.Message("stop"))
            daemon.run(0.5)
            assert daemon.schedulers[0].ledger.sounding() == []
        heard = [m for m in synth.messages() if m.type in ("note_on", "note_off", "control_change")]
        sounding: set[tuple[int, int]] = set()
        for m in heard:
            if m.type == "note_on" and m.velocity:
                sounding.add((m.channel, m.note))
            elif m.type in ("note_on", "note_off"):
                sounding.discard((m.channel, m.note))
            elif m.control in (120, 123):
                sounding = {k for k in sounding if k[0] != m.channel}
        assert sounding == set(), heard[-20:]
        assert sum(1 for m in heard if m.type == "note_on" and m.velocity) > 0  # the agent did answer
    finally:
        daw.close()
        synth.close()
