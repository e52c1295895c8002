"""Port matching, the input queue, backend choice and the supervisor's backoff, in-process."""

from __future__ import annotations

import itertools
import logging
import os
import socket
import subprocess
import threading
import time
import uuid

import mido
import pytest

from live.errors import BackendError, ConfigFileError, LiveError, PortNotFoundError
from live.midi_io import jack as jack_binding
from live.midi_io import backends, names, ports
from live.midi_io.backends import API_IDS, Backend, resolve_backend
from live.midi_io.names import match_port
from live.midi_io.ports import channel_filter
from live.midi_io.supervisor import PortSupervisor
from live.midi_io.testing import MemoryInput, MemoryOutput

# match_port


def test_an_exact_name_wins():
    names = ["Synth:Port 1", "Synth:Port 10"]
    assert match_port("Synth:Port 10", names, "output") == "Synth:Port 10"
    assert match_port("Synth:Port 1", names, "output") == "Synth:Port 1"


@pytest.mark.parametrize(
    "names",
    [
        ["X:Port 1", "X:Port 10"],
        ["X:Port 10", "X:Port 1"],
        ["USB:USB Port 1 20:0", "USB:USB Port 10 20:9"],
        ["USB:USB Port 10 20:9", "USB:USB Port 1 20:0"],
    ],
)
def test_port_1_never_picks_port_10_and_port_10_never_picks_port_1(names):
    one = next(n for n in names if "Port 1 " in n + " ")
    ten = next(n for n in names if "Port 10" in n)
    assert match_port("Port 1", names, "input") == one
    assert match_port("port 1", names, "input") == one
    assert match_port("Port 10", names, "input") == ten


def test_a_unique_case_insensitive_substring_matches():
    names = ["Midi Through:Midi Through Port-0 14:0", "Keystation 49:Keystation 49 MIDI 1 24:0"]
    assert match_port("keystation", names, "input") == names[1]
    assert match_port("THROUGH", names, "input") == names[0]


def test_a_name_equal_but_for_case_wins_over_longer_names_containing_it():
    names = ["piano", "Piano:Piano out", "PIANO"]
    assert match_port("Piano:piano OUT", names, "output") == "Piano:Piano out"
    with pytest.raises(PortNotFoundError) as caught:
        match_port("Piano", names, "output")  # "piano" and "PIANO" equal it ignoring case
    assert set(caught.value.candidates) == {"piano", "PIANO"}


def test_an_ambiguous_substring_is_an_error_listing_the_candidates():
    names = ["Keys:out", "Pads:out", "Drums:in"]
    with pytest.raises(PortNotFoundError) as caught:
        match_port("out", names, "output")
    error = caught.value
    assert isinstance(error, LiveError) and isinstance(error, LookupError)
    assert error.candidates == ["Keys:out", "Pads:out"]
    assert "'out' matches 2 MIDI output ports: Keys:out, Pads:out" in str(error)
    assert "2: Drums:in" in str(error)


def test_a_word_matching_several_names_is_ambiguous():
    names = ["X:Port 1", "X:Port 10", "Y:Port 1"]
    with pytest.raises(PortNotFoundError) as caught:
        match_port("Port 1", names, "input")
    assert caught.value.candidates == names  # all contain it; two as a whole word: no guess
    with pytest.raises(PortNotFoundError):
        match_port("Port", names, "input")


def test_a_missing_name_lists_every_port_with_its_index():
    names = ["A:out", "B:out"]
    with pytest.raises(PortNotFoundError) as caught:
        match_port("drums", names, "input")
    message = str(caught.value)
    assert "'drums'" in message and "0: A:out" in message and "1: B:out" in message
    assert caught.value.ports == names and caught.value.candidates == []


def test_no_ports_at_all_says_so():
    with pytest.raises(PortNotFoundError, match=r"\(none\)"):
        match_port("anything", [], "output")
    with pytest.raises(PortNotFoundError):
        match_port("  ", ["A"], "output")


def test_an_integer_is_an_index():
    names = ["play-1a2b3c4d:out", "play-99ffee00:out"]
    assert match_port("0", names, "input") == names[0]
    assert match_port("1", names, "input") == names[1]  # the "1" inside names[0] is not a word
    with pytest.raises(PortNotFoundError) as caught:
        match_port("2", names, "input")
    assert "play-1a2b3c4d:out" in str(caught.value)


