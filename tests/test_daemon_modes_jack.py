"""End to end through real JACK ports: a real daemon process plays each mode.

A client plays a call into "magenta-live in" and listens on "magenta-live out": the answer's
first note arrives on the grid point after the call, every note-on gets its note-off, SIGTERM
leaves nothing hanging, and the recording is a valid multi-track MIDI file.
"""

from __future__ import annotations

import signal
import time

import mido
import pytest

from tests.jack import ended, listen, player, stop_child, wait_for_port
from tests.test_daemon_jack import start_daemon

BPM = 150.0
SECONDS_PER_TICK = 60.0 / (BPM * 24)


def hanging(messages: list[mido.Message]) -> set[tuple[int, int]]:
    """(channel, note) pairs switched on and never off (All Notes Off ends a channel's notes)."""
    sounding: set[tuple[int, int]] = set()
    for m in messages:
        if m.type == "note_on" and m.velocity > 0:
            sounding.add((m.channel, m.note))
        elif m.type in ("note_on", "note_off"):
            sounding.discard((m.channel, m.note))
        elif m.type == "control_change" and m.control == 123:
            sounding = {k for k in sounding if k[0] != m.channel}
    return sounding


def timed(track) -> list[tuple[int, mido.Message]]:
    """(absolute tick, message) for every message of a MIDI file track."""
    tick, out = 0, []
    for m in track:
        tick += m.time
        out.append((tick, m))
    return out


def connect():
    """A listener on the daemon's output and a player into its input. A busy JACK server may
    refuse a new client for a moment (a daemon already playing holds its process cycle): retry."""
    for attempt in range(3):
        try:
            ear = listen(wait_for_port("magenta-live out", "output"))
            hand = player(wait_for_port("magenta-live in", "input"))
            time.sleep(0.1)
            return hand, ear
        except RuntimeError:
            if attempt == 2:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def play_phrase(hand, pitches: list[int], step_seconds: float) -> float:
    """Play one note per 8th note; returns the perf_counter time the last note ended."""
    end = 0.0
    for pitch in pitches:
        hand.send(mido.Message("note_on", note=pitch, velocity=90))
        time.sleep(step_seconds * 2)
        end = hand.send(mido.Message("note_off", note=pitch))
    return end


