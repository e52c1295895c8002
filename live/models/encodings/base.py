"""The incremental encoder interface every configuration implements.

An encoder holds the history of one event sequence (one stream) and the features derived from
it: lookback pointers, step counters, key histograms, rolling windows. Appending an event
updates those features in constant time, so producing the model input for the newest step never
rescans the history.

Vocabulary, matching Magenta's ``EventSequenceEncoderDecoder``:

- ``input for position i`` is the vector the model reads at step i; it describes event i and
  its context (``events_to_input(events, i)`` in note-seq).
- ``label for position i`` is the class index of event i as a target (``events_to_label``).
  Some encodings (lookback) give the same event different labels depending on history, so
  labels are asked of the encoder *before* the event is appended.

Conditional encodings (Improv RNN, conditioned Performance RNN) read a control event beside the
target: the input for position i combines the control for position i + 1 (the step about to be
predicted) with target event i. Controls are stateless per position, so they are passed to
``encode_input`` rather than stored.

Events are plain Python values, chosen per family:

- melodies: ``int``; a MIDI pitch 0..127, ``MELODY_NOTE_OFF`` (-1) or ``MELODY_NO_EVENT`` (-2)
- drums: ``frozenset`` of MIDI pitches struck on the step (empty = no hit)
- polyphony: ``PolyEvent(kind, pitch)`` (``live.models.encodings.polyphony``)
- performance: ``PerfEvent(kind, value)`` (``live.models.encodings.performance``)
- chords (improv controls): chord symbol ``str`` such as ``"Am7"``, or ``NO_CHORD`` ("N.C.")
"""

from __future__ import annotations

import abc
import copy
from typing import Any, Hashable

from live.errors import EncodingError

import numpy as np

MELODY_NOTE_OFF = -1
MELODY_NO_EVENT = -2
NO_CHORD = "N.C."


class EventEncoder(abc.ABC):
    """Incremental encoder for one event sequence. Subclasses set the class attributes below.

    Attributes:
        input_size: length of the model input vector for one step.
        num_classes: number of output classes of the model (softmax width).
        default_event: the event that means "nothing new happens on this step".
        one_hot_input: True when the input vector is exactly the one-hot of the newest event's
            class (``event_to_label``): a model may then take its kernel's row for that class
            instead of multiplying the vector (``Model.logits_of_class``).
    """

    input_size: int
    num_classes: int
    default_event: Any
    one_hot_input = False

    def __init__(self) -> None:
        self.events: list[Any] = []

    def __len__(self) -> int:
        """Number of events appended so far (steps)."""
        return len(self.events)

    def reset(self) -> None:
        """Forget the whole history."""
        self.events = []
        self._reset_features()

    def _reset_features(self) -> None:
        """Clear derived features; override when the encoder keeps any."""

    def append(self, event: Hashable) -> None:
        """Append one event (one step) and update features in constant time."""
        self.events.append(event)

    @abc.abstractmethod
    def encode_input(self, out: np.ndarray, control: Any = None) -> np.ndarray:
        """Write the input vector for the newest appended event into ``out``.

        Args:
            out: float32 array of shape [input_size]; it is overwritten (zeroed first).
            control: for conditional encodings, the control event for the *next* position
                (the step about to be predicted); ignored otherwise.
        Returns:
            ``out``.
        Raises:
            EncodingError: when no event has been appended yet.
        """

    def input_vector(self, control: Any = None) -> np.ndarray:
        """Like ``encode_input`` but into a fresh float32 [input_size] array."""
        return self.encode_input(np.zeros(self.input_size, np.float32), control)

    @abc.abstractmethod
    def event_to_label(self, event: Hashable) -> int:
        """Class index of ``event`` if it were appended next, given the current history."""

    @abc.abstractmethod
    def label_to_event(self, label: int) -> Hashable:
        """The event that class index ``label`` stands for, given the current history."""

    def copy(self) -> "EventEncoder":
        """An independent copy (history and features) for forking a stream."""
        return copy.deepcopy(self)


class OneHotEncoding(abc.ABC):
    """A bijection between events and class indices 0..num_classes-1 (note-seq's OneHotEncoding)."""

    num_classes: int
    default_event: Any

    @abc.abstractmethod
    def encode_event(self, event: Hashable) -> int:
        """Class index of ``event``; raises EncodingError when it cannot be represented."""

    @abc.abstractmethod
    def decode_event(self, index: int) -> Hashable:
        """The event for class ``index``."""

    def event_to_num_steps(self, event: Hashable) -> int:
        """How many time steps ``event`` lasts (1 for step-based encodings)."""
        return 1


class OneHotEventEncoder(EventEncoder):
    """Input is the one-hot of the newest event; label is its class index."""

    one_hot_input = True

    def __init__(self, one_hot: OneHotEncoding) -> None:
        super().__init__()
        self.one_hot = one_hot
        self.input_size = one_hot.num_classes
        self.num_classes = one_hot.num_classes
        self.default_event = one_hot.default_event

    def encode_input(self, out: np.ndarray, control: Any = None) -> np.ndarray:
        out[:] = 0.0
        out[self.one_hot.encode_event(self._last())] = 1.0
        return out

    def _last(self) -> Hashable:
        if not self.events:
            raise EncodingError("no event appended yet: append a primer event first")
        return self.events[-1]

    def event_to_label(self, event: Hashable) -> int:
        return self.one_hot.encode_event(event)

    def label_to_event(self, label: int) -> Hashable:
        return self.one_hot.decode_event(label)


