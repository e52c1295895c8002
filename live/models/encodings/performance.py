"""Performance RNN encodings: MIDI-like event streams with absolute timing.

A performance is a stream of ``PerfEvent(kind, value)``:

- ``NOTE_ON`` / ``NOTE_OFF``: value is a MIDI pitch 0..127;
- ``TIME_SHIFT``: value is a number of time steps, 1..max_shift_steps (Performance RNN uses
  100 steps per second, so one step is 10 ms and the longest shift is 1 second);
- ``VELOCITY``: value is a velocity bin 1..num_velocity_bins, applying to later note-ons;
- ``DURATION``: value is a number of steps (note encoding only).

The kind numbers are those of note-seq's ``PerformanceEvent``.

Magenta's configurations (``magenta/models/performance_rnn/performance_model.py``), built by
``performance_encoder(config_id)``:

==================================================  ==========  ===========
config                                              input_size  num_classes
==================================================  ==========  ===========
performance                                         356         356
performance_with_dynamics                           388         388
performance_with_dynamics_compact                   388 (*)     388
performance_with_dynamics_and_modulo_encoding       16          388
performance_with_dynamics_and_note_encoding         315         315 (**)
density_conditioned_performance_with_dynamics       8+388=396   388
pitch_conditioned_performance_with_dynamics         12+388=400  388
multiconditioned_performance_with_dynamics          20+388=408  388
optional_multiconditioned_performance_with_dynamics 21+388=409  388
==================================================  ==========  ===========

(*) Magenta feeds the compact model the class index (input size 1) and the graph expands it
to a one-hot of depth 388, so the network sees exactly the one-hot input of
``performance_with_dynamics``; we give that one-hot directly.

(**) The note encoding has six softmax heads (13, 77, 128, 32, 25, 40 classes) over one logit
vector of 315; its events are 4-tuples and its labels 6-tuples, see
``NotePerformanceEncoder``.

Control signals (conditioned configurations) are note density (notes per second) and the
pitch-class histogram. Magenta computes them over a window that looks *forward* from each
event; ``NoteDensityWindow`` and ``PitchHistogramWindow`` compute the same values
incrementally, each value becoming final once the window after it has been played.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import numpy as np

from live.errors import EncodingError, UnknownConfigError
from live.models.encodings.base import (
    ConditionalEncoder,
    ControlEncoder,
    EventEncoder,
    MultipleControlEncoder,
    OneHotEncoding,
    OneHotEventEncoder,
    OptionalControlEncoder,
)

NOTE_ON = 1
NOTE_OFF = 2
TIME_SHIFT = 3
VELOCITY = 4
DURATION = 5

MIN_MIDI_PITCH = 0
MAX_MIDI_PITCH = 127
MIN_MIDI_VELOCITY = 1
MAX_MIDI_VELOCITY = 127
DEFAULT_MAX_SHIFT_STEPS = 100
DEFAULT_STEPS_PER_SECOND = 100
NOTES_PER_OCTAVE = 12

# Control values Magenta uses when the user gives none.
DEFAULT_NOTE_DENSITY = 15.0  # notes per second
DEFAULT_PITCH_HISTOGRAM: tuple[float, ...] = (1.0,) * NOTES_PER_OCTAVE
DEFAULT_DENSITY_BIN_RANGES: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)

PERFORMANCE_CONFIGS: tuple[str, ...] = (
    "performance",
    "performance_with_dynamics",
    "performance_with_dynamics_compact",
    "performance_with_dynamics_and_modulo_encoding",
    "performance_with_dynamics_and_note_encoding",
    "density_conditioned_performance_with_dynamics",
    "pitch_conditioned_performance_with_dynamics",
    "multiconditioned_performance_with_dynamics",
    "optional_multiconditioned_performance_with_dynamics",
)


class PerfEvent(NamedTuple):
    """One performance event: ``kind`` is NOTE_ON..DURATION, ``value`` its pitch/steps/bin."""

    kind: int
    value: int


def _velocity_bin_size(num_velocity_bins: int) -> int:
    if not 1 <= num_velocity_bins <= MAX_MIDI_VELOCITY - MIN_MIDI_VELOCITY + 1:
        raise EncodingError(f"number of velocity bins out of range: {num_velocity_bins}")
    span = MAX_MIDI_VELOCITY - MIN_MIDI_VELOCITY + 1
    return -(-span // num_velocity_bins)  # ceiling division


def velocity_to_bin(velocity: int, num_velocity_bins: int) -> int:
    """The velocity bin (1..num_velocity_bins) of MIDI velocity 1..127.

    Bins are ceil(127 / num_velocity_bins) velocities wide, starting at velocity 1.
    """
    return (velocity - MIN_MIDI_VELOCITY) // _velocity_bin_size(num_velocity_bins) + 1


def velocity_bin_to_velocity(velocity_bin: int, num_velocity_bins: int) -> int:
    """The lowest MIDI velocity of bin ``velocity_bin`` (1-based)."""
    return MIN_MIDI_VELOCITY + (velocity_bin - 1) * _velocity_bin_size(num_velocity_bins)


def event_to_num_steps(event: PerfEvent) -> int:
    """Time steps that ``event`` moves the performance forward (time shifts only)."""
    return event.value if event.kind == TIME_SHIFT else 0


class PerformanceOneHotEncoding(OneHotEncoding):
    """Performance event <-> class index, in note-seq's layout.

    Classes, in order: NOTE_ON min_pitch..max_pitch, NOTE_OFF min_pitch..max_pitch,
    TIME_SHIFT 1..max_shift_steps, then (when num_velocity_bins > 0) VELOCITY
    1..num_velocity_bins. Defaults give 128 + 128 + 100 = 356 classes (+ 32 = 388 with 32
    velocity bins). The default event is the longest time shift.
    """

    def __init__(
        self,
        num_velocity_bins: int = 0,
        max_shift_steps: int = DEFAULT_MAX_SHIFT_STEPS,
        min_pitch: int = MIN_MIDI_PITCH,
        max_pitch: int = MAX_MIDI_PITCH,
    ) -> None:
        ranges = [
            (NOTE_ON, min_pitch, max_pitch),
            (NOTE_OFF, min_pitch, max_pitch),
            (TIME_SHIFT, 1, max_shift_steps),
        ]
        if num_velocity_bins > 0:
            ranges.append((VELOCITY, 1, num_velocity_bins))
        self.num_velocity_bins = num_velocity_bins
        self.max_shift_steps = max_shift_steps
        self.min_pitch = min_pitch
        self.max_pitch = max_pitch
        # kind -> (first class index, lowest value, highest value)
        self._ranges: dict[int, tuple[int, int, int]] = {}
        self._kinds: list[int] = []  # kind of each class index
        offset = 0
        for kind, low, high in ranges:
            self._ranges[kind] = (offset, low, high)
            self._kinds.extend([kind] * (high - low + 1))
            offset += high - low + 1
        self.num_classes = offset
        self.default_event = PerfEvent(TIME_SHIFT, max_shift_steps)

    def encode_event(self, event: PerfEvent) -> int:
        kind, value = event
        try:
            offset, low, high = self._ranges[kind]
        except KeyError:
            raise EncodingError(f"event kind {kind} has no class in this encoding") from None
        if not low <= value <= high:
            raise EncodingError(f"{event} is out of range {low}..{high}")
        return offset + value - low

    def decode_event(self, index: int) -> PerfEvent:
        if not 0 <= index < self.num_classes:
            raise EncodingError(f"class index {index} is out of range 0..{self.num_classes - 1}")
        kind = self._kinds[index]
        offset, low, _ = self._ranges[kind]
        return PerfEvent(kind, low + index - offset)

    def event_to_num_steps(self, event: PerfEvent) -> int:
        return event_to_num_steps(event)


class ModuloPerformanceEncoder(OneHotEventEncoder):
    """Performance events as points on circles (note-seq's modulo encoding); one-hot labels.

    The input has one block per event kind, only the block of the event's kind is set:

    - NOTE_ON, NOTE_OFF [5 each]: valid bit; cos, sin of the pitch on a circle of 144
      (12 octaves); cos, sin of the pitch class on a circle of 12;
    - TIME_SHIFT [3]: valid bit; cos, sin of (steps - 1) on a circle of max_shift_steps;
    - VELOCITY [3] (when num_velocity_bins > 0): valid bit; cos, sin of (bin - 1) on a circle
      of num_velocity_bins.

    With 32 bins: input 16, 388 classes. Labels are ``PerformanceOneHotEncoding`` classes.
    """

    one_hot_input = False

    def __init__(
        self, num_velocity_bins: int = 32, max_shift_steps: int = DEFAULT_MAX_SHIFT_STEPS
    ) -> None:
        one_hot = PerformanceOneHotEncoding(num_velocity_bins, max_shift_steps)
        super().__init__(one_hot)
        # Each class's input vector, computed once: the input is a row lookup.
        blocks = [(NOTE_ON, 5), (NOTE_OFF, 5), (TIME_SHIFT, 3)]
        if num_velocity_bins > 0:
            blocks.append((VELOCITY, 3))
        self.input_size = sum(width for _, width in blocks)
        table = np.zeros((one_hot.num_classes, self.input_size), np.float64)
        start = 0
        for kind, width in blocks:
            _, low, high = one_hot._ranges[kind]
            for value in range(low, high + 1):
                row = table[one_hot.encode_event(PerfEvent(kind, value))]
                row[start] = 1.0
                position = value - low
                if kind in (NOTE_ON, NOTE_OFF):
                    row[start + 1 : start + 3] = _on_circle(position * math.pi / 72.0)
                    row[start + 3 : start + 5] = _on_circle((position % 12) * math.pi / 6.0)
                else:
                    size = high - low + 1
                    row[start + 1 : start + 3] = _on_circle(position * 2.0 * math.pi / size)
            start += width
        self.table = table.astype(np.float32)

    def encode_input(self, out: np.ndarray, control: Any = None) -> np.ndarray:
        out[:] = self.table[self.one_hot.encode_event(self._last())]
        return out


def _on_circle(angle: float) -> tuple[float, float]:
    return math.cos(angle), math.sin(angle)


def _best_segments(count: int) -> int:
    """The divisor d of ``count`` (1 <= d < count) minimizing d + count / d; smallest on ties."""
    best = min(
        (d for d in range(1, count) if count % d == 0), key=lambda d: (d + count // d, d)
    )
    if best <= 1:
        raise EncodingError(f"{count} cannot be split into segments (it is prime)")
    return best


class NotePerformanceEncoder(EventEncoder):
    """Magenta's note encoding: one event per note, several softmax heads.

    An event is a 4-tuple ``(PerfEvent(TIME_SHIFT, s), PerfEvent(NOTE_ON, pitch),
    PerfEvent(VELOCITY, bin), PerfEvent(DURATION, d))``: shift s = 0..max_shift_steps steps
    since the previous note's start, duration d = 1..max_duration_steps steps. It is
    split into six parts, each one-hot encoded: shift major and minor (shift = major *
    per_segment + minor), pitch, velocity bin, duration major and minor (of d - 1). The
    segment counts are the divisor of the range size that makes major + minor smallest.
    Defaults (32 bins): heads of 13, 77, 128, 32, 25, 40 classes; input 315.

    ``num_classes`` is the total logit width (315); ``class_sizes`` gives the heads. Labels
    are 6-tuples of class indices, one per head.
    """

    def __init__(
        self,
        num_velocity_bins: int = 32,
        max_shift_steps: int = 1000,
        max_duration_steps: int = 1000,
        min_pitch: int = MIN_MIDI_PITCH,
        max_pitch: int = MAX_MIDI_PITCH,
    ) -> None:
        super().__init__()
        self.num_velocity_bins = num_velocity_bins
        self.min_pitch = min_pitch
        self.max_pitch = max_pitch
        self.max_shift_steps = max_shift_steps
        self.max_duration_steps = max_duration_steps
        shift_segments = _best_segments(max_shift_steps + 1)  # shifts include 0
        self.shift_per_segment = (max_shift_steps + 1) // shift_segments
        duration_segments = _best_segments(max_duration_steps)
        self.duration_per_segment = max_duration_steps // duration_segments
        self.class_sizes: tuple[int, ...] = (
            shift_segments,
            self.shift_per_segment,
            max_pitch - min_pitch + 1,
            num_velocity_bins,
            duration_segments,
            self.duration_per_segment,
        )
        self._offsets = tuple(int(x) for x in np.cumsum((0,) + self.class_sizes[:-1]))
        self.input_size = sum(self.class_sizes)
        self.num_classes = self.input_size
        self.default_event = (
            PerfEvent(TIME_SHIFT, 0),
            PerfEvent(NOTE_ON, 60),
            PerfEvent(VELOCITY, 1),
            PerfEvent(DURATION, 1),
        )

    def event_to_label(  # type: ignore[override]
        self, event: tuple[PerfEvent, ...]
    ) -> tuple[int, ...]:
        """The six head indices of a note event (see the class docstring)."""
        shift, note, velocity, duration = event
        if (shift.kind, note.kind, velocity.kind, duration.kind) != (
            TIME_SHIFT,
            NOTE_ON,
            VELOCITY,
            DURATION,
        ):
            raise EncodingError(f"not a (TIME_SHIFT, NOTE_ON, VELOCITY, DURATION) tuple: {event}")
        if not 0 <= shift.value <= self.max_shift_steps:
            raise EncodingError(f"time shift out of range 0..{self.max_shift_steps}: {shift}")
        if not self.min_pitch <= note.value <= self.max_pitch:
            raise EncodingError(f"pitch out of range {self.min_pitch}..{self.max_pitch}: {note}")
        if not 1 <= velocity.value <= self.num_velocity_bins:
            raise EncodingError(
                f"velocity bin out of range 1..{self.num_velocity_bins}: {velocity}"
            )
        if not 1 <= duration.value <= self.max_duration_steps:
            raise EncodingError(f"duration out of range 1..{self.max_duration_steps}: {duration}")
        d = duration.value - 1
        return (
            shift.value // self.shift_per_segment,
            shift.value % self.shift_per_segment,
            note.value - self.min_pitch,
            velocity.value - 1,
            d // self.duration_per_segment,
            d % self.duration_per_segment,
        )

    def label_to_event(  # type: ignore[override]
        self, label: Sequence[int]
    ) -> tuple[PerfEvent, ...]:
        """The note event of six head indices."""
        if len(label) != 6 or any(
            not 0 <= i < size for i, size in zip(label, self.class_sizes)
        ):
            raise EncodingError(f"not a label of heads {self.class_sizes}: {label}")
        shift_major, shift_minor, pitch, velocity, dur_major, dur_minor = (int(i) for i in label)
        return (
            PerfEvent(TIME_SHIFT, shift_major * self.shift_per_segment + shift_minor),
            PerfEvent(NOTE_ON, pitch + self.min_pitch),
            PerfEvent(VELOCITY, velocity + 1),
            PerfEvent(DURATION, dur_major * self.duration_per_segment + dur_minor + 1),
        )

    def encode_input(self, out: np.ndarray, control: Any = None) -> np.ndarray:
        if not self.events:
            raise EncodingError("no event appended yet: append a primer event first")
        out[:] = 0.0
        for offset, index in zip(self._offsets, self.event_to_label(self.events[-1])):
            out[offset + index] = 1.0
        return out


# ----------------------------------------------------------------------------- controls


class NoteDensityEncoder(ControlEncoder):
    """Note density (notes per second, a float) as a one-hot over density bins.

    Bin i (0-based) holds densities below ``density_bin_ranges[i]`` not caught by an earlier
    bin; the last bin holds the rest, so there are len(ranges) + 1 bins (8 by default).
    """

    def __init__(self, density_bin_ranges: Sequence[float] = DEFAULT_DENSITY_BIN_RANGES) -> None:
        self.density_bin_ranges = tuple(float(r) for r in density_bin_ranges)
        self.input_size = len(self.density_bin_ranges) + 1

    def density_to_bin(self, density: float) -> int:
        """The bin index of ``density`` (notes per second)."""
        for index, upper in enumerate(self.density_bin_ranges):
            if density < upper:
                return index
        return len(self.density_bin_ranges)

    def bin_to_density(self, index: int) -> float:
        """The lowest density (notes per second) of bin ``index``: 0.0 for the first bin."""
        return 0.0 if index == 0 else self.density_bin_ranges[index - 1]

    def encode(self, control: float, out: np.ndarray) -> None:
        out[self.density_to_bin(control)] = 1.0


class PitchHistogramEncoder(ControlEncoder):
    """A pitch-class histogram (12 non-negative weights, C first) normalized to sum to 1.

    An all-zero histogram encodes as uniform (1/12 each).
    """

    input_size = NOTES_PER_OCTAVE

    def encode(self, control: Sequence[float], out: np.ndarray) -> None:
        if len(control) != NOTES_PER_OCTAVE:
            raise EncodingError(f"a pitch histogram has 12 values, got {len(control)}")
        total = 0.0
        for weight in control:
            total += float(weight)
        if total > 0:
            for i, weight in enumerate(control):
                out[i] = float(weight) / total
        else:
            out[:] = 1.0 / NOTES_PER_OCTAVE


class _ForwardWindow:
    """Shared bookkeeping of Magenta's forward-looking control windows.

    Magenta gives every event position i a control value computed over the window that
    *starts* at event i and extends over the next ``window_steps`` time steps. Positions
    that do not follow a time shift share the value of the position before them (no time
    has passed). So positions fall into groups, each starting right after a time shift (or
    at 0) and ending with the next time shift; a group's value covers the events from its
    start until the time shifts from there add up to at least ``window_steps`` steps -- the
    time shift that crosses that point is the last event inside -- or until the end of the
    performance when it is shorter (then the window is the part that exists).

    A group's value is final once the time shifts after its start reach ``window_steps``;
    later events cannot change it. Until then, ``value`` gives the value for the
    performance as it stands (its end truncating the window), which is what Magenta's
    ``extract`` returns on that prefix. Each event is added once and each group closed
    once, so appending costs constant amortized time.
    """

    def __init__(self, window_size_seconds: float, steps_per_second: int) -> None:
        self.steps_per_second = steps_per_second
        self.window_steps = int(round(window_size_seconds * steps_per_second))
        self.reset()

    def reset(self) -> None:
        """Forget all events."""
        self._n = 0
        self._steps = 0  # time steps elapsed so far
        self._last_kind: int | None = None
        self._group_of: list[int] = []  # position -> group index
        self._group_start: list[int] = []  # group -> first position
        self._group_time: list[int] = []  # group -> time steps elapsed before its start
        self._group_value: list[Any] = []  # group -> final value, None while pending
        self._pending = 0  # first group whose value is not final yet
        self._emitted = 0  # positions handed out by pop_final

    def __len__(self) -> int:
        """Number of events appended."""
        return self._n

    def append(self, event: PerfEvent) -> None:
        """Add the next event; constant time, amortized over the performance."""
        kind, value = event
        if self._last_kind is None or self._last_kind == TIME_SHIFT:
            group = len(self._group_start)
            self._group_start.append(self._n)
            self._group_time.append(self._steps)
            self._group_value.append(None)
            self._open_group()
            if self.window_steps <= 0:  # an empty window: nothing is ever inside
                self._group_value[group] = self._empty_value()
                self._pending = group + 1
        self._group_of.append(len(self._group_start) - 1)
        self._n += 1
        self._last_kind = kind
        self._take(kind, value)
        if kind == TIME_SHIFT:
            self._steps += value
            groups = len(self._group_start)
            while (
                self._pending < groups
                and self._steps - self._group_time[self._pending] >= self.window_steps
            ):
                self._group_value[self._pending] = self._close(self._pending)
                self._pending += 1

    @property
    def num_final(self) -> int:
        """How many leading positions have their final value."""
        if self._pending < len(self._group_start):
            return self._group_start[self._pending]
        return self._n

    def value(self, position: int) -> Any:
        """The control value at ``position`` for the events appended so far."""
        if not 0 <= position < self._n:
            raise IndexError(f"position {position} out of range 0..{self._n - 1}")
        group = self._group_of[position]
        final = self._group_value[group]
        return final if final is not None else self._provisional(group)

    def values(self) -> list[Any]:
        """The values at every position so far (as Magenta's ``extract`` on these events)."""
        return [self.value(i) for i in range(self._n)]

    def pop_final(self) -> list[tuple[int, Any]]:
        """``(position, value)`` for each position that became final since the last call."""
        stop = self.num_final
        out = [(i, self._group_value[self._group_of[i]]) for i in range(self._emitted, stop)]
        self._emitted = stop
        return out

    def latest_final(self) -> Any | None:
        """The value of the newest final position: the most recently completed window.

        It describes the window_size_seconds just played (ending at most one time shift
        ago), the natural control for "continue like this"; None before any window is
        complete.
        """
        stop = self.num_final
        return self._group_value[self._group_of[stop - 1]] if stop else None

    # Subclass hooks.
    def _open_group(self) -> None:
        """Remember what the new group's value will be measured from."""

    def _take(self, kind: int, value: int) -> None:
        """Update running totals with one event (before a time shift closes windows)."""

    def _close(self, group: int) -> Any:
        """The final value of ``group``, whose window the latest time shift completed."""
        raise NotImplementedError

    def _provisional(self, group: int) -> Any:
        """The value of a still-open ``group``, its window cut at the current end."""
        raise NotImplementedError

    def _empty_value(self) -> Any:
        raise NotImplementedError


class NoteDensityWindow(_ForwardWindow):
    """Note density (note-ons per second) in the window starting at each position.

    Equals note-seq's ``NoteDensityPerformanceControlSignal.extract`` exactly: for a
    complete window, the number of note-ons from the position until ``window_size_seconds``
    later, divided by the window length; for a window cut by the end of the performance,
    divided by the part that exists (0.0 when no time passes).

    Args:
        window_size_seconds: window length in seconds (3.0 in Magenta's configs).
        steps_per_second: time steps per second of the performance.
    """

    def __init__(
        self,
        window_size_seconds: float = 3.0,
        steps_per_second: int = DEFAULT_STEPS_PER_SECOND,
    ) -> None:
        super().__init__(window_size_seconds, steps_per_second)

    def reset(self) -> None:
        super().reset()
        self._notes = 0  # note-ons so far
        self._group_notes: list[int] = []  # group -> note-ons before its start

    def _open_group(self) -> None:
        self._group_notes.append(self._notes)

    def _take(self, kind: int, value: int) -> None:
        if kind == NOTE_ON:
            self._notes += 1

    def _close(self, group: int) -> float:
        # The time shift just taken is the last event inside the window; it adds no note.
        count = self._notes - self._group_notes[group]
        return count * self.steps_per_second / self.window_steps

    def _provisional(self, group: int) -> float:
        elapsed = self._steps - self._group_time[group]
        if elapsed <= 0:
            return 0.0
        return (self._notes - self._group_notes[group]) * self.steps_per_second / elapsed

    def _empty_value(self) -> float:
        return 0.0


class PitchHistogramWindow(_ForwardWindow):
    """Seconds each pitch class sounds in the window starting at each position.

    Equals note-seq's ``PitchHistogramPerformanceControlSignal.extract`` up to float
    rounding (we sum whole steps exactly, Magenta adds seconds one by one): 12 values, C
    first, each ``prior_count`` plus, for every time shift inside the window, its length in
    seconds times the number of distinct sounding pitches of that class. A pitch sounds
    from a note-on until a note-off of that pitch (repeated note-ons do not stack); the
    time shift that completes the window counts whole.

    Args:
        window_size_seconds: window length in seconds (5.0 in Magenta's configs).
        steps_per_second: time steps per second of the performance.
        prior_count: added to every pitch class (smoothing).
    """

    def __init__(
        self,
        window_size_seconds: float = 5.0,
        steps_per_second: int = DEFAULT_STEPS_PER_SECOND,
        prior_count: float = 0.01,
    ) -> None:
        self.prior_count = prior_count
        super().__init__(window_size_seconds, steps_per_second)

    def reset(self) -> None:
        super().reset()
        self._sounding = np.zeros(MAX_MIDI_PITCH + 1, bool)
        self._class_count = np.zeros(NOTES_PER_OCTAVE, np.int64)  # sounding pitches per class
        self._class_steps = np.zeros(NOTES_PER_OCTAVE, np.int64)  # sum of steps x pitches
        self._group_class_steps: list[np.ndarray | None] = []  # group -> _class_steps at start

    def _open_group(self) -> None:
        self._group_class_steps.append(self._class_steps.copy())

    def _take(self, kind: int, value: int) -> None:
        if kind == NOTE_ON and not self._sounding[value]:
            self._sounding[value] = True
            self._class_count[value % NOTES_PER_OCTAVE] += 1
        elif kind == NOTE_OFF and self._sounding[value]:
            self._sounding[value] = False
            self._class_count[value % NOTES_PER_OCTAVE] -= 1
        elif kind == TIME_SHIFT:
            self._class_steps += value * self._class_count

    def _provisional(self, group: int) -> list[float]:
        start = self._group_class_steps[group]
        assert start is not None
        return [
            self.prior_count + int(c) / self.steps_per_second for c in self._class_steps - start
        ]

    def _close(self, group: int) -> list[float]:
        histogram = self._provisional(group)
        self._group_class_steps[group] = None  # no longer needed
        return histogram

    def _empty_value(self) -> list[float]:
        return [self.prior_count] * NOTES_PER_OCTAVE


# ----------------------------------------------------------------------------- configs


def performance_encoder(config_id: str) -> EventEncoder:
    """A fresh encoder for one of Magenta's Performance RNN configurations.

    Controls of the conditioned configurations: density -> ``(notes_per_second,)``;
    pitch -> ``(histogram,)``; multi -> ``(notes_per_second, histogram)``; optional multi ->
    ``(disabled, (notes_per_second, histogram))``.

    Raises:
        UnknownConfigError: for an id not in ``PERFORMANCE_CONFIGS``.
    """
    if config_id not in PERFORMANCE_CONFIGS:
        raise UnknownConfigError(
            f"unknown Performance RNN config {config_id!r}; known: {', '.join(PERFORMANCE_CONFIGS)}"
        )
    if config_id == "performance":
        return OneHotEventEncoder(PerformanceOneHotEncoding())
    if config_id == "performance_with_dynamics_and_modulo_encoding":
        return ModuloPerformanceEncoder(num_velocity_bins=32)
    if config_id == "performance_with_dynamics_and_note_encoding":
        return NotePerformanceEncoder(num_velocity_bins=32)
    target = OneHotEventEncoder(PerformanceOneHotEncoding(num_velocity_bins=32))
    if config_id in ("performance_with_dynamics", "performance_with_dynamics_compact"):
        return target
    controls: list[ControlEncoder] = []
    if config_id != "pitch_conditioned_performance_with_dynamics":
        controls.append(NoteDensityEncoder(DEFAULT_DENSITY_BIN_RANGES))
    if config_id != "density_conditioned_performance_with_dynamics":
        controls.append(PitchHistogramEncoder())
    control: ControlEncoder = MultipleControlEncoder(controls)
    if config_id.startswith("optional_"):
        control = OptionalControlEncoder(control)
    return ConditionalEncoder(control, target)


def control_windows(
    config_id: str, steps_per_second: int = DEFAULT_STEPS_PER_SECOND
) -> list[_ForwardWindow]:
    """Fresh control extractors for a conditioned config, in the order of its control tuple.

    Empty for unconditioned configs.
    """
    if config_id not in PERFORMANCE_CONFIGS:
        raise UnknownConfigError(f"unknown Performance RNN config {config_id!r}")
    windows: list[_ForwardWindow] = []
    if config_id in (
        "density_conditioned_performance_with_dynamics",
        "multiconditioned_performance_with_dynamics",
        "optional_multiconditioned_performance_with_dynamics",
    ):
        windows.append(NoteDensityWindow(3.0, steps_per_second))
    if config_id in (
        "pitch_conditioned_performance_with_dynamics",
        "multiconditioned_performance_with_dynamics",
        "optional_multiconditioned_performance_with_dynamics",
    ):
        windows.append(PitchHistogramWindow(5.0, steps_per_second))
    return windows
