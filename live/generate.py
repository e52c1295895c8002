"""``magenta-live generate``: offline generation to MIDI files, like Magenta's *_generate scripts.

One command for every family; the model file says which family it is:

- melody (Melody RNN): the primer melody is squashed into the model's range and moved to
  its key (``squash_melody``), extended to ``--num-steps`` sixteenth steps (primer included)
  and moved back.
- improv (Improv RNN): the same over ``--backing-chords``, each chord lasting
  ``--steps-per-chord`` steps; the length is chords x steps per chord. ``--render-chords``
  adds the chords as notes (as note-seq's BasicChordRenderer: chord tones in MIDI 48..59,
  the bass in 36..47, velocity 50, program 88, on their own track).
- polyphony (Polyphony RNN): ``--num-steps`` counts steps (STEP_END events). The primer is
  either fed first (``--condition-on-primer``) or written before a fresh start; with
  ``--inject-primer-during-generation`` (the default) its notes are forced into the
  generated steps, step by step, and the model adds to them (harmonizing the primer).
- drums (Drums RNN): drum-set steps, written on MIDI channel 10.
- performance (Performance RNN): ``--num-steps`` counts 10 ms steps (3000 = 30 s);
  conditioned configurations read ``--notes-per-second`` and ``--pitch-class-histogram``.

Steps line up as in Magenta. With E the step on which the primer's last note ends (its end
is exclusive), melody, improv and drums generate from step E + 2: Magenta asks for one step
after E and note-seq rounds that time up with quantize_to_step(..., cutoff=0), which adds
another. With T the primer's length in steps (performance: 10 ms steps), polyphony and
performance generate from step T + 1. The primer is padded with silence up to there. With
no primer notes at all, polyphony and performance start at step 1 (performance after one
second of silence, as Magenta's empty-primer case).

Where this differs from Magenta, on purpose: one primer flag at a time (Magenta silently
picks one); the optionally conditioned performance model plays unconditioned when no
control value is given (Magenta conditions on its defaults: 15 notes per second, a flat
histogram); ``--render-chords`` holds the last chord to the end of the progression (Magenta
stops it with the melody's last note); drum notes in a primer are left out of polyphony and
performance primers, and a melody primer is read from the lowest-numbered instrument of the
MIDI file (Magenta expects one); literal drum primers are read on the model's own grid
(one_drum: 2 steps per quarter; Magenta reads them at 4 and re-quantizes); polyphony and
performance models whose argmax never ends a step stop after a generous number of events.

Each output is written as ``<date>_<time>_<NN>.mid`` (NN zero-padded to as many digits as
``--num-outputs`` has) at ``--qpm`` (the primer MIDI file's tempo when one is given), 220
ticks per quarter note. ``--seed`` makes the output reproducible byte for byte.
"""

from __future__ import annotations

import argparse
import ast
import copy
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from live.engine.sampling import beam_search, log_softmax, sample_class
from live.engine.stream import Stream
from live.errors import ChordSymbolError, ConfigFileError, EncodingError
from live.midi_file import DEFAULT_QPM, MidiData, Note, read_midi, write_midi
from live.models.configs import DRUMS, IMPROV, MELODY, PERFORMANCE, POLYPHONY
from live.models.encodings.base import MELODY_NO_EVENT, MELODY_NOTE_OFF, ConditionalEncoder
from live.models.encodings.chords import parse_chord, transpose_chord_symbol
from live.models.encodings.melody import squash_melody, transpose_melody
from live.models.encodings.performance import (
    DEFAULT_NOTE_DENSITY,
    DEFAULT_PITCH_HISTOGRAM,
    NOTE_OFF,
    NOTE_ON,
    TIME_SHIFT,
    VELOCITY,
    PerfEvent,
    velocity_bin_to_velocity,
    velocity_to_bin,
)
from live.models.encodings.polyphony import (
    POLY_END,
    POLY_START,
    POLY_STEP_END,
    STEP_END,
    poly_events_to_notes,
    sequence_to_poly_events,
)

log = logging.getLogger(__name__)

DEFAULT_NUM_STEPS = 128  # sixteenth steps for the step-based families
DEFAULT_PERFORMANCE_STEPS = 3000  # 10 ms steps: 30 seconds
DEFAULT_BACKING_CHORDS = "C G Am F C G F C"  # Magenta's improv_rnn_generate default
DEFAULT_PRIMER_MELODY = [60]  # a single middle C
DEFAULT_PRIMER_DRUMS: list[frozenset[int]] = [frozenset([36])]  # a single bass drum hit
PRIMER_VELOCITY = 100
OUTPUT_VELOCITY = 100
CHORD_VELOCITY = 50
CHORD_PROGRAM = 88
CHORD_OCTAVE_BASE = 48  # chord tones: 12 * 4 + pitch class
BASS_OCTAVE_BASE = 36  # chord bass: 12 * 3 + pitch class
DRUM_INSTRUMENT = 9
MAX_NOTE_DURATION_SECONDS = 5.0  # Performance RNN output notes are cut at 5 s
# Safety limits on events per time step (see _Candidate): far above what music needs.
MAX_POLY_EVENTS_PER_STEP = 300
MAX_PERF_EVENTS_PER_STEP = 20
_EPS = 1e-6  # absorbs float noise when seconds are turned back into whole steps