def test_an_integer_that_is_both_an_index_and_a_word_must_agree():
    assert match_port("0", ["Synth 0", "Other"], "output") == "Synth 0"
    with pytest.raises(PortNotFoundError) as caught:
        match_port("1", ["Synth 1", "Other"], "output")
    assert set(caught.value.candidates) == {"Synth 1", "Other"}
    assert match_port("3", ["Synth 3", "Other"], "output") == "Synth 3"  # no index 3


# The input queue (the real driver callback of MidiInput, without a driver)


def test_a_flood_is_counted_and_dropped_without_blocking():
    port = MemoryInput(capacity=1000)
    event = ([0x90, 60, 100], 0.0)
    flood = 100_000
    worker = threading.Thread(target=lambda: [port._on_event(event) for _ in range(flood)])
    worker.start()
    worker.join(60)  # nobody reads: the callback must still return every time
    assert not worker.is_alive()
    assert (port.received, port.dropped, port.pending) == (1000, flood - 1000, 1000)
    stamped = list(port.iter_stamped())
    assert len(stamped) == 1000 and port.pending == 0
    stamps = [t for t, _ in stamped]
    assert stamps == sorted(stamps)
    assert all(m.copy(time=0) == mido.Message("note_on", note=60, velocity=100) for _, m in stamped)
    port._on_event(event)  # room again
    assert port.received == 1001 and port.dropped == flood - 1000


def test_a_flood_while_a_consumer_drains_loses_nothing_it_counts():
    port = MemoryInput(capacity=64)
    flood = 50_000
    got = []
    done = threading.Event()

    def consume():
        while not done.is_set() or port.pending:
            got.extend(port.iter_stamped())

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(flood):
        port._on_event(([0xB0, 1, i % 128], 0.0))
    done.set()
    consumer.join(60)
    assert port.received + port.dropped == flood
    assert len(got) == port.received
    assert [t for t, _ in got] == sorted(t for t, _ in got)


def test_messages_carry_their_perf_counter_stamp():
    port = MemoryInput()
    before = time.perf_counter()
    port.inject_bytes([0x90, 64, 1])
    after = time.perf_counter()
    port.inject(mido.Message("note_off", note=64), stamp=123.5)
    stamp, message = port.poll_stamped()
    assert before <= stamp <= after and message.time == stamp
    assert message.copy(time=0) == mido.Message("note_on", note=64, velocity=1)
    assert port.poll_stamped() == (123.5, mido.Message("note_off", note=64, time=123.5))
    assert port.poll_stamped() is None


def test_mido_api_returns_messages_with_the_stamp_in_time():
    port = MemoryInput()
    port.inject(mido.Message("control_change", control=7, value=100), stamp=5.0)
    port.inject(mido.Message("clock"), stamp=6.0)
    assert port.poll() == mido.Message("control_change", control=7, value=100, time=5.0)
    assert list(port.iter_pending()) == [mido.Message("clock", time=6.0)]
    assert port.receive(block=False) is None


def test_clock_sysex_and_active_sensing_pass_through_and_garbage_is_counted():
    port = MemoryInput()
    for data in ([0xF8], [0xFE], [0xF0, 1, 2, 3, 0xF7], [0xFA], [0x90, 200, 1], [0x80]):
        port.inject_bytes(data, stamp=1.0)
    types = [m.type for _, m in port.iter_stamped()]
    assert types == ["clock", "active_sensing", "sysex", "start"]
    assert port.malformed == 2 and port.received == 6


def test_receive_stamped_waits_for_a_message_from_another_thread():
    port = MemoryInput()
    assert port.receive_stamped(timeout=0.01) is None
    timer = threading.Timer(0.05, port.inject, args=(mido.Message("note_on", note=1),))
    timer.start()
    got = port.receive_stamped(timeout=10)
    timer.join()
    assert got is not None and got[1] == mido.Message("note_on", note=1, time=got[0])


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        MemoryInput(capacity=0)


def test_memory_output_records_messages_and_raw_bytes():
    out = MemoryOutput()
    out.send(mido.Message("note_on", note=60, velocity=90))
    assert out.send_raw(bytes([0x80, 60, 0]))
    assert out.messages == [mido.Message("note_on", note=60, velocity=90), mido.Message("note_off", note=60, velocity=0)]
    out.close()
    assert not out.send_raw([0xF8]) and out.dropped == 1


# --input-channel