class LookbackEncoder(OneHotEventEncoder):
    """Magenta's lookback encoding: repeats of 1 and 2 bars back, a binary step counter.

    Input for position p (sizes for a one-hot of n classes and k lookback distances):
    one-hot of event p [n]; for each distance d, one-hot of event p - d + 1, the event that a
    "repeat d steps back" label would produce next [k*n]; the binary counter of step p + 1,
    each bit +1 or -1 [binary_counter_bits]; for each d, 1 if event p equals event p - d [k].
    Labels n + i mean "repeat the event lookback_distances[i] steps back".
    """

    one_hot_input = False

    def __init__(
        self,
        one_hot: OneHotEncoding,
        lookback_distances: tuple[int, ...] = (16, 32),
        binary_counter_bits: int = 5,
    ) -> None:
        super().__init__(one_hot)
        self.lookback_distances = tuple(lookback_distances)
        self.binary_counter_bits = binary_counter_bits
        n, k = one_hot.num_classes, len(self.lookback_distances)
        self.input_size = n + k * n + binary_counter_bits + k
        self.num_classes = n + k
        self._default_index = one_hot.encode_event(one_hot.default_event)
        self._indices: list[int] = []  # one-hot index of every appended event

    def _reset_features(self) -> None:
        self._indices = []

    def append(self, event: Hashable) -> None:
        """Append one event; its one-hot index is computed (and the event checked) once, here."""
        index = self.one_hot.encode_event(event)
        self.events.append(event)
        self._indices.append(index)

    def encode_input(self, out: np.ndarray, control: Any = None) -> np.ndarray:
        events, indices = self.events, self._indices
        event = self._last()
        p = len(events) - 1
        n = self.one_hot.num_classes
        out[:] = 0.0
        out[indices[p]] = 1.0
        offset = n
        for d in self.lookback_distances:
            q = p - d + 1
            out[offset + (indices[q] if q >= 0 else self._default_index)] = 1.0
            offset += n
        step = p + 1
        for bit in range(self.binary_counter_bits):
            out[offset] = 1.0 if (step >> bit) & 1 else -1.0
            offset += 1
        for d in self.lookback_distances:
            q = p - d
            if q >= 0 and events[q] == event:
                out[offset] = 1.0
            offset += 1
        return out

    def event_to_label(self, event: Hashable) -> int:
        p, events, n = len(self.events), self.events, self.one_hot.num_classes
        distances = self.lookback_distances
        # Magenta's quirk: before the longest lookback exists, a default event is labelled as
        # a repeat of the longest lookback (whose "event" is the default one).
        if distances and p < distances[-1] and event == self.one_hot.default_event:
            return n + len(distances) - 1
        for i in reversed(range(len(distances))):
            q = p - distances[i]
            if q >= 0 and events[q] == event:
                return n + i
        return self.one_hot.encode_event(event)

    def label_to_event(self, label: int) -> Hashable:
        n = self.one_hot.num_classes
        if not 0 <= label < self.num_classes:
            raise EncodingError(f"class {label} is outside 0..{self.num_classes - 1}")
        if label >= n:
            d = self.lookback_distances[label - n]
            if len(self.events) < d:
                return self.one_hot.default_event
            return self.events[-d]
        return self.one_hot.decode_event(label)


class ControlEncoder(abc.ABC):
    """Encodes one control event (a chord, a note density...) into a vector. Stateless."""

    input_size: int

    @abc.abstractmethod
    def encode(self, control: Any, out: np.ndarray) -> None:
        """Write the vector for ``control`` into ``out`` (float32 [input_size], already zero)."""


class MultipleControlEncoder(ControlEncoder):
    """Concatenates several control encoders; the control is a tuple, one item per encoder."""

    def __init__(self, encoders: list[ControlEncoder]) -> None:
        self.encoders = list(encoders)
        self.input_size = sum(e.input_size for e in self.encoders)

    def encode(self, control: Any, out: np.ndarray) -> None:
        if len(control) != len(self.encoders):
            raise EncodingError(f"expected {len(self.encoders)} control values, got {len(control)}")
        offset = 0
        for encoder, value in zip(self.encoders, control):
            encoder.encode(value, out[offset : offset + encoder.input_size])
            offset += encoder.input_size


class OptionalControlEncoder(ControlEncoder):
    """A leading "disabled" flag before another control encoding; the control is (disabled, value)."""

    def __init__(self, encoder: ControlEncoder) -> None:
        self.encoder = encoder
        self.input_size = 1 + encoder.input_size

    def encode(self, control: Any, out: np.ndarray) -> None:
        disabled, value = control
        if disabled:
            out[0] = 1.0
        else:
            self.encoder.encode(value, out[1:])


class ConditionalEncoder(EventEncoder):
    """Target events conditioned on controls: input = [control for position p + 1, target input p]."""

    def __init__(self, control: ControlEncoder, target: EventEncoder) -> None:
        self.control = control
        self.target = target
        self.input_size = control.input_size + target.input_size
        self.num_classes = target.num_classes
        self.default_event = target.default_event

    @property
    def events(self) -> list[Any]:  # type: ignore[override]
        return self.target.events

    def __len__(self) -> int:
        return len(self.target)

    def reset(self) -> None:
        self.target.reset()

    def append(self, event: Hashable) -> None:
        self.target.append(event)

    def encode_input(self, out: np.ndarray, control: Any = None) -> np.ndarray:
        if control is None:
            raise EncodingError("this encoding is conditional: pass the control for the next step")
        c = self.control.input_size
        out[:c] = 0.0
        self.control.encode(control, out[:c])
        self.target.encode_input(out[c:])
        return out

    def event_to_label(self, event: Hashable) -> int:
        return self.target.event_to_label(event)

    def label_to_event(self, label: int) -> Hashable:
        return self.target.label_to_event(label)
