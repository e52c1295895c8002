"""Write the example MIDI files: call.mid (a one-bar phrase), tune.mid (a two-bar phrase in G,
for ``generate --interpolate``) and beat.mid (a two-bar drum pattern).

    python examples/make_midi.py
"""

from __future__ import annotations

from pathlib import Path

import mido

HERE = Path(__file__).resolve().parent
PPQ = 480


def write(path: Path, events: list[tuple[int, mido.Message]], bpm: float = 110.0) -> None:
    """Write (absolute pulse, message) events to a one-track file."""
    mid = mido.MidiFile(ticks_per_beat=PPQ)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))])
    last = 0
    for pulse, msg in sorted(events, key=lambda e: (e[0], e[1].type == "note_on")):
        track.append(msg.copy(time=pulse - last))
        last = pulse
    mid.tracks.append(track)
    mid.save(path)


def call() -> list[tuple[int, mido.Message]]:
    eighth = PPQ // 2
    phrase = [64, 62, 60, 62, 64, 64, 64]
    events = []
    for i, pitch in enumerate(phrase):
        length = eighth * (2 if i == len(phrase) - 1 else 1)
        events.append((i * eighth, mido.Message("note_on", note=pitch, velocity=90)))
        events.append((i * eighth + length - 10, mido.Message("note_off", note=pitch)))
    return events


def tune() -> list[tuple[int, mido.Message]]:
    eighth = PPQ // 2
    phrase = [67, 69, 71, 74, 76, 74, 71, 67, 69, 71, 72, 71, 69, 67, 66, 67]
    events = []
    for i, pitch in enumerate(phrase):
        events.append((i * eighth, mido.Message("note_on", note=pitch, velocity=90)))
        events.append((i * eighth + eighth - 10, mido.Message("note_off", note=pitch)))
    return events


def beat() -> list[tuple[int, mido.Message]]:
    sixteenth = PPQ // 4
    events = []
    for step in range(32):
        hits = [42] if step % 2 == 0 else []
        if step % 8 == 0:
            hits.append(36)
        if step % 8 == 4:
            hits.append(38)
        for pitch in hits:
            events.append((step * sixteenth, mido.Message("note_on", channel=9, note=pitch, velocity=100)))
            events.append((step * sixteenth + 60, mido.Message("note_off", channel=9, note=pitch)))
    return events


if __name__ == "__main__":
    write(HERE / "call.mid", call())
    write(HERE / "tune.mid", tune())
    write(HERE / "beat.mid", beat())
    print("wrote", HERE / "call.mid", HERE / "tune.mid", "and", HERE / "beat.mid")