def test_call_response_answers_on_the_beat_and_sigterm_leaves_nothing_hanging(jack_server, tmp_path, melody_model_file):
    record = tmp_path / "session.mid"
    daemon = start_daemon(
        jack_server, "--model", str(melody_model_file), "--bpm", str(BPM), "--seed", "7", "--record", str(record),
        "--response-bars", "1",
    )
    hand, ear = connect()
    try:
        step = SECONDS_PER_TICK * 6
        call_end = play_phrase(hand, [60, 62, 64, 65, 67, 65, 64, 62], step)
        answer = ear.wait_for(1, "note_on", timeout=10.0)
        assert answer, "no answer"
        first = next(t for t, m in ear.stamped() if m.type == "note_on" and m.velocity > 0)
        # silence of one beat ends the call; the answer opens with a note on the next beat
        beat = 24 * SECONDS_PER_TICK
        assert call_end + beat - 0.01 < first < call_end + 2 * beat + 0.02
        time.sleep(24 * 4 * SECONDS_PER_TICK + 0.3)  # the whole one-bar answer
        notes = [m for m in ear.messages() if m.type == "note_on" and m.velocity > 0]
        assert len(notes) >= 1
        onsets = [t - first for t, m in ear.stamped() if m.type == "note_on" and m.velocity > 0]
        assert all(abs(d / step - round(d / step)) * step < 0.01 for d in onsets), onsets  # on the step grid
        assert not hanging(ear.messages()), "a note of the finished answer hangs"
        # a second call, interrupted answer, then SIGTERM in the middle of an answer
        play_phrase(hand, [67, 69, 71, 72], step)
        ear.wait_for(len(notes) + 1, "note_on", timeout=10.0)
        daemon.send_signal(signal.SIGTERM)
        assert ended(daemon) == 0, daemon.stderr.read()
        time.sleep(0.1)
        assert not hanging(ear.messages())
    finally:
        hand.close()
        ear.close()
        stop_child(daemon)
    recording = mido.MidiFile(record)
    names = [t.name for t in recording.tracks]
    assert names == ["tempo", "player", "call-response"]
    played = [m for m in recording.tracks[1] if m.type == "note_on" and m.velocity > 0]
    assert [m.note for m in played] == [60, 62, 64, 65, 67, 65, 64, 62, 67, 69, 71, 72]
    answered = [m for m in recording.tracks[2] if m.type == "note_on" and m.velocity > 0]
    assert answered and not hanging(list(recording.tracks[2]))
    # in the recording's ticks (480 a beat): the first answer opens on the beat after the beat
    # of silence that followed the call's last note-off, and every answer note is on the grid
    ppq = recording.ticks_per_beat
    call_end_tick = [t for t, m in timed(recording.tracks[1]) if m.type == "note_off"][7]
    onsets = [t for t, m in timed(recording.tracks[2]) if m.type == "note_on" and m.velocity > 0]
    assert onsets[0] == (call_end_tick // ppq + 2) * ppq, (call_end_tick, onsets)
    assert all(t % (ppq // 4) == 0 for t in onsets), onsets


def test_bad_input_and_a_flood_leave_the_daemon_playing_in_time(jack_server, melody_model_file):
    daemon = start_daemon(jack_server, "--model", str(melody_model_file), "--bpm", str(BPM), "--seed", "3",
                          "--input-channel", "1")
    hand, ear = connect()
    try:
        junk = [
            mido.Message("sysex", data=[0x7E, 0x7F, 0x06, 0x01]),
            mido.Message("clock"), mido.Message("active_sensing"),
            mido.Message("note_on", channel=5, note=40, velocity=100),  # a channel nobody hears
            mido.Message("note_off", note=99),  # a note-off without its note-on
        ]
        for m in junk:
            hand.send(m)
        for i in range(3000):  # a flood: thousands of messages in well under a second
            hand.send(mido.Message("control_change", control=7, value=i % 128))
        time.sleep(0.3)
        # a velocity-0 note-on ends a note; the call is still heard and answered
        step = SECONDS_PER_TICK * 6
        for pitch in (60, 64, 67, 72):
            hand.send(mido.Message("note_on", note=pitch, velocity=90))
            time.sleep(step * 2)
            hand.send(mido.Message("note_on", note=pitch, velocity=0))
        assert ear.wait_for(1, "note_on", timeout=10.0), "no answer after the flood"
        assert daemon.poll() is None
        daemon.send_signal(signal.SIGTERM)
        assert ended(daemon) == 0
        err = daemon.stderr.read()
        time.sleep(0.1)
        assert not hanging(ear.messages())
        assert "system messages ignored" in err and "channels nobody hears" in err
    finally:
        hand.close()
        ear.close()
        stop_child(daemon)


# (mode, what the client plays: (channel, pitches, chord?), the channel the agent answers on)
MODES = [
    ("continue", (0, [60, 62, 64, 65, 67], False), 0),
    ("improv", (0, [48, 52, 55], True), 0),
    ("harmonize", (0, [72, 74, 76, 77], False), 0),
    ("drums", (9, [36, 42, 38, 42], False), 9),
    ("duet", (0, [60, 64, 67, 72], False), 0),
]


@pytest.mark.parametrize("mode,phrase,out_channel", MODES, ids=[m[0] for m in MODES])
def test_every_mode_plays_through_jack_on_its_bundled_model(jack_server, tmp_path, mode, phrase, out_channel):
    record = tmp_path / "session.mid"
    daemon = start_daemon(jack_server, "--mode", mode, "--bpm", str(BPM), "--seed", "2", "--record", str(record),
                          "--backing-chords", "C G Am F", "--density", "0.8")
    hand, ear = connect()
    try:
        channel, pitches, chord = phrase
        step = SECONDS_PER_TICK * 6
        sent_at = []
        if chord:
            sent_at += [hand.send(mido.Message("note_on", channel=channel, note=p, velocity=90)) for p in pitches]
            time.sleep(step * 16)
            for p in pitches:
                hand.send(mido.Message("note_off", channel=channel, note=p))
        else:
            for p in pitches:
                sent_at.append(hand.send(mido.Message("note_on", channel=channel, note=p, velocity=90)))
                time.sleep(step * 2)
                hand.send(mido.Message("note_off", channel=channel, note=p))
        time.sleep(24 * 4 * SECONDS_PER_TICK)
        played = [(t, m) for t, m in ear.stamped() if m.type == "note_on" and m.velocity > 0]
        assert played, f"{mode}: nothing played"
        assert {m.channel for _, m in played} == {out_channel}
        if mode == "harmonize":
            # harmony for a melody note leaves right after it arrives, not a step later
            first_melody = sent_at[0]
            first_harmony = min(t for t, _ in played)
            assert first_harmony - first_melody < step / 2, (first_harmony - first_melody)
            assert all(m.note < 72 for _, m in played if abs(_ - first_melody) < step / 2)
        daemon.send_signal(signal.SIGTERM)
        assert ended(daemon) == 0, daemon.stderr.read()
        time.sleep(0.1)
        assert not hanging(ear.messages()), f"{mode}: a note hangs after SIGTERM"
    finally:
        hand.close()
        ear.close()
        stop_child(daemon)
    mid = mido.MidiFile(record)
    assert [t.name for t in mid.tracks] == ["tempo", "player", mode]
    assert [m for m in mid.tracks[2] if m.type == "note_on" and m.velocity] and not hanging(list(mid.tracks[2]))
