"""The families' generation jobs, built once from the options, and ``run``: write
``num_outputs`` MIDI files."""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from live.engine.stream import Stream
from live.errors import ChordSymbolError, ConfigFileError, EncodingError
from live.models.model import Model
from live.errors import OutputPathError
from live.midi_file import DEFAULT_QPM, Note, write_midi
from live.models.configs import DRUMS, IMPROV, MELODY, PERFORMANCE, POLYPHONY
from live.models.encodings.base import ConditionalEncoder
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
from live.generate.options import (
    GenerateOptions,
    BASS_OCTAVE_BASE,
    CHORD_OCTAVE_BASE,
    CHORD_PROGRAM,
    CHORD_VELOCITY,
    DEFAULT_BACKING_CHORDS,
    DEFAULT_NUM_STEPS,
    DEFAULT_PERFORMANCE_STEPS,
    EPS,
    FAMILY_NAMES,
    MAX_NOTE_DURATION_SECONDS,
    OUTPUT_VELOCITY,
    check_options,
    parse_disable_conditioning,
    parse_notes_per_second,
    parse_pitch_class_histogram,
)
from live.generate.primer import (
    Primer,
    QNote,
    build_primer,
    drums_to_notes,
    extract_drums,
    extract_melody,
    melody_to_notes,
    quantize,
    set_melody_length,
    step_after,
)
from live.generate.search import Candidate, PerfCandidate, PolyCandidate, StepCandidate, generate_from

log = logging.getLogger("live.generate")

# --------------------------------------------------------------------------- families


class Job:
    """A family's recipe built once from the flags: the primed start and how to write a result."""

    qpm: float = DEFAULT_QPM
    start: Candidate

    def notes(self, cand: Candidate) -> list[Note]:
        raise NotImplementedError

    def _set_grid(self, model: Any, primer: Primer) -> float:
        """Set qpm and step_seconds from the primer and the model's grid; returns steps per second."""
        self.qpm = primer.qpm
        steps_per_second = model.spec.steps_per_quarter * self.qpm / 60.0
        self.step_seconds = 1.0 / steps_per_second
        return steps_per_second


def _first_generated_step(primer: Primer, steps_per_second: float) -> int:
    """Where Magenta's melody and drums generators start: one step after the primer, rounded up."""
    return int(math.floor(primer.last_end * steps_per_second + EPS)) + 2


def _steps_per_bar(spq: int, signature: tuple[int, int]) -> int:
    num, den = signature
    per_bar = spq * 4 * num / den
    if per_bar != int(per_bar) or per_bar <= 0:
        raise ConfigFileError(f"--primer-midi: a {num}/{den} bar is not a whole number of steps at {spq} steps per quarter")
    return int(per_bar)


class MelodyJob(Job):
    """Melody RNN and Improv RNN (Magenta's melody_rnn / improv_rnn generators)."""

    def __init__(self, model: Any, args: GenerateOptions, primer: Primer, improv: bool) -> None:
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
        set_melody_length(events, start_step - self.melody_start)
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
        cand = StepCandidate(stream, num_steps - self.melody_start, controls)
        for i, event in enumerate(squashed):
            stream.feed(event, cand.control_after(i))
        self.start = cand

    def notes(self, cand: Candidate) -> list[Note]:
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


class DrumsJob(Job):
    """Drums RNN (Magenta's drums_rnn generator)."""

    def __init__(self, model: Any, args: GenerateOptions, primer: Primer) -> None:
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
        self.start = StepCandidate(stream, num_steps - self.track_start, None)

    def notes(self, cand: Candidate) -> list[Note]:
        return drums_to_notes(cand.stream.events, self.step_seconds, self.track_start)


class PolyJob(Job):
    """Polyphony RNN (Magenta's polyphony_rnn generator)."""

    def __init__(self, model: Any, args: GenerateOptions, primer: Primer) -> None:
        steps_per_second = self._set_grid(model, primer)
        num_steps = args.num_steps
        gen_start = step_after(primer.total_time, steps_per_second)
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
        cand = PolyCandidate(stream, base, total, inject, base)
        cand.inject_step(args.temperature)
        self.start = cand

    def notes(self, cand: Candidate) -> list[Note]:
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


class PerfJob(Job):
    """Performance RNN (Magenta's performance_rnn generator)."""

    def __init__(self, model: Any, args: GenerateOptions, primer: Primer) -> None:
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
        gen_start = step_after(primer.total_time, steps_per_second)
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
        cand = PerfCandidate(stream, 0, total, control_at, self.density)
        for event in events:
            cand.feed(event)
        cand.limit_events()
        self.max_shift = max_shift
        self.start = cand

    def notes(self, cand: Candidate) -> list[Note]:
        events = list(cand.stream.events)
        set_performance_length(events, self.total, self.max_shift)
        return performance_to_notes(events, self.num_velocity_bins, self.start_step, self.steps_per_second)




