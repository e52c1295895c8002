"""Offline mode: the daemon's logic on a simulated clock, from a MIDI file to a MIDI file."""

from __future__ import annotations

import mido
import pytest

from live.cli import main
from live.engine.agent import AgentSpec
from live.midi_file import read_input_file
from live.offline import run_offline
from live.recording import PPQ


def write_call(path, pitches=(60, 62, 64, 65, 67, 65, 64, 62), channel=0, bpm=100.0, extra=()):
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
    track.extend(extra)
    for pitch in pitches:
        track.append(mido.Message("note_on", channel=channel, note=pitch, velocity=80, time=0))
        track.append(mido.Message("note_off", channel=channel, note=pitch, time=240))
    mid.save(path)
    return path


def test_same_seed_same_file_byte_for_byte(tmp_path, melody_model_file, capsys):
    call = write_call(tmp_path / "call.mid")
    outs = []
    for name, seed in (("a", "4"), ("b", "4"), ("c", "5")):
        out = tmp_path / f"{name}.mid"
        assert main(["--input-file", str(call), "--output-file", str(out), "--model", str(melody_model_file), "--seed", seed]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]
    assert "call-response:" in capsys.readouterr().out


def test_the_output_has_a_tempo_track_the_player_and_each_agent(tmp_path, melody_model_file):
    call = write_call(tmp_path / "call.mid", bpm=100.0)
    out = tmp_path / "out.mid"
    specs = [AgentSpec(name="lead", model=str(melody_model_file)), AgentSpec(name="echo", model=str(melody_model_file), output_channel=2)]
    run_offline(call, out, specs, seed=1)
    mid = mido.MidiFile(out)
    assert mid.ticks_per_beat == PPQ
    assert [t.name for t in mid.tracks] == ["tempo", "player", "lead", "echo"]
    assert round(mido.tempo2bpm(next(m.tempo for m in mid.tracks[0] if m.type == "set_tempo"))) == 100
    player = [m.note for m in mid.tracks[1] if m.type == "note_on"]
    assert player == [60, 62, 64, 65, 67, 65, 64, 62]
    for track, channel in ((mid.tracks[2], 0), (mid.tracks[3], 1)):
        notes = [m for m in track if m.type == "note_on" and m.velocity]
        assert notes and {m.channel for m in notes} == {channel}
        # every note ends, and answers start after the call (4 beats = 1920 pulses)
        pulse, sounding, first = 0, set(), None
        for m in track:
            pulse += m.time
            if m.type == "note_on" and m.velocity:
                first = pulse if first is None else first
                sounding.add(m.note)
            elif m.type in ("note_on", "note_off"):
                sounding.discard(m.note)
        assert not sounding and first >= 1920 and first % 120 == 0  # on a 16th-note step


def test_system_messages_and_other_channels_in_the_input_are_harmless(tmp_path, melody_model_file):
    extra = [mido.Message("sysex", data=[1, 2, 3]), mido.Message("control_change", control=7, value=100)]
    call = write_call(tmp_path / "call.mid", channel=3, extra=extra)
    out = tmp_path / "out.mid"
    recording = run_offline(call, out, [AgentSpec(model=str(melody_model_file), input_channels=[1])], seed=0)
    assert not [m for _, _, m in recording.tracks["agent"]]  # it heard nothing on channel 1
    recording = run_offline(call, out, [AgentSpec(model=str(melody_model_file), input_channels=[4])], seed=0)
    assert [m for _, _, m in recording.tracks["agent"]]


def test_bad_input_files_get_clear_errors(tmp_path, capsys):
    with pytest.raises(FileNotFoundError):
        read_input_file(tmp_path / "missing.mid")
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd nonsense")
    assert main(["--input-file", str(bad), "--output-file", str(tmp_path / "o.mid"), "--model", str(bad)]) == 1
    assert "magenta-live:" in capsys.readouterr().err
    assert main(["--input-file", str(bad)]) == 1
    assert "needs --output-file" in capsys.readouterr().err
