"""A real daemon process on real JACK ports: passthrough, clock out, and no hanging notes on exit."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import mido
import numpy as np
import pytest

from tests.jack import ended, listen, player, stop_child, track, wait_for_port


def start_daemon(jack_server, *args: str) -> subprocess.Popen:
    process = track(subprocess.Popen(
        [sys.executable, "-m", "live.cli", "--no-ui", "--log-level", "info", *args],
        env=jack_server.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ))
    line = process.stdout.readline()
    if "listening on" not in line:
        stop_child(process)
        pytest.fail(f"daemon did not start: {line!r} {process.communicate(timeout=10)[1]}")
    return process


def connect(daemon_in: str = "magenta-live in", daemon_out: str = "magenta-live out"):
    ear = listen(wait_for_port(daemon_out, "output"))
    hand = player(wait_for_port(daemon_in, "input"))
    time.sleep(0.1)  # let JACK finish both connections
    return hand, ear


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_passthrough_then_signal_leaves_no_note_hanging(jack_server, sig):
    daemon = start_daemon(jack_server, "--passthrough")
    hand, ear = connect()
    try:
        for note in (60, 64, 67):
            hand.send(mido.Message("note_on", note=note, velocity=100))
        hand.send(mido.Message("note_off", note=67))
        assert len(ear.wait_for(3, "note_on")) == 3
        daemon.send_signal(sig)
        assert ended(daemon) == 0, daemon.stderr.read()
        time.sleep(0.1)
        offs = {m.note for m in ear.messages("note_off")} | {m.note for m in ear.messages("note_on") if m.velocity == 0}
        assert {60, 64, 67} <= offs, ear.messages()
        all_notes_off = [m for m in ear.messages("control_change") if m.control == 123]
        assert [m.channel for m in all_notes_off] == [0]
        last_note_on = max(i for i, (_, m) in enumerate(ear.stamped()) if m.type == "note_on" and m.velocity > 0)
        first_release = min(i for i, (_, m) in enumerate(ear.stamped()) if m.type == "control_change")
        assert last_note_on < first_release
    finally:
        hand.close()
        ear.close()
        stop_child(daemon)


def test_input_channel_filter_and_system_messages(jack_server):
    daemon = start_daemon(jack_server, "--passthrough", "--input-channel", "2")
    hand, ear = connect()
    try:
        hand.send(mido.Message("note_on", channel=0, note=50))  # channel 1: not heard
        hand.send(mido.Message("sysex", data=[1, 2, 3]))
        hand.send(mido.Message("active_sensing"))
        hand.send(mido.Message("clock"))
        hand.send(mido.Message("note_on", channel=1, note=52))  # channel 2: heard
        got = ear.wait_for(1, "note_on")
        time.sleep(0.1)
        assert [(m.channel, m.note) for m in ear.messages("note_on")] == [(1, 52)]
        assert got and not ear.messages("sysex") and not ear.messages("clock")
    finally:
        daemon.send_signal(signal.SIGTERM)
        ended(daemon)
        hand.close()
        ear.close()


def test_clock_out_makes_the_daemon_the_master(jack_server):
    ear = listen()
    daemon = start_daemon(jack_server, "--clock-out", ear.port_name, "--bpm", "150")
    try:
        pulses = ear.wait_for(96, "clock", timeout=5)
        assert ear.messages("start"), "a Start before the pulses"
        stamps = [t for t, m in ear.stamped("clock")]
        assert len(pulses) >= 96
        # the slope of a least-squares line: one pulse delivered late (a loaded machine, a JACK
        # period) moves it by well under 1 %, where the first-to-last average moves by 3 %
        interval = float(np.polyfit(np.arange(len(stamps)), stamps, 1)[0])
        assert interval == pytest.approx(60 / (150 * 24), rel=0.02)
        daemon.send_signal(signal.SIGTERM)
        assert ended(daemon) == 0
        time.sleep(0.1)
        assert ear.messages("stop"), "Stop on the way out"
    finally:
        ear.close()
        stop_child(daemon)


def test_a_wrong_port_name_lists_the_ports_and_exits(jack_server):
    process = track(subprocess.Popen(
        [sys.executable, "-m", "live.cli", "--no-ui", "--input-port", "No Such Keyboard"],
        env=jack_server.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ))
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "No Such Keyboard" in err and "Traceback" not in err


def test_realtime_priority_runs_or_falls_back_and_still_releases_notes(jack_server):
    daemon = start_daemon(jack_server, "--passthrough", "--realtime-priority", "10")
    hand, ear = connect()
    try:
        hand.send(mido.Message("note_on", note=72, velocity=80))
        assert ear.wait_for(1, "note_on")
        daemon.send_signal(signal.SIGTERM)
        assert ended(daemon) == 0
        time.sleep(0.1)
        assert 72 in {m.note for m in ear.messages("note_off")}
    finally:
        hand.close()
        ear.close()
        stop_child(daemon)