_FAMILY_NAMES = {
    MELODY: "Melody RNN",
    IMPROV: "Improv RNN",
    POLYPHONY: "Polyphony RNN",
    PERFORMANCE: "Performance RNN",
    DRUMS: "Drums RNN",
}
# Which primer flags each family reads.
_PRIMER_FLAGS = {
    MELODY: ("primer_melody", "primer_midi"),
    IMPROV: ("primer_melody", "primer_midi"),
    POLYPHONY: ("primer_pitches", "primer_melody", "primer_midi"),
    PERFORMANCE: ("primer_pitches", "primer_melody", "primer_midi"),
    DRUMS: ("primer_drums", "primer_midi"),
}
# Flags that only one family reads: (attribute, family).
_FAMILY_FLAGS = (
    ("backing_chords", IMPROV),
    ("render_chords", IMPROV),
    ("condition_on_primer", POLYPHONY),
    ("inject_primer_during_generation", POLYPHONY),
    ("notes_per_second", PERFORMANCE),
    ("pitch_class_histogram", PERFORMANCE),
    ("disable_conditioning", PERFORMANCE),
)


def _flag(attr: str) -> str:
    return "--" + attr.replace("_", "-")


# --------------------------------------------------------------------------- arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``generate`` flags (Magenta's generate-script flags, spelled with dashes)."""
    g = parser.add_argument_group("model and output")
    g.add_argument(
        "--model", required=True,
        help="a bundled model name (see `magenta-live models`), a model file (.npz) or a Magenta bundle (.mag)",
    )
    g.add_argument("--output-dir", default="generated", help="directory for the MIDI files (default: %(default)s)")
    g.add_argument("--num-outputs", type=int, default=10, help="how many files to write (default: %(default)s)")
    g.add_argument(
        "--num-steps",
        type=int,
        default=None,
        help="total length including the primer: sixteenth steps (default 128); for performance "
        "models 10 ms steps (default 3000); improv models take the length from the chords",
    )
    g.add_argument(
        "--qpm", type=float, default=None, help="tempo in quarter notes per minute (default 120; a primer MIDI file's tempo wins)"
    )
    g = parser.add_argument_group("primer")
    g.add_argument(
        "--primer-melody", help='melody events as a Python list: pitch, -1 note-off, -2 no event, e.g. "[60, -2, 62]"'
    )
    g.add_argument("--primer-midi", help="MIDI file to start from")
    g.add_argument("--primer-pitches", help='polyphony/performance: a chord held one quarter note, e.g. "[60, 64, 67]"')
    g.add_argument("--primer-drums", help='drums: one tuple of MIDI drum pitches per step, e.g. "[(36, 42), (), (42,)]"')
    g = parser.add_argument_group("sampling")
    g.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="softmax temperature; 0 always takes the most likely event (default: %(default)s)",
    )
    g.add_argument("--beam-size", type=int, default=1, help="beam search: candidates kept (default: %(default)s)")
    g.add_argument("--branch-factor", type=int, default=1, help="beam search: branches per candidate (default: %(default)s)")
    g.add_argument(
        "--steps-per-iteration", type=int, default=1, help="beam search: events per iteration (default: %(default)s)"
    )
    g.add_argument("--seed", type=int, default=None, help="random seed; the same seed gives the same files (default: random)")
    g = parser.add_argument_group("improv")
    g.add_argument(
        "--backing-chords", default=None, help=f'chord symbols separated by spaces (default: "{DEFAULT_BACKING_CHORDS}")'
    )
    g.add_argument("--steps-per-chord", type=int, default=16, help="steps each chord lasts (default: %(default)s, one bar)")
    g.add_argument("--render-chords", action="store_true", default=None, help="also write the chords as notes")
    g = parser.add_argument_group("polyphony")
    g.add_argument(
        "--condition-on-primer", action="store_true", default=None, help="feed the primer to the model before generating"
    )
    g.add_argument(
        "--inject-primer-during-generation",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force the primer's notes into the generated steps (default: on)",
    )
    g = parser.add_argument_group("performance")
    g.add_argument(
        "--notes-per-second",
        help='note density for conditioned models, e.g. "8", or a list "[4, 12]" for successive segments',
    )
    g.add_argument(
        "--pitch-class-histogram",
        help='12 pitch-class weights (C first) for conditioned models, e.g. "[2, 0, 1, 0, 1, 1, 0, 2, 0, 1, 0, 1]", '
        "or a list of them",
    )
    g.add_argument(
        "--disable-conditioning",
        help='optionally conditioned models: "True" or "False" (or a list); default: disabled unless '
        "--notes-per-second or --pitch-class-histogram is given",
    )


# --------------------------------------------------------------------------- flag literals


