"""Primers: a melody, pitches, drums or a MIDI file turned into notes and into each family's
events, with note-seq's quantizing and Magenta's melody and drum extraction."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence


from live.midi_file import DEFAULT_QPM, MidiData, Note, read_midi
from live.models.configs import DRUMS, IMPROV, MELODY, PERFORMANCE
from live.models.encodings.base import MELODY_NO_EVENT, MELODY_NOTE_OFF
from live.generate.options import (
    GenerateOptions,
    DEFAULT_PRIMER_DRUMS,
    DEFAULT_PRIMER_MELODY,
    DRUM_INSTRUMENT,
    EPS,
    OUTPUT_VELOCITY,
    PRIMER_VELOCITY,
    parse_primer_drums,
    parse_primer_melody,
    parse_primer_pitches,
)

log = logging.getLogger("live.generate")

# --------------------------------------------------------------------------- primers


@dataclass
class Primer:
    """The primer as note-seq's generate scripts build it: notes in seconds at a tempo.

    Attributes:
        notes: primer notes (seconds).
        qpm: the tempo the primer is read at.
        total_time: note-seq's ``total_time`` of the primer sequence in seconds.
        time_signature: (numerator, denominator), for the bar length.
    """

    notes: list[Note]
    qpm: float
    total_time: float
    time_signature: tuple[int, int] = (4, 4)

    @property
    def last_end(self) -> float:
        """End of the last note in seconds (0.0 without notes)."""
        return max((n.end for n in self.notes), default=0.0)


def melody_to_notes(
    events: Sequence[int],
    step_seconds: float,
    start_step: int = 0,
    velocity: int = OUTPUT_VELOCITY,
    instrument: int = 0,
    program: int = 0,
) -> list[Note]:
    """Notes of a melody (note-seq's ``Melody.to_sequence``).

    A note lasts from its pitch event to the next pitch or note-off, or to the end of the
    melody. Event i sits on step ``start_step + i``; a step lasts ``step_seconds``.
    """
    notes: list[Note] = []
    sounding: tuple[int, int] | None = None  # (pitch, step index)

    def close(at: int) -> None:
        if sounding is not None:
            pitch, on = sounding
            notes.append(
                Note(pitch, (start_step + on) * step_seconds, (start_step + at) * step_seconds, velocity, instrument, program)
            )

    for i, event in enumerate(events):
        if event >= 0:
            close(i)
            sounding = (event, i)
        elif event == MELODY_NOTE_OFF:
            close(i)
            sounding = None
    close(len(events))
    return notes


def drums_to_notes(events: Sequence[frozenset[int]], step_seconds: float, start_step: int = 0) -> list[Note]:
    """Notes of a drum track (note-seq's ``DrumTrack.to_sequence``): each hit lasts one step."""
    return [
        Note(pitch, (start_step + i) * step_seconds, (start_step + i + 1) * step_seconds, OUTPUT_VELOCITY,
             DRUM_INSTRUMENT, 0, True)
        for i, event in enumerate(events)
        for pitch in sorted(event)
    ]


def build_primer(args: GenerateOptions, family: str, step_seconds: float) -> Primer:
    """The primer named by the flags (or the family's default), as notes in seconds.

    Performance RNN reads melody and pitch primers at 120 qpm, 4 steps per quarter (its
    time is absolute); the other families at ``--qpm``. A primer MIDI file keeps its tempo.
    """
    qpm = args.qpm if args.qpm else DEFAULT_QPM
    if family == PERFORMANCE:
        qpm, step_seconds = DEFAULT_QPM, 60.0 / DEFAULT_QPM / 4
    if args.primer_pitches:
        pitches = parse_primer_pitches(args.primer_pitches)
        quarter = 60.0 / qpm
        notes = [Note(p, 0.0, quarter, PRIMER_VELOCITY) for p in pitches]
        return Primer(notes, qpm, quarter)
    if args.primer_melody:
        notes = melody_to_notes(parse_primer_melody(args.primer_melody), step_seconds, velocity=PRIMER_VELOCITY)
        return Primer(notes, qpm, notes[-1].end if notes else 0.0)
    if args.primer_drums:
        notes = drums_to_notes(parse_primer_drums(args.primer_drums), step_seconds)
        return Primer(notes, qpm, notes[-1].end if notes else 0.0)
    if args.primer_midi:
        data: MidiData = read_midi(args.primer_midi)
        return Primer(data.notes, data.qpm if family != PERFORMANCE else qpm, data.total_time, data.time_signature)
    if family in (MELODY, IMPROV):
        log.info("no primer given: starting from a single middle C")
        notes = melody_to_notes(DEFAULT_PRIMER_MELODY, step_seconds, velocity=PRIMER_VELOCITY)
        return Primer(notes, qpm, notes[-1].end)
    if family == DRUMS:
        log.info("no primer given: starting from a single bass drum hit")
        notes = drums_to_notes(DEFAULT_PRIMER_DRUMS, step_seconds)
        return Primer(notes, qpm, notes[-1].end)
    return Primer([], qpm, 0.0)


@dataclass(frozen=True)
class QNote:
    """A note on the time grid: steps ``start`` to ``end`` (exclusive), and the note it came from."""

    start: int
    end: int
    note: Note


def quantize(notes: Sequence[Note], steps_per_second: float) -> list[QNote]:
    """Notes on a grid of ``steps_per_second`` (note-seq's rounding: to the nearest step, at
    least one step long)."""
    out = []
    for n in notes:
        start = int(n.start * steps_per_second + 0.5)
        end = int(n.end * steps_per_second + 0.5)
        out.append(QNote(start, max(end, start + 1), n))
    return out


def step_after(seconds: float, steps_per_second: float) -> int:
    """The first whole step after ``seconds`` (note-seq's quantize_to_step with cutoff 0)."""
    return int(math.floor(seconds * steps_per_second + EPS)) + 1


def set_melody_length(events: list[int], length: int) -> None:
    """note-seq's ``Melody.set_length``: cut, or pad with no-events ending a sustained note."""
    old = len(events)
    if length <= old:
        del events[length:]
        return
    events.extend([MELODY_NO_EVENT] * (length - old))
    for i in reversed(range(old)):
        if events[i] == MELODY_NOTE_OFF:
            break
        if events[i] != MELODY_NO_EVENT:
            events[old] = MELODY_NOTE_OFF
            break


def extract_melody(qnotes: Sequence[QNote], steps_per_bar: int) -> tuple[list[int], int]:
    """The primer melody (note-seq's ``Melody.from_quantized_sequence`` with no gap limit).

    Takes the non-drum notes of the lowest-numbered instrument; where notes start together the
    highest is kept, and a note starting before the previous one ends cuts it. The melody
    starts at the bar holding the first note.

    Returns:
        (events, start step of event 0); ([], 0) without notes.
    """
    pitched = [q for q in qnotes if not q.note.is_drum and q.note.velocity > 0]
    if not pitched:
        return [], 0
    instrument = min(q.note.instrument for q in pitched)
    notes = sorted((q for q in pitched if q.note.instrument == instrument), key=lambda q: (q.start, -q.note.pitch))
    first = notes[0].start
    melody_start = first - first % steps_per_bar
    events: list[int] = []
    last_on = -1
    for q in notes:
        start, end = q.start - melody_start, q.end - melody_start
        if start == last_on:
            continue  # a lower note starting with a higher one
        set_melody_length(events, end + 1)
        events[start] = q.note.pitch
        events[end] = MELODY_NOTE_OFF
        for i in range(start + 1, end):
            events[i] = MELODY_NO_EVENT
        last_on = start
    if events and events[-1] == MELODY_NOTE_OFF:
        events.pop()
    return events, melody_start


def extract_drums(qnotes: Sequence[QNote], steps_per_bar: int) -> tuple[list[frozenset[int]], int]:
    """The primer drum track (note-seq's ``DrumTrack.from_quantized_sequence``, every note a drum).

    Returns:
        (one frozenset of pitches per step, start step of step 0); ([], 0) without notes.
    """
    groups: dict[int, set[int]] = {}
    for q in qnotes:
        if q.note.velocity > 0:
            groups.setdefault(q.start, set()).add(q.note.pitch)
    if not groups:
        return [], 0
    first = min(groups)
    track_start = first - first % steps_per_bar
    events: list[frozenset[int]] = [frozenset()] * (max(groups) - track_start + 1)
    for step, pitches in groups.items():
        events[step - track_start] = frozenset(pitches)
    return events, track_start
