"""Recording a session to a multi-track Standard MIDI File (``--record``, and the offline output).

Messages are kept by track (the player, then each agent) at song positions in ticks, which may be
fractional (a player's note between two clock ticks); the tempo map is a list of (tick, BPM).
The file has 480 pulses per quarter note (20 per tick): a conductor track with the tempo map
and time signature, then one track per name. Writing goes to a temporary file that replaces the
target, so a file is never left half-written.
"""

from __future__ import annotations

import os
import threading

import mido

from live.files import atomic_path

from live.clock.base import TICKS_PER_QUARTER

PPQ = 480
PULSES_PER_TICK = PPQ // TICKS_PER_QUARTER


class Recording:
    """Messages by track at song positions (ticks), plus the tempo map. Thread-safe."""

    def __init__(self, bpm: float = 120.0, time_signature: tuple[int, int] = (4, 4)) -> None:
        self.tempo_map: list[tuple[float, float]] = [(0.0, float(bpm))]
        self.time_signature = time_signature
        self.tracks: dict[str, list[tuple[float, int, mido.Message]]] = {}
        self._seq = 0
        self._lock = threading.Lock()
        self._struck: dict[tuple[str, int, int], float] = {}  # (track, channel, note) -> its last note-on's tick

    def add_track(self, name: str) -> None:
        """Make sure track ``name`` exists (tracks are written in the order they were added)."""
        with self._lock:
            self.tracks.setdefault(name, [])

    def add(self, track: str, tick: float, msg: mido.Message) -> None:
        """Record ``msg`` on ``track`` at song position ``tick`` (ticks, may be fractional).

        A note-off never lands before the note-on it ends: messages are recorded as they were
        sent, but the song position of a send is read from the clock, and a clock thread that is
        late with its next tick, then stopped, can put a release a fraction of a tick before the
        note it releases (which would leave that note hanging in the file)."""
        with self._lock:
            if msg.type in ("note_on", "note_off"):
                key = (track, msg.channel, msg.note)
                if msg.type == "note_on" and msg.velocity:
                    self._struck[key] = tick
                else:
                    tick = max(tick, self._struck.get(key, tick))
            self._seq += 1
            self.tracks.setdefault(track, []).append((float(tick), self._seq, msg))

    def set_tempo(self, tick: float, bpm: float) -> None:
        """The tempo changes to ``bpm`` at ``tick`` (changes under 0.01 BPM are ignored)."""
        with self._lock:
            if abs(self.tempo_map[-1][1] - bpm) < 0.01:
                return
            if tick <= self.tempo_map[-1][0]:
                self.tempo_map[-1] = (self.tempo_map[-1][0], float(bpm))
            else:
                self.tempo_map.append((float(tick), float(bpm)))

    def seconds_at(self, tick: float) -> float:
        """Seconds from tick 0 to ``tick`` through the tempo map."""
        seconds, (t0, bpm) = 0.0, self.tempo_map[0]
        for t1, next_bpm in self.tempo_map[1:]:
            if t1 >= tick:
                break
            seconds += (t1 - t0) * 60.0 / (bpm * TICKS_PER_QUARTER)
            t0, bpm = t1, next_bpm
        return seconds + (tick - t0) * 60.0 / (bpm * TICKS_PER_QUARTER)

    def to_midi_file(self) -> mido.MidiFile:
        """The recording as a type-1 MidiFile."""
        with self._lock:
            tracks = {name: sorted(events, key=lambda e: (e[0], e[1])) for name, events in self.tracks.items()}
            tempo_map = list(self.tempo_map)
        mid = mido.MidiFile(type=1, ticks_per_beat=PPQ, charset="utf-8")  # track names are agents' names: any text
        conductor = [(0, mido.MetaMessage("track_name", name="tempo"))]
        num, den = self.time_signature
        conductor.append((0, mido.MetaMessage("time_signature", numerator=num, denominator=den)))
        for tick, bpm in tempo_map:
            conductor.append((round(tick * PULSES_PER_TICK), mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))))
        mid.tracks.append(_track(conductor))
        for name, events in tracks.items():
            timed = [(0, mido.MetaMessage("track_name", name=name))]
            timed += [(max(0, round(tick * PULSES_PER_TICK)), msg.copy(time=0)) for tick, _, msg in events]
            mid.tracks.append(_track(timed))
        return mid

    def write(self, path: str | os.PathLike) -> None:
        """Write the Standard MIDI File to ``path`` atomically (OutputPathError if it cannot be)."""
        with atomic_path(path) as tmp:
            self.to_midi_file().save(tmp)


def _track(timed: list[tuple[int, mido.Message]]) -> mido.MidiTrack:
    """A MidiTrack from (absolute pulse, message) pairs, already in order."""
    track = mido.MidiTrack()
    last = 0
    for pulse, msg in timed:
        track.append(msg.copy(time=pulse - last))
        last = pulse
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track
