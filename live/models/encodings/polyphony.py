"""Polyphony RNN encoding: polyphonic music as one stream of note events (BachBot style).

A piece of ``n`` steps is written as ``START``, then for each step the notes sounding on it
(``NEW_NOTE(p)`` for a note struck on the step, ``CONTINUED_NOTE(p)`` for one held from an
earlier step, in descending MIDI pitch) followed by ``STEP_END``, and finally ``END``. A step
is one sixteenth note at 4 steps per quarter. Several events make one step, so the model runs
several times per step.

One-hot layout (Magenta's ``PolyphonyOneHotEncoding``, 259 classes):
``0`` START, ``1`` END, ``2`` STEP_END, ``3 + p`` NEW_NOTE(p), ``131 + p`` CONTINUED_NOTE(p)
for MIDI pitch p in 0..127. Magenta's only configuration, ``polyphony``, feeds that one-hot as
the input: input 259, 259 classes.

Events without a pitch carry ``pitch=None`` here, both when built from notes and when
decoded (Magenta uses None for the former and 0 for the latter); their pitch is ignored
when encoding.
"""

from __future__ import annotations

import operator
from collections import Counter
from typing import Iterable, NamedTuple, Sequence

from live.errors import EncodingError, UnknownConfigError
from live.models.encodings.base import OneHotEncoding, OneHotEventEncoder

# Event kinds, numbered as Magenta's PolyphonicEvent.
START = 0
END = 1
STEP_END = 2
NEW_NOTE = 3
CONTINUED_NOTE = 4

NUM_PITCHES = 128
NUM_UNPITCHED_CLASSES = 3  # START, END, STEP_END
NUM_POLY_CLASSES = NUM_UNPITCHED_CLASSES + 2 * NUM_PITCHES  # 259
POLYPHONY_CONFIGS: tuple[str, ...] = ("polyphony",)


class PolyEvent(NamedTuple):
    """One polyphony event: ``kind`` (START..CONTINUED_NOTE) and a MIDI ``pitch`` or None."""

    kind: int
    pitch: int | None = None


POLY_START = PolyEvent(START)
POLY_END = PolyEvent(END)
POLY_STEP_END = PolyEvent(STEP_END)

Note = tuple[int, int, int]  # (MIDI pitch, start step, end step), end exclusive


def _check_pitch(pitch: object) -> int:
    """``pitch`` as a plain int; EncodingError unless it is an integer MIDI pitch 0..127."""
    try:
        value = operator.index(pitch)  # type: ignore[arg-type]
    except TypeError:
        raise EncodingError(f"MIDI pitch {pitch!r} is not an integer") from None
    if not 0 <= value < NUM_PITCHES:
        raise EncodingError(f"MIDI pitch {pitch!r} outside 0..127")
    return value


class PolyphonyOneHotEncoding(OneHotEncoding):
    """``PolyEvent`` <-> class 0..258: START, END, STEP_END, NEW_NOTE x 128, CONTINUED x 128."""

    num_classes = NUM_POLY_CLASSES
    default_event = POLY_STEP_END

    def __init__(self) -> None:
        self._decoded = tuple(
            [POLY_START, POLY_END, POLY_STEP_END]
            + [PolyEvent(NEW_NOTE, p) for p in range(NUM_PITCHES)]
            + [PolyEvent(CONTINUED_NOTE, p) for p in range(NUM_PITCHES)]
        )

    def encode_event(self, event: tuple[int, int | None]) -> int:
        """Class index of a ``PolyEvent`` (or a ``(kind, pitch)`` pair)."""
        kind, pitch = event
        if kind == NEW_NOTE:
            return NUM_UNPITCHED_CLASSES + _check_pitch(pitch)
        if kind == CONTINUED_NOTE:
            return NUM_UNPITCHED_CLASSES + NUM_PITCHES + _check_pitch(pitch)
        if kind in (START, END, STEP_END):
            return kind
        raise EncodingError(f"unknown polyphony event kind {kind!r}")

    def decode_event(self, index: int) -> PolyEvent:
        """The ``PolyEvent`` of class ``index`` (unpitched ones with ``pitch=None``)."""
        if not 0 <= index < NUM_POLY_CLASSES:
            raise EncodingError(f"polyphony class {index} outside 0..{NUM_POLY_CLASSES - 1}")
        return self._decoded[index]

    def event_to_num_steps(self, event: tuple[int, int | None]) -> int:
        """1 for STEP_END (it closes a step), 0 for every other event."""
        return 1 if event[0] == STEP_END else 0


def polyphony_encoder(config_id: str = "polyphony") -> OneHotEventEncoder:
    """A fresh incremental encoder for the Polyphony RNN: input 259, 259 classes.

    Raises:
        UnknownConfigError: for an id other than ``polyphony``.
    """
    if config_id != "polyphony":
        raise UnknownConfigError(
            f"unknown Polyphony RNN configuration {config_id!r}; known: polyphony"
        )
    return OneHotEventEncoder(PolyphonyOneHotEncoding())