def test_channel_filter_numbers_channels_from_1_and_lets_system_messages_through():
    keep = channel_filter([1, 10])
    assert keep(mido.Message("note_on", channel=0))
    assert keep(mido.Message("note_on", channel=9))
    assert not keep(mido.Message("note_on", channel=1))
    assert keep(mido.Message("clock")) and keep(mido.Message("sysex", data=[1]))
    assert channel_filter(None)(mido.Message("note_on", channel=5))
    with pytest.raises(ConfigFileError, match="17"):
        channel_filter([17])


# Backends


@pytest.fixture
def facts(monkeypatch):
    """Set the platform facts resolve_backend reads; JACK is probed only when allowed."""
    state = {"platform": "linux", "compiled": ["alsa", "jack"], "seq": True, "jack": False, "jack_probes": 0}

    def jack_running():
        state["jack_probes"] += 1
        return state["jack"]

    monkeypatch.setattr(backends, "current_platform", lambda: state["platform"])
    monkeypatch.setattr(backends, "compiled_backends", lambda: list(state["compiled"]))
    monkeypatch.setattr(backends, "alsa_sequencer_present", lambda: state["seq"])
    monkeypatch.setattr(backends, "jack_server_running", jack_running)
    return state


def test_auto_on_linux_takes_alsa_when_its_sequencer_exists(facts):
    facts["jack"] = True
    assert resolve_backend("auto") == Backend("alsa", API_IDS["alsa"])
    assert facts["jack_probes"] == 0


def test_auto_on_linux_without_alsa_falls_back_to_a_running_jack(facts):
    facts.update(seq=False, jack=True)
    assert resolve_backend("auto").name == "jack"
    facts.update(seq=True, compiled=["jack"])
    assert resolve_backend("auto").name == "jack"


def test_auto_with_nothing_usable_lists_what_it_tried(facts):
    facts.update(seq=False, jack=False)
    with pytest.raises(BackendError) as caught:
        resolve_backend("auto")
    message = str(caught.value)
    assert "/dev/snd/seq" in message and "no JACK server" in message and "linux" in message


@pytest.mark.parametrize("platform, native", [("darwin", "coremidi"), ("win32", "winmm")])
def test_auto_takes_the_platforms_own_backend(facts, platform, native):
    facts.update(platform=platform, compiled=[native, "jack"])
    assert resolve_backend("auto").name == native
    facts.update(compiled=["jack"], jack=True)
    assert resolve_backend("auto").name == "jack"


def test_an_explicit_backend_is_checked(facts):
    with pytest.raises(BackendError, match="no JACK server"):
        resolve_backend("jack")
    with pytest.raises(BackendError, match="built without it.*alsa, jack"):
        resolve_backend("coremidi")
    facts["seq"] = False
    with pytest.raises(BackendError, match="/dev/snd/seq"):
        resolve_backend("ALSA")
    facts["jack"] = True
    assert resolve_backend("jack") == Backend("jack", API_IDS["jack"], native=jack_binding.available())
    assert resolve_backend("jack-rtmidi") == Backend("jack", API_IDS["jack"], native=False)
    with pytest.raises(BackendError, match="auto, alsa, jack, jack-rtmidi, coremidi, winmm"):
        resolve_backend("pulse")


def test_windows_has_no_virtual_ports_and_says_what_to_use(facts):
    winmm = Backend("winmm", API_IDS["winmm"])
    assert not winmm.virtual_ports and Backend("jack", API_IDS["jack"]).virtual_ports
    with pytest.raises(BackendError) as caught:
        ports.MidiInput(backend=winmm)
    assert "loopMIDI" in str(caught.value) and "Windows MIDI Services" in str(caught.value)
    with pytest.raises(BackendError, match="loopMIDI"):
        ports.MidiOutput(backend=winmm)


def test_probing_for_jack_never_starts_a_server(monkeypatch):
    name = f"nobody-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    monkeypatch.delenv("JACK_NO_START_SERVER", raising=False)
    if "jack" not in backends.compiled_backends():
        pytest.skip("python-rtmidi built without JACK")
    assert backends.jack_server_running() is False
    time.sleep(0.2)
    started = subprocess.run(["pgrep", "-f", name], check=False, capture_output=True, text=True).stdout
    assert started == ""
    with pytest.raises(BackendError, match=name):
        resolve_backend("jack")


