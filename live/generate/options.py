"""The ``generate`` flags: Magenta's generate-script flags, their literals, and the checks of
what a family accepts."""

from __future__ import annotations

import argparse
import ast
import logging
import math
from dataclasses import dataclass, fields
from typing import Any, Callable

import numpy as np

from live.settings import Number
from live.errors import ConfigFileError
from live.models.configs import DRUMS, IMPROV, MELODY, PERFORMANCE, POLYPHONY
from live.models.encodings.base import MELODY_NO_EVENT

log = logging.getLogger("live.generate")

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
# Safety limits on events per time step (see Candidate): far above what music needs.
MAX_POLY_EVENTS_PER_STEP = 300
MAX_PERF_EVENTS_PER_STEP = 20
EPS = 1e-6  # absorbs float noise when seconds are turned back into whole steps

FAMILY_NAMES = {
    MELODY: "Melody RNN",
    IMPROV: "Improv RNN",
    POLYPHONY: "Polyphony RNN",
    PERFORMANCE: "Performance RNN",
    DRUMS: "Drums RNN",
}
# Which primer flags each family reads.
PRIMER_FLAGS = {
    MELODY: ("primer_melody", "primer_midi"),
    IMPROV: ("primer_melody", "primer_midi"),
    POLYPHONY: ("primer_pitches", "primer_melody", "primer_midi"),
    PERFORMANCE: ("primer_pitches", "primer_melody", "primer_midi"),
    DRUMS: ("primer_drums", "primer_midi"),
}
# Flags that only one family reads: (attribute, family).
FAMILY_FLAGS = (
    ("backing_chords", IMPROV),
    ("render_chords", IMPROV),
    ("condition_on_primer", POLYPHONY),
    ("inject_primer_during_generation", POLYPHONY),
    ("notes_per_second", PERFORMANCE),
    ("pitch_class_histogram", PERFORMANCE),
    ("disable_conditioning", PERFORMANCE),
)


def flag(attr: str) -> str:
    return "--" + attr.replace("_", "-")


# --------------------------------------------------------------------------- arguments


LIMITS = {
    "num_outputs": Number("--num-outputs", 1, 10_000, integer=True, meaning="files"),
    "num_steps": Number("--num-steps", 1, 100_000, integer=True, meaning="steps"),
    "qpm": Number("--qpm", 20, 400, meaning="quarter notes per minute"),
    "temperature": Number("--temperature", 0, 10, meaning="0: always the likeliest event"),
    "beam_size": Number("--beam-size", 1, 64, integer=True),
    "branch_factor": Number("--branch-factor", 1, 64, integer=True),
    "steps_per_iteration": Number("--steps-per-iteration", 1, 1024, integer=True),
    "seed": Number("--seed", 0, 2**32 - 1, integer=True),
    "steps_per_chord": Number("--steps-per-chord", 1, 256, integer=True),
}
"""The numeric flags' ranges: generous, but with an end, so that no request makes work (or
file names) in proportion to an absurd number before it starts."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``generate`` flags (Magenta's generate-script flags, spelled with dashes)."""
    g = parser.add_argument_group("model and output")
    g.add_argument(
        "--model", required=True,
        help="a bundled model name (see `magenta-live models`), a model file (.npz) or a Magenta bundle (.mag)",
    )
    g.add_argument("--output-dir", default="generated", help="directory for the MIDI files (default: %(default)s)")
    g.add_argument("--num-outputs", type=LIMITS["num_outputs"].argtype, default=10, help="how many files to write (default: %(default)s)")
    g.add_argument(
        "--num-steps",
        type=LIMITS["num_steps"].argtype,
        default=None,
        help="total length including the primer: sixteenth steps (default 128); for performance "
        "models 10 ms steps (default 3000); improv models take the length from the chords",
    )
    g.add_argument(
        "--qpm", type=LIMITS["qpm"].argtype, default=None, help="tempo in quarter notes per minute (default 120; a primer MIDI file's tempo wins)"
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
        type=LIMITS["temperature"].argtype,
        default=1.0,
        help="softmax temperature; 0 always takes the most likely event (default: %(default)s)",
    )
    g.add_argument("--beam-size", type=LIMITS["beam_size"].argtype, default=1, help="beam search: candidates kept (default: %(default)s)")
    g.add_argument("--branch-factor", type=LIMITS["branch_factor"].argtype, default=1, help="beam search: branches per candidate (default: %(default)s)")
    g.add_argument(
        "--steps-per-iteration", type=LIMITS["steps_per_iteration"].argtype, default=1, help="beam search: events per iteration (default: %(default)s)"
    )
    g.add_argument("--seed", type=LIMITS["seed"].argtype, default=None, help="random seed; the same seed gives the same files (default: random)")
    g = parser.add_argument_group("MusicVAE (a model trained with --config cat-mel_2bar_small)")
    g.add_argument("--interpolate", nargs=2, metavar=("A.mid", "B.mid"), default=None,
                   help="--num-outputs two-bar phrases morphing from A's first two bars to B's (spherical "
                        "interpolation of their codes; the first is A re-voiced, the last B)")
    g.add_argument("--sample", action="store_true", default=None, help="--num-outputs two-bar phrases from random codes")
    g = parser.add_argument_group("improv")
    g.add_argument(
        "--backing-chords", default=None, help=f'chord symbols separated by spaces (default: "{DEFAULT_BACKING_CHORDS}")'
    )
    g.add_argument("--steps-per-chord", type=LIMITS["steps_per_chord"].argtype, default=16, help="steps each chord lasts (default: %(default)s, one bar)")
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
        raise ConfigFileError(f"{flag(attr)}: {text!r} is not a Python literal such as {example}") from None


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
    raise ConfigFileError(f"{flag(attr)}: expected {what}, or a list of them for successive segments; got {text!r}")


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