def output_names(count: int, stamp: str | None = None) -> list[str]:
    """Magenta's file names: ``<date>_<time>_<NN>.mid``, NN zero-padded to the digits of ``count``."""
    stamp = stamp or time.strftime("%Y-%m-%d_%H%M%S")
    digits = len(str(count))
    return [f"{stamp}_{str(i + 1).zfill(digits)}.mid" for i in range(count)]


def make_job(model: Model, options: GenerateOptions) -> Job:
    """The job of ``model``'s family for ``options`` (checked; ``num_steps`` filled in)."""
    family = model.family
    if family not in FAMILY_NAMES:
        raise ConfigFileError(f"{options.model or model.config_id}: generation for the {family} family is not supported")
    check_options(options, family)
    if options.num_steps is None:
        options.num_steps = DEFAULT_PERFORMANCE_STEPS if family == PERFORMANCE else DEFAULT_NUM_STEPS
    spq = model.spec.steps_per_quarter or 4
    qpm = options.qpm if options.qpm else DEFAULT_QPM
    primer = build_primer(options, family, 60.0 / qpm / spq)
    jobs: dict[str, Callable[[], Job]] = {
        MELODY: lambda: MelodyJob(model, options, primer, improv=False),
        IMPROV: lambda: MelodyJob(model, options, primer, improv=True),
        DRUMS: lambda: DrumsJob(model, options, primer),
        POLYPHONY: lambda: PolyJob(model, options, primer),
        PERFORMANCE: lambda: PerfJob(model, options, primer),
    }
    return jobs[family]()


def generate(model: Model, options: GenerateOptions, rng: np.random.Generator | None = None) -> Iterator[tuple[list[Note], float]]:
    """Generate with ``model`` as ``options`` say, one piece after another, for ever (take
    ``options.num_outputs`` of them): each is (its notes, seconds from its start; its tempo in
    quarter notes per minute). The library form of ``magenta-live generate``, for every family.

    ``rng``: the random generator (default: one seeded with ``options.seed``). Raises
    ConfigFileError, ChordSymbolError or EncodingError for options the family cannot take.
    """
    job = make_job(model, options)  # checked now, not at the first piece
    return _pieces(job, rng if rng is not None else np.random.default_rng(options.seed), options)


def _pieces(job: Job, rng: np.random.Generator, options: GenerateOptions) -> Iterator[tuple[list[Note], float]]:
    while True:
        cand = generate_from(job.start, rng, options)
        if cand.exhausted:
            log.warning(
                "the model produced %d events without reaching the requested length; the rest is silence",
                len(cand.stream) - len(job.start.stream),
            )
        yield job.notes(cand), job.qpm


def make_output_dir(folder: str) -> None:
    """``--output-dir``, made if missing; OutputPathError (one line) if it cannot be."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputPathError(f"--output-dir: {folder} is a file, not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise OutputPathError(f"--output-dir: cannot make {folder}: {err.strerror or err}") from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"--output-dir: {folder} is not writable")


def run(args: argparse.Namespace) -> int:
    """``magenta-live generate``: write ``--num-outputs`` MIDI files into ``--output-dir``; returns
    the exit status."""
    from live.models import load

    from live.models.bundled import resolve_model
    from live.models.vae import is_vae_file, load_vae

    options = GenerateOptions.from_args(args)
    path = resolve_model(options.model)
    if is_vae_file(path):
        from live.generate.vae import run_vae

        vae = load_vae(path)
        make_output_dir(options.output_dir)
        names = output_names(options.num_outputs)
        run_vae(vae, options, names)
        print(f"wrote {len(names)} MIDI file(s) to {options.output_dir}")
        return 0
    if options.interpolate or options.sample:
        raise ConfigFileError(f"--{'interpolate' if options.interpolate else 'sample'} needs a MusicVAE model, "
                              f"and {options.model} is not one")
    make_output_dir(options.output_dir)
    model = load(path)
    pieces = generate(model, options)
    names = output_names(options.num_outputs)
    for name in names:
        notes, qpm = next(pieces)
        path = os.path.join(options.output_dir, name)
        write_midi(path, notes, qpm=qpm)
        log.info("wrote %s", path)
    print(f"wrote {len(names)} MIDI file(s) to {options.output_dir}")
    return 0