def test_a_running_server_that_refuses_the_probe_for_a_moment_is_running(monkeypatch):
    """A server whose socket answers but which refuses a client (just started, or its cycle held
    up) is asked again: one refusal does not make "no JACK server is running"."""
    asked = []

    def new_client(backend, kind, name, tries=1, port_name=None):
        asked.append(tries)  # new_client itself asks up to ``tries`` times
        return object()

    monkeypatch.setattr(backends, "new_client", new_client)
    monkeypatch.setattr(backends, "delete_client", lambda client: None)
    monkeypatch.setattr(backends, "compiled_backends", lambda: ["jack"])
    monkeypatch.setattr(backends, "jack_server_identity", lambda: (1, 2))
    assert backends.jack_server_running() and asked == [backends.CLIENT_TRIES]
    monkeypatch.setattr(backends, "jack_server_identity", lambda: None)  # no socket: one question
    asked.clear()
    assert backends.jack_server_running() and asked == [1]


@pytest.fixture
def unstarted_jack_server(monkeypatch):
    """The name of a JACK server that is not running yet (this process's clients will ask it)."""
    from harness.jackd import missing

    if "jack" not in backends.compiled_backends() or missing():
        if os.environ.get("CI"):
            pytest.fail(f"JACK must be usable in CI: {missing()}")
        pytest.skip(missing() or "python-rtmidi built without JACK")
    name = f"late-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    return name


