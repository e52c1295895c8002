"""The daemon's command path (CC knobs, keys, the panel) on real JACK ports, in this process."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import mido
import pytest

from live.config import ControlMap, agent_spec
from live.daemon import Daemon, DaemonOptions
from live.protocol import Command
from tests.jack import unique_client_name


@pytest.fixture
def daemon(jack_server, melody_model_file, tmp_path):
    spec = agent_spec({"model": str(melody_model_file)})
    options = DaemonOptions(
        backend="jack", agents=[spec], bpm=120.0, seed=1, client_name=unique_client_name("cmd"),
        controls=ControlMap(), learn_file=str(tmp_path / "live.toml"), record=None,
    )
    with Daemon(options) as d:
        yield d


def run(daemon: Daemon, seconds: float = 0.15) -> None:
    daemon.snapshot()  # a watcher: the loop makes snapshots only while someone reads them
    daemon.run(seconds)


def test_the_internal_clock_starts_when_the_loop_does(daemon):
    # ticks that fell due before the loop ran would reach the agents late
    assert not daemon.clock.running
    run(daemon, 0.05)
    assert daemon.clock.running


def test_tempo_start_stop_and_panic(daemon):
    daemon.send_command(Command("tempo", value=90.0))
    run(daemon)
    assert daemon.clock.bpm == pytest.approx(90.0) and daemon.session.agents[0].seconds_per_tick == pytest.approx(60 / (90 * 24))
    daemon.send_command(Command("tempo", delta=10.0))
    run(daemon)
    assert daemon.clock.bpm == pytest.approx(100.0)
    daemon.send_command(Command("start_stop"))
    run(daemon)
    assert not daemon.clock.running and daemon.session.agents[0].state == "idle"
    daemon.send_command(Command("start_stop"))
    run(daemon)
    assert daemon.clock.running
    daemon.send_command(Command("panic"))
    run(daemon)
    assert "panic: all notes off" in daemon.snapshot().log


def test_a_model_swaps_while_the_clock_runs(daemon, melody_model_file, tmp_path):
    before = daemon.clock.tick
    daemon.send_command(Command("model", value=str(melody_model_file)))
    daemon.send_command(Command("model", value=str(tmp_path / "missing.npz")))
    run(daemon, 0.6)  # loaded on the loader thread, swapped in on the next sixteenth
    assert daemon.clock.tick > before and daemon.clock.running
    log = daemon.snapshot().log
    assert any("call-response with attention_rnn" in line for line in log)
    assert any("missing.npz" in line for line in log)  # a failed swap says so and keeps the agent
    assert daemon.session.agents[0].model.config_id == "attention_rnn"


def test_cc_knobs_steer_and_learn_maps_a_new_control(daemon, tmp_path):
    now = time.perf_counter()
    daemon.handle(now, mido.Message("control_change", control=21, value=127))  # default: temperature
    daemon.handle(now, mido.Message("control_change", control=22, value=0))  # density
    run(daemon)
    params = daemon.session.agents[0].params
    assert (params.temperature, params.density) == (2.0, 0.0)
    daemon.options.learn = True
    daemon.handle(now, mido.Message("control_change", control=74, value=90))
    run(daemon)
    assert daemon.snapshot().learning.startswith("CC 74")
    daemon.send_command(Command("learn", value="density"))
    run(daemon)
    daemon.handle(now, mido.Message("control_change", control=74, value=127))
    run(daemon)
    assert daemon.controls.parameter(74) == "density" and params.density == 1.0
    assert "density = 74" in (tmp_path / "live.toml").read_text()


def test_record_toggles_and_the_snapshot_shows_it(daemon, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    daemon.send_command(Command("record"))
    run(daemon)
    snap = daemon.snapshot()
    assert snap.recording and snap.running and snap.agents[0].mode == "call-response"
    daemon.handle(time.perf_counter(), mido.Message("note_on", note=60, velocity=100))
    daemon.send_command(Command("record"))
    run(daemon)
    path = tmp_path / snap.recording
    assert path.exists() and [t.name for t in mido.MidiFile(path).tracks] == ["tempo", "player", "call-response"]
    assert daemon.snapshot().recording is None


def test_a_signal_stops_the_loop_and_its_handler_takes_no_lock(daemon, caplog):
    # Python runs a handler in the main thread between two bytecodes, maybe inside the loop's
    # wait: a handler that took a lock the wait holds would wait for itself. The loop's Wake
    # holds none (a flag and a socket pair), and the handler only sets a plain int.
    lock_types = (type(threading.Lock()), type(threading.RLock()), threading.Condition, threading.Event)
    assert not [v for v in vars(daemon._wake).values() if isinstance(v, lock_types)]
    handled = threading.Event()

    def handler_from_another_thread() -> None:
        daemon.stop_from_signal(signal.SIGUSR2)
        handled.set()

    threading.Thread(target=handler_from_another_thread, daemon=True).start()
    assert handled.wait(2.0), "stop_from_signal waited for a lock"
    assert daemon.stopping

    # and a real signal, from another thread, ends a loop that would otherwise run 5 s
    daemon._stop_signal = 0
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: daemon.stop_from_signal(signum))
    try:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR2)).start()
        started = time.perf_counter()
        with caplog.at_level(logging.INFO, logger="live"):
            daemon.run(5.0)
        assert time.perf_counter() - started < 2.0
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert f"signal {int(signal.SIGUSR2)}: stopping" in caplog.text


def test_program_change_on_the_control_channel_picks_a_bundled_model(jack_server, melody_model_file):
    from live.models.bundled import bundled_models

    names = [m.name for m in bundled_models()]
    options = DaemonOptions(backend="jack", agents=[agent_spec({"model": str(melody_model_file)})], seed=1,
                            client_name=unique_client_name("pc"), controls=ControlMap(channel=16))
    with Daemon(options) as daemon:
        agent = daemon.session.agents[0]
        before = agent.model.config_id
        daemon.handle(time.perf_counter(), mido.Message("program_change", channel=0, program=names.index("melody")))
        run(daemon, 0.3)  # another channel: the player's synth's business
        assert daemon.session.agents[0].model.config_id == before
        daemon.handle(time.perf_counter(), mido.Message("program_change", channel=15, program=names.index("melody")))
        daemon.handle(time.perf_counter(), mido.Message("program_change", channel=15, program=100))
        run(daemon, 0.8)
        assert daemon.session.agents[0].model.config_id == "lookback_rnn"  # the bundled melody model
        assert any("there are" in line and "bundled models" in line for line in daemon.log_lines)