def _literal(attr: str, text: str, example: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ConfigFileError(f"{_flag(attr)}: {text!r} is not a Python literal such as {example}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def parse_primer_melody(text: str) -> list[int]:
    """``--primer-melody``: a list of melody events (MIDI pitch, -1 note-off, -2 no event)."""
    value = _literal("primer_melody", text, '"[60, -2, 62]"')
    if isinstance(value, tuple):
        value = list(value)
    if _is_int(value):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigFileError(f"--primer-melody: expected a non-empty list of melody events, got {text!r}")
    for event in value:
        if not _is_int(event) or not MELODY_NO_EVENT <= event <= 127:
            raise ConfigFileError(
                f"--primer-melody: {event!r} is not a melody event "
                "(a MIDI pitch 0..127, -1 for note-off or -2 for no event)"
            )
    return [int(e) for e in value]


def parse_primer_pitches(text: str) -> list[int]:
    """``--primer-pitches``: a list of MIDI pitches sounding together."""
    value = _literal("primer_pitches", text, '"[60, 64, 67]"')
    if _is_int(value):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigFileError(f"--primer-pitches: expected a non-empty list of MIDI pitches, got {text!r}")
    for pitch in value:
        if not _is_int(pitch) or not 0 <= pitch <= 127:
            raise ConfigFileError(f"--primer-pitches: {pitch!r} is not a MIDI pitch 0..127")
    return [int(p) for p in value]


def parse_primer_drums(text: str) -> list[frozenset[int]]:
    """``--primer-drums``: one collection of MIDI drum pitches per step (empty: no hit)."""
    value = _literal("primer_drums", text, '"[(36, 42), (), (42,)]"')
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigFileError(f"--primer-drums: expected a non-empty list of drum steps, got {text!r}")
    steps = []
    for step in value:
        if _is_int(step):
            step = (step,)
        if not isinstance(step, (list, tuple, set, frozenset)):
            raise ConfigFileError(f"--primer-drums: {step!r} is not a tuple of MIDI drum pitches, such as (36, 42) or ()")
        for pitch in step:
            if not _is_int(pitch) or not 0 <= pitch <= 127:
                raise ConfigFileError(f"--primer-drums: {pitch!r} is not a MIDI pitch 0..127")
        steps.append(frozenset(int(p) for p in step))
    return steps


def _segments(attr: str, text: str, example: str, check: Callable[[Any], bool], what: str) -> list[Any]:
    """A control flag: one value, or a non-empty list of values for successive segments."""
    value = _literal(attr, text, example)
    if check(value):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(check(v) for v in value):
        return list(value)
    raise ConfigFileError(f"{_flag(attr)}: expected {what}, or a list of them for successive segments; got {text!r}")


def parse_notes_per_second(text: str) -> list[float]:
    """``--notes-per-second``: a density >= 0 or a list of them."""
    values = _segments(
        "notes_per_second", text, '"8"', lambda v: _is_number(v) and v >= 0, "a note density >= 0 (notes per second)"
    )
    return [float(v) for v in values]


def parse_pitch_class_histogram(text: str) -> list[list[float]]:
    """``--pitch-class-histogram``: 12 weights >= 0 (C first, not all 0) or a list of such lists."""

    def check(v: Any) -> bool:
        return (
            isinstance(v, (list, tuple))
            and len(v) == 12
            and all(_is_number(x) and x >= 0 for x in v)
            and any(x > 0 for x in v)
        )

    values = _segments(
        "pitch_class_histogram", text, '"[2, 0, 1, 0, 1, 1, 0, 2, 0, 1, 0, 1]"', check,
        "12 pitch-class weights >= 0 (C first), not all zero",
    )
    return [[float(x) for x in v] for v in values]


def parse_disable_conditioning(text: str) -> list[bool]:
    """``--disable-conditioning``: True / False or a list of them."""
    return _segments("disable_conditioning", text, '"True"', lambda v: isinstance(v, bool), "True or False")


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


def build_primer(args: argparse.Namespace, family: str, step_seconds: float) -> Primer:
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


def _step_after(seconds: float, steps_per_second: float) -> int:
    """The first whole step after ``seconds`` (note-seq's quantize_to_step with cutoff 0)."""
    return int(math.floor(seconds * steps_per_second + _EPS)) + 1


def _set_melody_length(events: list[int], length: int) -> None:
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
        _set_melody_length(events, end + 1)
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


# --------------------------------------------------------------------------- candidates


class _Candidate:
    """One generated sequence in progress: a stream plus what the family needs to continue it.

    Families whose length is not counted in events (polyphony, performance) also stop after
    ``max_events`` events, so a model stuck on events that never advance time (which argmax
    sampling can make permanent) cannot run forever; ``exhausted`` tells when that happened.
    """

    max_events: int | None = None

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    @property
    def exhausted(self) -> bool:
        return self.max_events is not None and len(self.stream) >= self.max_events

    def fork(self) -> "_Candidate":
        twin = copy.copy(self)
        twin.stream = self.stream.fork()
        return twin

    @property
    def done(self) -> bool:
        raise NotImplementedError

    def events_to_go(self) -> int:
        """A guess of how many more events finish the sequence (for beam search rounds)."""
        raise NotImplementedError

    def step(self, rng: np.random.Generator, temperature: float) -> float:
        """Extend by one sampled event (plus anything forced after it); the log-likelihood gained."""
        raise NotImplementedError


def _forced_logp(stream: Stream, event: Any, temperature: float) -> float:
    """Log-probability of ``event`` as the next event (for events fed rather than sampled)."""
    if stream.logits is None:
        return 0.0
    label = stream.encoder.event_to_label(event)
    return float(log_softmax(stream.logits, temperature if temperature > 0 else 1.0)[label])


class _StepCandidate(_Candidate):
    """Melody, improv and drums: one event per step until ``total`` events.

    controls[i] is the control (chord) of event position i, or None for unconditioned models.
    """

    def __init__(self, stream: Stream, total: int, controls: Sequence[Any] | None) -> None:
        super().__init__(stream)
        self.total = total
        self.controls = controls

    def control_after(self, position: int) -> Any:
        """The control passed with event ``position``: that of the position after it."""
        if self.controls is None:
            return None
        return self.controls[min(position + 1, len(self.controls) - 1)]

    @property
    def done(self) -> bool:
        return len(self.stream) >= self.total

    def events_to_go(self) -> int:
        return max(self.total - len(self.stream), 0)

    def step(self, rng: np.random.Generator, temperature: float) -> float:
        if self.done:
            return 0.0
        _, logp = self.stream.sample(rng, temperature, self.control_after(len(self.stream)))
        return logp


class _PolyCandidate(_Candidate):
    """Polyphony: events until ``total_steps`` STEP_END events, optionally injecting a primer.

    inject[k] lists the note events forced at the start of generated step k (those of the
    primer's step k); generated step 0 begins once ``inject_base`` steps have ended.
    """

    def __init__(
        self, stream: Stream, steps: int, total_steps: int, inject: Sequence[Sequence[Any]], inject_base: int
    ) -> None:
        super().__init__(stream)
        self.steps = steps
        self.total_steps = total_steps
        self.inject = inject
        self.inject_base = inject_base
        # Every pitch struck and held on every step is 257 events a step.
        self.max_events = len(stream) + MAX_POLY_EVENTS_PER_STEP * max(total_steps - steps, 0)

    @property
    def done(self) -> bool:
        return self.steps >= self.total_steps or self.exhausted

    def events_to_go(self) -> int:
        return 5 * max(self.total_steps - self.steps, 0)  # Magenta's guess: ~5 events per step

    def inject_step(self, temperature: float) -> float:
        """Feed the primer's events for the step now starting; their log-likelihood."""
        k = self.steps - self.inject_base
        gain = 0.0
        if 0 <= k < len(self.inject):
            for event in self.inject[k]:
                gain += _forced_logp(self.stream, event, temperature)
                self.stream.feed(event)
        return gain

    def step(self, rng: np.random.Generator, temperature: float) -> float:
        if self.done:
            return 0.0
        event, logp = self.stream.sample(rng, temperature)
        if event.kind == STEP_END:
            self.steps += 1
            if not self.done:
                logp += self.inject_step(temperature)
        return logp


class _PerfCandidate(_Candidate):
    """Performance: events until their time shifts add up to ``total_steps`` 10 ms steps.

    control_at(step) gives the control for an event position whose preceding events end at
    time ``step``; None for unconditioned models.
    """

    def __init__(
        self,
        stream: Stream,
        time_steps: int,
        total_steps: int,
        control_at: Callable[[int], Any] | None,
        density: float,
    ) -> None:
        super().__init__(stream)
        self.time_steps = time_steps
        self.total_steps = total_steps
        self.control_at = control_at
        self.density = density

    def limit_events(self) -> None:
        """Allow MAX_PERF_EVENTS_PER_STEP events per 10 ms step still to play from here."""
        self.max_events = len(self.stream) + MAX_PERF_EVENTS_PER_STEP * max(self.total_steps - self.time_steps, 1)

    @property
    def done(self) -> bool:
        return self.time_steps >= self.total_steps or self.exhausted

    def events_to_go(self) -> int:
        # Magenta's guess: 4 events per note at the requested (or default) density.
        left = max(self.total_steps - self.time_steps, 0)
        return int(math.ceil(4.0 * max(1.0, self.density) * left / 100.0))

    def feed(self, event: Any) -> None:
        if event.kind == TIME_SHIFT:
            self.time_steps += event.value
        self.stream.feed(event, self.control_at(self.time_steps) if self.control_at else None)

    def step(self, rng: np.random.Generator, temperature: float) -> float:
        if self.done:
            return 0.0
        assert self.stream.logits is not None
        index, logp = sample_class(self.stream.logits, temperature, rng)
        self.feed(self.stream.encoder.label_to_event(index))
        return logp


def generate_from(start: _Candidate, rng: np.random.Generator, args: argparse.Namespace) -> _Candidate:
    """Continue a primed candidate until it is done: plain sampling, or Magenta's beam search."""
    temperature = args.temperature
    if args.beam_size == 1 and args.branch_factor == 1:
        cand = start.fork()
        while not cand.done:
            cand.step(rng, temperature)
        return cand

    def extend(cands: list[_Candidate]) -> list[float]:
        return [c.step(rng, temperature) for c in cands]

    cand = start
    while not cand.done:
        cand = beam_search(  # type: ignore[assignment]
            cand,
            extend,
            lambda c: c.fork(),
            max(cand.events_to_go(), 1),
            args.beam_size,
            args.branch_factor,
            args.steps_per_iteration,
        )
    return cand


# --------------------------------------------------------------------------- families


class _Job:
    """A family's recipe built once from the flags: the primed start and how to write a result."""

    qpm: float = DEFAULT_QPM
    start: _Candidate

    def notes(self, cand: _Candidate) -> list[Note]:
        raise NotImplementedError

    def _set_grid(self, model: Any, primer: Primer) -> float:
        """Set qpm and step_seconds from the primer and the model's grid; returns steps per second."""
        self.qpm = primer.qpm
        steps_per_second = model.spec.steps_per_quarter * self.qpm / 60.0
        self.step_seconds = 1.0 / steps_per_second
        return steps_per_second


def _first_generated_step(primer: Primer, steps_per_second: float) -> int:
    """Where Magenta's melody and drums generators start: one step after the primer, rounded up."""
    return int(math.floor(primer.last_end * steps_per_second + _EPS)) + 2


def _steps_per_bar(spq: int, signature: tuple[int, int]) -> int:
    num, den = signature
    per_bar = spq * 4 * num / den
    if per_bar != int(per_bar) or per_bar <= 0:
        raise ConfigFileError(f"--primer-midi: a {num}/{den} bar is not a whole number of steps at {spq} steps per quarter")
    return int(per_bar)


class _MelodyJob(_Job):
    """Melody RNN and Improv RNN (Magenta's melody_rnn / improv_rnn generators)."""

    def __init__(self, model: Any, args: argparse.Namespace, primer: Primer, improv: bool) -> None:
        spec = model.spec
        spq = spec.steps_per_quarter
        steps_per_second = self._set_grid(model, primer)

        chords: list[str] | None = None
        if improv:
            symbols = (args.backing_chords or DEFAULT_BACKING_CHORDS).split()
            if not symbols:
                raise ConfigFileError("--backing-chords: give at least one chord symbol, e.g. \"C G Am F\"")
            for symbol in symbols:
                try:
                    parse_chord(symbol)
                except ChordSymbolError as err:
                    raise ChordSymbolError(f"--backing-chords: {err}") from None
            chords = [s for s in symbols for _ in range(args.steps_per_chord)]
            num_steps = len(chords)
        else:
            num_steps = args.num_steps

        steps_per_bar = _steps_per_bar(spq, primer.time_signature)
        events, self.melody_start = extract_melody(quantize(primer.notes, steps_per_second), steps_per_bar)
        start_step = _first_generated_step(primer, steps_per_second)
        if not events:
            self.melody_start = max(0, start_step - 1)
        if start_step >= num_steps:
            raise ConfigFileError(
                f"the primer and the gap after it take {start_step} steps, but the whole "
                f"{'chord progression' if improv else 'output (--num-steps)'} is {num_steps} steps: "
                + ("add chords or raise --steps-per-chord" if improv else "raise --num-steps")
            )
        _set_melody_length(events, start_step - self.melody_start)
        squashed, self.amount = squash_melody(events, spec.min_note, spec.max_note, spec.transpose_to_key)
        self.chords = chords
        self.render_chords = bool(improv and args.render_chords)
        self.num_steps = num_steps

        controls = None
        if chords is not None:
            shifted = {s: transpose_chord_symbol(s, self.amount) for s in dict.fromkeys(chords)}
            controls = [shifted[s] for s in chords[self.melody_start:]]
            probe = model.make_encoder()
            assert isinstance(probe, ConditionalEncoder)
            buf = np.zeros(probe.control.input_size, np.float32)
            for original, moved in shifted.items():
                try:
                    buf[:] = 0.0
                    probe.control.encode(moved, buf)
                except EncodingError as err:
                    raise EncodingError(f"--backing-chords: {original!r} cannot be fed to {spec.config_id}: {err}") from None

        stream = Stream(model)
        cand = _StepCandidate(stream, num_steps - self.melody_start, controls)
        for i, event in enumerate(squashed):
            stream.feed(event, cand.control_after(i))
        self.start = cand

    def notes(self, cand: _Candidate) -> list[Note]:
        events = transpose_melody(cand.stream.events, -self.amount)
        notes = melody_to_notes(events, self.step_seconds, self.melody_start)
        if self.render_chords and self.chords:
            notes += self._chord_notes()
        return notes

    def _chord_notes(self) -> list[Note]:
        """The backing chords as notes, each held until the next change (or the end)."""
        assert self.chords is not None
        out: list[Note] = []
        changes = [i for i, s in enumerate(self.chords) if i == 0 or s != self.chords[i - 1]]
        for n, at in enumerate(changes):
            chord = parse_chord(self.chords[at])
            if chord.is_no_chord:
                continue
            end = changes[n + 1] if n + 1 < len(changes) else len(self.chords)
            assert chord.bass is not None
            pitches = [CHORD_OCTAVE_BASE + pc for pc in chord.pitches] + [BASS_OCTAVE_BASE + chord.bass]
            for pitch in pitches:
                out.append(Note(pitch, at * self.step_seconds, end * self.step_seconds, CHORD_VELOCITY, 1, CHORD_PROGRAM))
        return out


class _DrumsJob(_Job):
    """Drums RNN (Magenta's drums_rnn generator)."""

    def __init__(self, model: Any, args: argparse.Namespace, primer: Primer) -> None:
        steps_per_second = self._set_grid(model, primer)
        num_steps = args.num_steps
        steps_per_bar = _steps_per_bar(model.spec.steps_per_quarter, primer.time_signature)
        events, self.track_start = extract_drums(quantize(primer.notes, steps_per_second), steps_per_bar)
        start_step = _first_generated_step(primer, steps_per_second)
        if not events:
            self.track_start = max(0, start_step - 1)
        if start_step >= num_steps:
            raise ConfigFileError(
                f"the primer and the gap after it take {start_step} steps, but --num-steps is "
                f"{num_steps}: raise --num-steps"
            )
        length = start_step - self.track_start
        events = (events + [frozenset()] * length)[:length]
        stream = Stream(model)
        for event in events:
            stream.feed(event)
        self.start = _StepCandidate(stream, num_steps - self.track_start, None)

    def notes(self, cand: _Candidate) -> list[Note]:
        return drums_to_notes(cand.stream.events, self.step_seconds, self.track_start)


class _PolyJob(_Job):
    """Polyphony RNN (Magenta's polyphony_rnn generator)."""

    def __init__(self, model: Any, args: argparse.Namespace, primer: Primer) -> None:
        steps_per_second = self._set_grid(model, primer)
        num_steps = args.num_steps
        gen_start = _step_after(primer.total_time, steps_per_second)
        if gen_start >= num_steps:
            raise ConfigFileError(
                f"the primer takes {gen_start} steps, but --num-steps is {num_steps}: raise --num-steps"
            )
        qnotes = [q for q in quantize(primer.notes, steps_per_second) if not q.note.is_drum]
        primer_events = sequence_to_poly_events([(q.note.pitch, q.start, q.end) for q in qnotes], 0, gen_start)[:-1]
        self.condition = bool(args.condition_on_primer)
        inject_on = args.inject_primer_during_generation is not False
        inject: list[list[Any]] = []
        if inject_on:
            current: list[Any] = []
            for event in primer_events[1:]:
                if event.kind == STEP_END:
                    inject.append(current)
                    current = []
                else:
                    current.append(event)

        stream = Stream(model)
        if self.condition:
            fed = primer_events
            self.out_start, self.base = 0, []
            total, base = num_steps, gen_start
        else:
            fed = [POLY_START]
            self.out_start, self.base = gen_start, list(primer.notes)
            total, base = num_steps - gen_start, 0
        for event in fed:
            stream.feed(event)
        cand = _PolyCandidate(stream, base, total, inject, base)
        cand.inject_step(args.temperature)
        self.start = cand

    def notes(self, cand: _Candidate) -> list[Note]:
        out = list(self.base)
        events = list(cand.stream.events)
        if events[-1].kind != STEP_END:  # stopped by the event limit inside a step: close it
            events.append(POLY_STEP_END)
        for pitch, start, end in poly_events_to_notes(events + [POLY_END], self.out_start):
            out.append(Note(pitch, start * self.step_seconds, end * self.step_seconds, OUTPUT_VELOCITY))
        return out


def notes_to_performance(qnotes: Sequence[QNote], num_velocity_bins: int, max_shift_steps: int) -> list[Any]:
    """Performance events of quantized notes (note-seq's ``Performance`` from a sequence).

    At each step note-offs and note-ons come in the order of their notes (sorted by start time
    then pitch), a velocity event before each note-on whose velocity bin changes (when
    ``num_velocity_bins`` > 0), time shifts of at most ``max_shift_steps`` between steps.
    """
    ordered = sorted(qnotes, key=lambda q: (q.note.start, q.note.pitch))
    marks = sorted([(q.start, i, False) for i, q in enumerate(ordered)] + [(q.end, i, True) for i, q in enumerate(ordered)])
    events: list[Any] = []
    now, velocity_bin = 0, 0
    for step, i, is_off in marks:
        while step > now:
            shift = min(step - now, max_shift_steps)
            events.append(PerfEvent(TIME_SHIFT, shift))
            now += shift
        note = ordered[i].note
        if num_velocity_bins and not is_off:
            b = velocity_to_bin(note.velocity, num_velocity_bins)
            if b != velocity_bin:
                velocity_bin = b
                events.append(PerfEvent(VELOCITY, b))
        events.append(PerfEvent(NOTE_OFF if is_off else NOTE_ON, note.pitch))
    return events


def set_performance_length(events: list[Any], steps: int, max_shift_steps: int) -> None:
    """note-seq's ``Performance.set_length``: pad with time shifts or cut to ``steps`` 10 ms steps."""
    length = sum(e.value for e in events if e.kind == TIME_SHIFT)
    if length < steps:
        missing = steps - length
        if events and events[-1].kind == TIME_SHIFT and events[-1].value < max_shift_steps:
            added = min(missing, max_shift_steps - events[-1].value)
            events[-1] = PerfEvent(TIME_SHIFT, events[-1].value + added)
            missing -= added
        while missing > 0:
            shift = min(missing, max_shift_steps)
            events.append(PerfEvent(TIME_SHIFT, shift))
            missing -= shift
    excess = length - steps
    while events and excess > 0:
        last = events[-1]
        if last.kind == TIME_SHIFT and last.value > excess:
            events[-1] = PerfEvent(TIME_SHIFT, last.value - excess)
            excess = 0
        else:
            if last.kind == TIME_SHIFT:
                excess -= last.value
            events.pop()


def performance_to_notes(
    events: Sequence[Any], num_velocity_bins: int, start_step: int = 0, steps_per_second: int = 100
) -> list[Note]:
    """Notes of performance events (note-seq's ``Performance.to_sequence``).

    A note-off ends the earliest sounding note of its pitch; notes still sounding end with the
    performance; zero-length notes are dropped; notes are cut at 5 seconds. Velocities come
    from the velocity bins (100 before any velocity event).
    """
    step_seconds = 1.0 / steps_per_second
    notes: list[Note] = []
    sounding: dict[int, list[tuple[int, int]]] = {}
    velocity = OUTPUT_VELOCITY
    now = 0

    def add(pitch: int, on: int, v: int, off: int) -> None:
        if off == on:
            return
        start = (start_step + on) * step_seconds
        end = min((start_step + off) * step_seconds, start + MAX_NOTE_DURATION_SECONDS)
        notes.append(Note(pitch, start, end, v))

    for event in events:
        if event.kind == NOTE_ON:
            sounding.setdefault(event.value, []).append((now, velocity))
        elif event.kind == NOTE_OFF:
            if sounding.get(event.value):
                on, v = sounding[event.value].pop(0)
                add(event.value, on, v, now)
        elif event.kind == TIME_SHIFT:
            now += event.value
        elif event.kind == VELOCITY:
            velocity = velocity_bin_to_velocity(event.value, num_velocity_bins)
    for pitch, started in sounding.items():
        for on, v in started:
            add(pitch, on, v, now)
    return notes


def _step_to_value(step: int, num_steps: int, values: Sequence[Any]) -> Any:
    """The value of the segment holding ``step`` when ``values`` split ``num_steps`` evenly."""
    return values[min(step * len(values) // num_steps, len(values) - 1)]


class _PerfJob(_Job):
    """Performance RNN (Magenta's performance_rnn generator)."""

    def __init__(self, model: Any, args: argparse.Namespace, primer: Primer) -> None:
        config_id = model.config_id
        steps_per_second = model.spec.steps_per_second or 100
        self.qpm = primer.qpm  # only sets the tick grid: performance time is absolute
        self.steps_per_second = steps_per_second
        encoder = model.make_encoder()
        target = encoder.target if isinstance(encoder, ConditionalEncoder) else encoder
        one_hot = getattr(target, "one_hot", None)
        if one_hot is None:
            raise ConfigFileError(f"{config_id}: generation from this encoding is not supported")
        self.num_velocity_bins = one_hot.num_velocity_bins
        max_shift = one_hot.max_shift_steps
        num_steps = args.num_steps

        # Controls.
        density = parse_notes_per_second(args.notes_per_second) if args.notes_per_second else None
        histogram = parse_pitch_class_histogram(args.pitch_class_histogram) if args.pitch_class_histogram else None
        disable = parse_disable_conditioning(args.disable_conditioning) if args.disable_conditioning else None
        uses_density = config_id in (
            "density_conditioned_performance_with_dynamics",
            "multiconditioned_performance_with_dynamics",
            "optional_multiconditioned_performance_with_dynamics",
        )
        uses_histogram = config_id in (
            "pitch_conditioned_performance_with_dynamics",
            "multiconditioned_performance_with_dynamics",
            "optional_multiconditioned_performance_with_dynamics",
        )
        optional = config_id.startswith("optional_")
        for given, used, flag in (
            (density, uses_density, "--notes-per-second"),
            (histogram, uses_histogram, "--pitch-class-histogram"),
            (disable, optional, "--disable-conditioning"),
        ):
            if given is not None and not used:
                log.warning("%s is ignored: %s is not conditioned on it", flag, config_id)
        if optional and disable is None:
            # Without any control value, let the model play unconditioned.
            disable = [density is None and histogram is None]
        densities = density or [DEFAULT_NOTE_DENSITY]
        histograms = histogram or [list(DEFAULT_PITCH_HISTOGRAM)]
        self.density = sum(densities) / len(densities) if uses_density else DEFAULT_NOTE_DENSITY

        # Primer.
        gen_start = _step_after(primer.total_time, steps_per_second)
        if gen_start >= num_steps:
            raise ConfigFileError(
                f"the primer lasts {gen_start} 10 ms steps, but --num-steps is {num_steps}: raise --num-steps"
            )
        qnotes = [q for q in quantize(primer.notes, steps_per_second) if not q.note.is_drum]
        events = notes_to_performance(qnotes, self.num_velocity_bins, max_shift)
        if events:
            self.start_step = 0
            set_performance_length(events, gen_start, max_shift)
            total = num_steps
        else:
            self.start_step = gen_start
            total = num_steps - gen_start
            events = [PerfEvent(TIME_SHIFT, min(max_shift, total))]
        self.total = total

        control_at: Callable[[int], Any] | None = None
        if uses_density or uses_histogram:

            def control_at(step: int) -> Any:
                values = []
                if uses_density:
                    values.append(_step_to_value(step, total, densities))
                if uses_histogram:
                    values.append(_step_to_value(step, total, histograms))
                if optional:
                    assert disable is not None
                    return (_step_to_value(step, total, disable), tuple(values))
                return tuple(values)

        stream = Stream(model)
        cand = _PerfCandidate(stream, 0, total, control_at, self.density)
        for event in events:
            cand.feed(event)
        cand.limit_events()
        self.max_shift = max_shift
        self.start = cand

    def notes(self, cand: _Candidate) -> list[Note]:
        events = list(cand.stream.events)
        set_performance_length(events, self.total, self.max_shift)
        return performance_to_notes(events, self.num_velocity_bins, self.start_step, self.steps_per_second)


# --------------------------------------------------------------------------- run


def _check_flags(args: argparse.Namespace, family: str) -> None:
    """Reject flag values that cannot work, naming the flag."""
    for attr, low in (
        ("num_outputs", 1),
        ("beam_size", 1),
        ("branch_factor", 1),
        ("steps_per_iteration", 1),
        ("steps_per_chord", 1),
        ("num_steps", 1),
    ):
        value = getattr(args, attr)
        if value is not None and value < low:
            raise ConfigFileError(f"{_flag(attr)} must be at least {low}, got {value}")
    if not (args.temperature >= 0 and math.isfinite(args.temperature)):
        raise ConfigFileError(f"--temperature must be 0 or more, got {args.temperature}")
    if args.qpm is not None and not (args.qpm > 0 and math.isfinite(args.qpm)):
        raise ConfigFileError(f"--qpm must be positive, got {args.qpm}")
    name = _FAMILY_NAMES[family]
    given = [attr for attr in ("primer_melody", "primer_midi", "primer_pitches", "primer_drums") if getattr(args, attr)]
    for attr in given:
        if attr not in _PRIMER_FLAGS[family]:
            accepted = ", ".join(_flag(a) for a in _PRIMER_FLAGS[family])
            raise ConfigFileError(f"{_flag(attr)} does not apply to {name} models (they take {accepted})")
    if len(given) > 1:
        raise ConfigFileError(f"give one primer, not {' and '.join(_flag(a) for a in given)}")
    for attr, owner in _FAMILY_FLAGS:
        if getattr(args, attr) is not None and owner != family:
            raise ConfigFileError(f"{_flag(attr)} applies to {_FAMILY_NAMES[owner]} models, not to {name} models")
    if family == IMPROV and args.num_steps is not None:
        log.warning("--num-steps is ignored for Improv RNN: the length is the chords times --steps-per-chord")


def output_names(count: int, stamp: str | None = None) -> list[str]:
    """Magenta's file names: ``<date>_<time>_<NN>.mid``, NN zero-padded to the digits of ``count``."""
    stamp = stamp or time.strftime("%Y-%m-%d_%H%M%S")
    digits = len(str(count))
    return [f"{stamp}_{str(i + 1).zfill(digits)}.mid" for i in range(count)]


def run(args: argparse.Namespace) -> int:
    """Generate ``--num-outputs`` MIDI files into ``--output-dir``; returns the exit status."""
    from live.models import load

    model = load(args.model)
    family = model.family
    if family not in _FAMILY_NAMES:
        raise ConfigFileError(f"{args.model}: generation for the {family} family is not supported")
    _check_flags(args, family)
    if args.num_steps is None:
        args.num_steps = DEFAULT_PERFORMANCE_STEPS if family == PERFORMANCE else DEFAULT_NUM_STEPS

    spq = model.spec.steps_per_quarter or 4
    qpm = args.qpm if args.qpm else DEFAULT_QPM
    primer = build_primer(args, family, 60.0 / qpm / spq)
    job: _Job
    if family in (MELODY, IMPROV):
        job = _MelodyJob(model, args, primer, improv=family == IMPROV)
    elif family == DRUMS:
        job = _DrumsJob(model, args, primer)
    elif family == POLYPHONY:
        job = _PolyJob(model, args, primer)
    else:
        job = _PerfJob(model, args, primer)

    rng = np.random.default_rng(args.seed)
    os.makedirs(args.output_dir, exist_ok=True)
    names = output_names(args.num_outputs)
    for name in names:
        cand = generate_from(job.start, rng, args)
        if cand.exhausted:
            log.warning(
                "%s: the model produced %d events without reaching the requested length; the rest is silence",
                name,
                len(cand.stream) - len(job.start.stream),
            )
        path = os.path.join(args.output_dir, name)
        write_midi(path, job.notes(cand), qpm=job.qpm)
        log.info("wrote %s", path)
    print(f"wrote {len(names)} MIDI file(s) to {args.output_dir}")
    return 0