# --------------------------------------------------------------------------- run


def check_options(args: GenerateOptions, family: str) -> None:
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
            raise ConfigFileError(f"{flag(attr)} must be at least {low}, got {value}")
    if not (args.temperature >= 0 and math.isfinite(args.temperature)):
        raise ConfigFileError(f"--temperature must be 0 or more, got {args.temperature}")
    if args.qpm is not None and not (args.qpm > 0 and math.isfinite(args.qpm)):
        raise ConfigFileError(f"--qpm must be positive, got {args.qpm}")
    name = FAMILY_NAMES[family]
    given = [attr for attr in ("primer_melody", "primer_midi", "primer_pitches", "primer_drums") if getattr(args, attr)]
    for attr in given:
        if attr not in PRIMER_FLAGS[family]:
            accepted = ", ".join(flag(a) for a in PRIMER_FLAGS[family])
            raise ConfigFileError(f"{flag(attr)} does not apply to {name} models (they take {accepted})")
    if len(given) > 1:
        raise ConfigFileError(f"give one primer, not {' and '.join(flag(a) for a in given)}")
    for attr, owner in FAMILY_FLAGS:
        if getattr(args, attr) is not None and owner != family:
            raise ConfigFileError(f"{flag(attr)} applies to {FAMILY_NAMES[owner]} models, not to {name} models")
    if family == IMPROV and args.num_steps is not None:
        log.warning("--num-steps is ignored for Improv RNN: the length is the chords times --steps-per-chord")


@dataclass
class GenerateOptions:
    """What ``magenta-live generate`` is asked for, as values (the flags' names and meanings).

    Primer and conditioning values are the flags' texts (a Python literal such as
    ``"[60, -2, 62]"``), parsed and checked by the family's job. Lengths are in steps: sixteenth
    steps for the step families, 10 ms steps for performance; None takes the family's default.
    """

    model: str = ""
    output_dir: str = "generated"
    num_outputs: int = 10
    num_steps: int | None = None
    qpm: float | None = None  # quarter notes per minute; None: 120, or the primer MIDI file's
    primer_melody: str | None = None
    primer_midi: str | None = None
    primer_pitches: str | None = None
    primer_drums: str | None = None
    temperature: float = 1.0
    beam_size: int = 1
    branch_factor: int = 1
    steps_per_iteration: int = 1
    seed: int | None = None
    backing_chords: str | None = None
    steps_per_chord: int = 16
    render_chords: bool | None = None
    condition_on_primer: bool | None = None
    inject_primer_during_generation: bool | None = None
    notes_per_second: str | None = None
    pitch_class_histogram: str | None = None
    disable_conditioning: str | None = None
    interpolate: list[str] | None = None  # MusicVAE: two MIDI files to morph between
    sample: bool | None = None  # MusicVAE: draw phrases from the prior

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> GenerateOptions:
        """The options the parsed ``generate`` flags give."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})
