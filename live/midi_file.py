"""Standard MIDI Files <-> notes in seconds, with mido.

A ``Note`` is what note-seq keeps of a MIDI note: MIDI pitch, start and end in seconds, velocity,
an instrument number (one per track and channel, in order of appearance), the General MIDI
program and whether it is a drum (channel 10, index 9) note.

``write_midi`` writes a type-1 file the way note-seq's ``sequence_proto_to_midi_file`` lays it
out: a first track holding the tempo, then one track per (instrument, program, drum) group;
drums go on channel 10, the other groups take channels 1, 2, ... in order (skipping 10).
Times are rounded to the nearest tick at one fixed tempo. ``read_midi`` reads type-0 and
type-1 files, following every tempo change, and reports the first tempo and time signature.
``read_input_file`` reads a file's channel messages at the daemon's song positions (ticks), for
offline mode and drum pattern files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable

import mido

from live.files import atomic_path

from live.clock.base import TICKS_PER_QUARTER
from live.errors import MidiFileError

STANDARD_PPQ = 220  # ticks per quarter note, as note-seq writes
DEFAULT_QPM = 120.0
DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0


@dataclass(frozen=True)
class Note:
    """One note.

    Attributes:
        pitch: MIDI pitch 0..127.
        start: onset in seconds.
        end: release in seconds (after ``start``).
        velocity: MIDI velocity 1..127.
        instrument: instrument number (a track/channel pair when read from a file).
        program: General MIDI program 0..127.
        is_drum: True for a percussion note (written on channel 10).
    """

    pitch: int
    start: float
    end: float
    velocity: int = 100
    instrument: int = 0
    program: int = 0
    is_drum: bool = False


@dataclass
class MidiData:
    """What ``read_midi`` returns.

    Attributes:
        notes: every note, sorted by start time then pitch.
        qpm: the tempo at time 0 in quarter notes per minute (120 when the file sets none).
        time_signature: (numerator, denominator) at time 0, (4, 4) when the file sets none.
        ticks_per_quarter: the file's resolution.
    """

    notes: list[Note] = field(default_factory=list)
    qpm: float = DEFAULT_QPM
    time_signature: tuple[int, int] = (4, 4)
    ticks_per_quarter: int = STANDARD_PPQ

    @property
    def total_time(self) -> float:
        """End of the last note in seconds (0.0 without notes), as note-seq's ``total_time``."""
        return max((n.end for n in self.notes), default=0.0)


def _check_note(note: Note) -> None:
    if not 0 <= note.pitch <= 127:
        raise ValueError(f"MIDI pitch {note.pitch} outside 0..127")
    if not 1 <= note.velocity <= 127:
        raise ValueError(f"MIDI velocity {note.velocity} outside 1..127")
    if not 0 <= note.program <= 127:
        raise ValueError(f"MIDI program {note.program} outside 0..127")
    if note.start < 0 or note.end < note.start:
        raise ValueError(f"note {note.pitch} from {note.start} s to {note.end} s: bad times")


def midi_file_object(
    notes: Iterable[Note], qpm: float = DEFAULT_QPM, ticks_per_quarter: int = STANDARD_PPQ
) -> mido.MidiFile:
    """The ``mido.MidiFile`` ``write_midi`` would save (see the module docstring)."""
    if not qpm > 0:
        raise ValueError(f"tempo must be positive, got {qpm} qpm")
    ticks_per_second = ticks_per_quarter * qpm / 60.0
    groups: dict[tuple[int, int, bool], list[Note]] = {}
    for note in notes:
        _check_note(note)
        groups.setdefault((note.instrument, note.program, note.is_drum), []).append(note)

    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_quarter)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(qpm), time=0))
    meta.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks.append(meta)

    next_channel = 0
    for (_, program, is_drum), group in sorted(groups.items()):
        if is_drum:
            channel = DRUM_CHANNEL
        else:
            channel = next_channel
            next_channel = (next_channel + 1) % 16
            if next_channel == DRUM_CHANNEL:
                next_channel += 1
        # (tick, 0 = off before 1 = on, pitch, velocity)
        timed: list[tuple[int, int, int, int]] = []
        for note in group:
            on = int(round(note.start * ticks_per_second))
            off = max(int(round(note.end * ticks_per_second)), on + 1)
            timed.append((on, 1, note.pitch, note.velocity))
            timed.append((off, 0, note.pitch, 0))
        timed.sort()
        track = mido.MidiTrack()
        track.append(mido.Message("program_change", channel=channel, program=program, time=0))
        now = 0
        for tick, is_on, pitch, velocity in timed:
            kind = "note_on" if is_on else "note_off"
            track.append(mido.Message(kind, channel=channel, note=pitch, velocity=velocity, time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=0))
        mid.tracks.append(track)
    return mid


def write_midi(
    path: str | os.PathLike,
    notes: Iterable[Note],
    qpm: float = DEFAULT_QPM,
    ticks_per_quarter: int = STANDARD_PPQ,
) -> None:
    """Write ``notes`` (times in seconds) to a type-1 Standard MIDI File at ``qpm``.

    The same notes and tempo always give the same bytes.
    """
    with atomic_path(path) as tmp:
        midi_file_object(notes, qpm, ticks_per_quarter).save(tmp)