def test_a_refused_client_is_asked_for_again_and_a_server_that_comes_up_meanwhile_is_used(unstarted_jack_server, caplog):
    name = unstarted_jack_server
    jack = Backend("jack", API_IDS["jack"])
    server: list[subprocess.Popen] = []
    starter = threading.Timer(0.3, lambda: server.append(subprocess.Popen(
        ["jackd", "--no-realtime", "-p", "128", "-n", name, "-d", "dummy", "-r", "48000", "-p", "64"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    starter.start()
    try:
        with caplog.at_level(logging.WARNING, logger="live.midi_io"):
            client = backends.new_client(jack, "output", "late-comer")
        try:
            client.open_virtual_port("out")
            assert "late-comer:out" in backends.port_names(jack, "input")
        finally:
            client.close_port()
            client.delete()
        assert "refused a client" in caplog.text and "asking again" in caplog.text
    finally:
        starter.join()
        for process in server:
            process.terminate()
            process.wait(30)


def test_a_client_refused_every_time_is_one_clear_error(unstarted_jack_server):
    started = time.perf_counter()
    with pytest.raises(BackendError, match=f"refused a client {backends.CLIENT_TRIES} times"):
        backends.new_client(Backend("jack", API_IDS["jack"]), "input", "nobody-home")
    assert time.perf_counter() - started >= (backends.CLIENT_TRIES - 1) * backends.CLIENT_RETRY_SECONDS
    # the port supervisor asks once per pass: its passes, with their backoff, are its retries
    started = time.perf_counter()
    assert PortSupervisor()._names(Backend("jack", API_IDS["jack"]), "input") is None
    assert time.perf_counter() - started < backends.CLIENT_RETRY_SECONDS


def test_list_ports_text_numbers_inputs_and_outputs(monkeypatch):
    monkeypatch.setattr(names, "resolve_backend", lambda choice: Backend("jack", API_IDS["jack"]))
    monkeypatch.setattr(names, "list_ports", lambda backend: (["a:out", "b:out"], []))
    text = names.list_ports_text("jack")
    assert "MIDI backend: jack" in text
    assert "  0: a:out\n  1: b:out" in text
    outputs = text.split("Outputs")[1]
    assert "(none)" in outputs and "a:out" not in outputs
    assert "'magenta-live in'" in text and "'magenta-live out'" in text


# The supervisor's bookkeeping, with a fake port and a fake port list


class FakePort:
    kind = "input"
    virtual = False
    closed = False

    def __init__(self, remote):
        self.remote = remote
        self.backend = Backend("jack", API_IDS["jack"])
        self.up = True
        self.present = True
        self.reopen_attempts = 0

    def _lost_client(self):
        return False

    def _go_down(self):
        self.up = False

    def _reopen(self):
        self.reopen_attempts += 1
        self.up = self.present
        return self.present


def test_supervisor_reports_a_vanished_port_and_retries_with_growing_backoff(monkeypatch, caplog):
    """Every 0.1 s for its first 2 s down (a remote back at once, as after a JACK restart, is
    found at once), then 0.25 s, the wait doubling up to 5 s."""
    port = FakePort("player:out")
    supervisor = PortSupervisor([port], interval=0.5, min_backoff=0.25, max_backoff=5.0, fast_retry=0.1, fast_for=2.0)
    monkeypatch.setattr(supervisor, "_names", lambda backend, kind: ["player:out"] if port.present else [])
    caplog.set_level(logging.INFO, logger="live.midi_io")

    assert supervisor.check(now=0.0) > 0 and port.up and port.reopen_attempts == 0
    port.present = False
    supervisor.check(now=1.0)
    assert not port.up and "'player:out' vanished" in caplog.text

    attempts = []
    now = 1.0
    for _ in range(28):  # jump to each due time and fail
        watch = supervisor._watched[port]
        now = watch.due
        supervisor.check(now=now - 0.001)  # not due yet: no attempt
        before = port.reopen_attempts
        supervisor.check(now=now)
        assert port.reopen_attempts == before + 1
        attempts.append(now)
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(attempts)]
    k = gaps.index(0.25)  # the first wait after the fast ones
    assert gaps[:k] == [0.1] * k and 1.95 <= attempts[k] - 1.0 <= 2.1  # every 0.1 s for its first 2 s down
    assert gaps[k:] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0][: len(gaps) - k] and len(gaps) - k >= 6
    assert attempts[0] == pytest.approx(1.1)

    port.present = True
    supervisor.check(now=supervisor._watched[port].due)
    assert port.up and "'player:out' is back" in caplog.text
    assert supervisor._watched[port].backoff == 0.25


def test_supervisor_leaves_virtual_and_closed_ports_alone(monkeypatch):
    virtual, closed = FakePort(None), FakePort("x:out")
    virtual.virtual, closed.closed = True, True
    supervisor = PortSupervisor([virtual, closed])
    monkeypatch.setattr(supervisor, "_names", lambda backend, kind: [])
    supervisor.check(now=0.0)
    assert virtual.up and closed.up and closed not in supervisor._watched



def test_a_new_jackd_behind_a_killed_ones_socket_is_not_a_server_yet(monkeypatch):
    """A jackd that starts under the name of one killed with SIGKILL is visible before it has
    replaced the dead server's socket file. Until its own socket answers there is no server:
    taking (the dead socket, the new pid) for one would make the new socket read as a second
    restart, and drop every port that had just come back."""
    name = f"mltest-{uuid.uuid4().hex[:8]}"
    path = f"/dev/shm/jack_{name}_{os.getuid()}_0"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    monkeypatch.setattr(backends, "_jackd_pid", lambda _name: os.getpid())  # "the new jackd"
    monkeypatch.setattr(backends, "_JACKD_PIDS", {})
    monkeypatch.setattr(backends, "_ANSWERED", {})
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()  # the killed server's file: nobody accepts
    fresh = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        assert backends.jack_server_identity() is None
        assert backends.jack_server_identity() is None  # asked again at every pass, not cached
        os.unlink(path)  # the new jackd replaces the file
        fresh.bind(path)
        fresh.listen(4)
        assert backends.jack_server_identity() == (os.stat(path).st_ino, os.getpid())
        fresh.close()  # once answered, the same identity is not asked again
        assert backends.jack_server_identity() == (os.stat(path).st_ino, os.getpid())
    finally:
        fresh.close()
        os.unlink(path)


def test_a_killed_jack_servers_socket_is_not_a_running_server(monkeypatch):
    """jackd killed with SIGKILL leaves its request socket file behind. Where no jackd process
    is visible (a container, or the only server was the one killed), the supervisor must not
    take that file for a server that restarted: it would register its ports on a dead server."""
    name = f"mltest-{uuid.uuid4().hex[:8]}"
    path = f"/dev/shm/jack_{name}_{os.getuid()}_0"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    monkeypatch.setattr(backends, "_jackd_pid", lambda _name: 0)  # no jackd in sight
    monkeypatch.setattr(backends, "_JACKD_PIDS", {})
    assert backends.jack_server_identity() is None  # no socket at all
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)
        server.listen(1)
        assert backends.jack_server_identity() == (os.stat(path).st_ino, 0)  # a server behind it
        server.close()  # as SIGKILL leaves it: the file stays, nobody accepts
        assert os.path.exists(path)
        assert backends.jack_server_identity() is None
    finally:
        server.close()
        os.unlink(path)