def poly_step_events(held: Iterable[int], struck: Iterable[int]) -> list[PolyEvent]:
    """The events of one step: its notes in descending MIDI pitch, then STEP_END.

    Args:
        held: MIDI pitches sounding since an earlier step (CONTINUED_NOTE), repeats allowed.
        struck: MIDI pitches struck on this step (NEW_NOTE), repeats allowed.
    When a pitch is both held and struck, its CONTINUED_NOTE events come first.
    """
    held_count = Counter(_check_pitch(p) for p in held)
    struck_count = Counter(_check_pitch(p) for p in struck)
    events: list[PolyEvent] = []
    for pitch in sorted(held_count.keys() | struck_count.keys(), reverse=True):
        events += [PolyEvent(CONTINUED_NOTE, pitch)] * held_count[pitch]
        events += [PolyEvent(NEW_NOTE, pitch)] * struck_count[pitch]
    events.append(POLY_STEP_END)
    return events


def sequence_to_poly_events(
    notes: Sequence[Note], start_step: int = 0, end_step: int | None = None
) -> list[PolyEvent]:
    """Polyphony events of quantized notes, as Magenta's PolyphonicSequence builds them.

    Args:
        notes: ``(MIDI pitch, start step, end step)`` triples, end exclusive and after start.
            Notes starting before ``start_step`` are left out entirely; a note sounds (as
            NEW_NOTE, then CONTINUED_NOTE) on steps start..end-1, cut at ``end_step``.
        start_step: first step written.
        end_step: step after the last one written; ``None`` means the latest end step of all
            notes (a quantized NoteSequence's ``total_quantized_steps``).
    Returns:
        START, then per step its note events in descending pitch followed by STEP_END, then
        END: ``end_step - start_step`` STEP_END events in all.
    Raises:
        EncodingError: for a pitch outside 0..127 or a note that does not end after it starts.
    """
    starts: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    last_end = start_step
    for pitch, start, end in notes:
        pitch = _check_pitch(pitch)
        if end <= start:
            raise EncodingError(f"note {pitch} at steps {start}..{end}: end must follow start")
        last_end = max(last_end, end)
        if start >= start_step:
            starts.setdefault(start, []).append(pitch)
            ends.setdefault(end, []).append(pitch)
    if end_step is None:
        end_step = last_end

    events = [POLY_START]
    sounding: Counter[int] = Counter()
    for step in range(start_step, end_step):
        ended = ends.get(step)
        if ended:
            sounding.subtract(ended)
            sounding = +sounding  # drop the pitches no longer sounding
        struck = starts.get(step, ())
        events += poly_step_events(sounding.elements(), struck)
        sounding.update(struck)
    events.append(POLY_END)
    return events


def poly_events_to_notes(
    events: Iterable[tuple[int, int | None]], start_step: int = 0
) -> list[Note]:
    """Notes of a polyphony event stream, by Magenta's PolyphonicSequence.to_sequence rules.

    Each STEP_END closes a step. A note struck by NEW_NOTE keeps sounding through every
    following step that has a CONTINUED_NOTE of its pitch, and ends at the first step without
    one (of several notes of one pitch, the earliest struck end first). A CONTINUED_NOTE for a
    pitch that was not sounding is ignored, as are START anywhere and END except as the last
    event, where it closes the final step like STEP_END.

    Args:
        events: ``PolyEvent`` values (or ``(kind, pitch)`` pairs), normally from START to END.
        start_step: step of the first step of the stream; added to every returned step.
    Returns:
        ``(MIDI pitch, start step, end step)`` triples, end exclusive, in the order the notes
        end (within a step, in the order they were struck).
    Raises:
        EncodingError: for an unknown kind or pitch, or when notes are still sounding after
            the last event (the stream must end with STEP_END, END, as after Magenta's
            ``set_length``).
    """
    events = list(events)
    last = len(events) - 1
    notes: list[Note] = []
    step = 0
    sounding: list[tuple[int, int]] = []  # (pitch, start) in the order struck
    ending: Counter[int] = Counter()  # pitches sounding at the last step end, not yet continued
    for i, (kind, pitch) in enumerate(events):
        if kind == NEW_NOTE:
            sounding.append((_check_pitch(pitch), step))
        elif kind == CONTINUED_NOTE:
            pitch = _check_pitch(pitch)
            if ending[pitch] > 0:
                ending[pitch] -= 1
        elif kind == STEP_END or (kind == END and i == last):
            if +ending:
                still = []
                for pitch_start in sounding:
                    p = pitch_start[0]
                    if ending[p] > 0:
                        ending[p] -= 1
                        notes.append((p, pitch_start[1] + start_step, step + start_step))
                    else:
                        still.append(pitch_start)
                sounding = still
            step += 1
            ending = Counter(p for p, _ in sounding)
        elif kind not in (START, END):
            raise EncodingError(f"unknown polyphony event kind {kind!r}")
    if sounding:
        raise EncodingError(
            f"{len(sounding)} note(s) still sounding after the last event; "
            "end the events with STEP_END, END"
        )
    return notes