def open_midi(path: str) -> mido.MidiFile:
    """The Standard MIDI File at ``path``, checked: FileNotFoundError, or MidiFileError for a file
    that is not one, a type-2 file, or one timed in SMPTE frames."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such MIDI file: {path}")
    try:
        mid = mido.MidiFile(path)
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as err:
        raise MidiFileError(f"{path}: not a readable MIDI file ({err})") from err
    if mid.type == 2:
        raise MidiFileError(f"{path}: type-2 MIDI files (independent patterns) are not supported")
    if not mid.ticks_per_beat or mid.ticks_per_beat <= 0 or mid.ticks_per_beat & 0x8000:
        # mido reads the header's division unsigned: an SMPTE division has its top bit set
        raise MidiFileError(f"{path}: SMPTE (frames per second) or zero time division is not supported: it needs ticks per quarter note")
    return mid


def _check_tempo(path: str | os.PathLike, tempo: int) -> None:
    """A tempo of 0 microseconds per quarter note would put every note at time 0."""
    if tempo <= 0:
        raise MidiFileError(f"{os.fspath(path)}: a tempo of {tempo} microseconds per quarter note")


def read_midi(path: str | os.PathLike) -> MidiData:
    """Read the notes (seconds), first tempo and first time signature of a MIDI file.

    Notes are paired as note-seq (pretty_midi) pairs them: a note starts at a note-on with
    velocity > 0, and a note-off (or note-on with velocity 0) of the same channel and pitch
    ends every such note still sounding, except those struck on the same tick. Notes never
    released are dropped.

    Raises:
        FileNotFoundError: no such file.
        MidiFileError: the file is not a readable Standard MIDI File.
    """
    path = os.fspath(path)
    mid = open_midi(path)
    tpq = mid.ticks_per_beat

    # Tempo map from all tracks: (tick, microseconds per quarter).
    tempos: list[tuple[int, int]] = []
    signature: tuple[int, int] | None = None
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                _check_tempo(path, msg.tempo)
                tempos.append((tick, msg.tempo))
            elif msg.type == "time_signature" and tick == 0 and signature is None:
                signature = (msg.numerator, msg.denominator)
    tempos.sort(key=lambda t: t[0])
    if not tempos or tempos[0][0] > 0:
        tempos.insert(0, (0, mido.bpm2tempo(DEFAULT_QPM)))
    # Seconds at each tempo change.
    starts = [0.0]
    for (t0, us0), (t1, _) in zip(tempos, tempos[1:]):
        starts.append(starts[-1] + (t1 - t0) * us0 / 1e6 / tpq)

    def seconds(tick: int) -> float:
        i = len(tempos) - 1
        while tempos[i][0] > tick:
            i -= 1
        return starts[i] + (tick - tempos[i][0]) * tempos[i][1] / 1e6 / tpq

    notes: list[Note] = []
    instruments: dict[tuple[int, int], int] = {}
    for track_index, track in enumerate(mid.tracks):
        tick = 0
        programs = [0] * 16
        open_notes: dict[tuple[int, int], list[tuple[int, int, int]]] = {}  # (ch, pitch) -> [(tick, vel, prog)]

        def close(channel: int, pitch: int, at: int) -> None:
            pending = open_notes.get((channel, pitch), [])
            for on, velocity, program in pending:
                if on != at:
                    instrument = instruments[(track_index, channel)]
                    notes.append(
                        Note(pitch, seconds(on), seconds(at), velocity, instrument, program, channel == DRUM_CHANNEL)
                    )
            open_notes[(channel, pitch)] = [p for p in pending if p[0] == at]

        for msg in track:
            tick += msg.time
            if msg.type == "program_change":
                programs[msg.channel] = msg.program
            elif msg.type == "note_on" and msg.velocity > 0:
                instruments.setdefault((track_index, msg.channel), len(instruments))
                open_notes.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity, programs[msg.channel]))
            elif msg.type in ("note_off", "note_on"):
                close(msg.channel, msg.note, tick)
    notes.sort(key=lambda n: (n.start, n.pitch, n.instrument))
    return MidiData(
        notes=notes,
        qpm=mido.tempo2bpm(tempos[0][1]),
        time_signature=signature or (4, 4),
        ticks_per_quarter=tpq,
    )


@dataclass
class InputFile:
    """A MIDI file's channel messages at song positions (ticks) and its first tempo."""

    messages: list[tuple[int, mido.Message]] = field(default_factory=list)
    bpm: float = 120.0
    time_signature: tuple[int, int] = (4, 4)

    @property
    def end(self) -> int:
        return self.messages[-1][0] if self.messages else 0


def read_input_file(path: str | os.PathLike) -> InputFile:
    """The channel messages of a MIDI file at song positions in ticks (its beats become ours).

    Raises FileNotFoundError, or MidiFileError for a file that is not a readable MIDI file.
    """
    mid = open_midi(os.fspath(path))
    result = InputFile()
    pulse = 0
    tempo_seen = signature_seen = False
    for msg in mido.merge_tracks(mid.tracks):
        pulse += msg.time
        if msg.type == "set_tempo" and not tempo_seen:
            _check_tempo(path, msg.tempo)
            result.bpm, tempo_seen = mido.tempo2bpm(msg.tempo), True
        elif msg.type == "time_signature" and not signature_seen:
            result.time_signature, signature_seen = (msg.numerator, msg.denominator), True
        elif not msg.is_meta and hasattr(msg, "channel"):
            tick = round(pulse * TICKS_PER_QUARTER / mid.ticks_per_beat)
            result.messages.append((tick, msg.copy(time=0)))
    return result
