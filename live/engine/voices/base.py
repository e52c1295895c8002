"""Voices: how a step-grid family turns the player's notes into model events, and back.

A voice knows one family's events. Each step it is given what the player did in that step (a
:class:`StepInput`) and gives the events to feed; it samples one step of events from a stream;
it renders events into note-on / note-off messages on the agent's channel at a tick, keeping
track of what it has sounding so that every note it starts, it ends.

The agents (``live.engine.call_response`` and the accompaniment modes) own the timing and the
stream; a voice owns the family's vocabulary. This module holds what every voice shares; each
family's voice has a module of its own beside it, and voices never import the modes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

import mido
import numpy as np

from live.engine.sampling import MASKED
from live.engine.stream import Stream
from live.models.model import Model

Play = Callable[[int, mido.Message], None]
"""How a voice plays: ``play(tick, message)`` (the agent's ``play``)."""


@dataclass
class StepInput:
    """What the player did during one step.

    Attributes:
        messages: (pitch, velocity) of the player's notes in the order they came; velocity 0
            is a note-off.
    """

    messages: list[tuple[int, int]] = field(default_factory=list)

    @property
    def onsets(self) -> list[tuple[int, int]]:
        """(pitch, velocity) of the note-ons, in order."""
        return [m for m in self.messages if m[1] > 0]


def quiet_labels(model: Model, is_quiet: Callable[[Any], bool]) -> np.ndarray:
    """Class labels of ``model`` whose event is "quiet" (decoded with the plain one-hot table,
    so lookback "repeat" labels, which may repeat notes, are never counted as quiet)."""
    one_hot = _one_hot(model)
    return np.array([i for i in range(one_hot.num_classes) if is_quiet(one_hot.decode_event(i))], np.int64)


def sounding_mask(model: Model, quiet: np.ndarray) -> np.ndarray:
    """Logit bias [num_classes] that leaves only labels sure to start a note: the quiet labels
    and lookback's "repeat" labels (which may repeat a rest) are masked."""
    mask = np.zeros(model.num_classes, np.float32)
    mask[quiet] = MASKED
    mask[_one_hot(model).num_classes:] = MASKED
    return mask


def _one_hot(model: Model):
    encoder = model.make_encoder()
    encoder = getattr(encoder, "target", encoder)  # a conditional encoder wraps the event encoder
    return encoder.one_hot


class StepVoice:
    """Base of the step-grid voices. Subclasses define the family's events.

    Attributes:
        offset: semitones from the player's pitches to the model's (melody voices transpose;
            the key-free families keep 0).
    """

    offset = 0

    def __init__(self, model: Model, channel: int) -> None:
        self.model = model
        self.channel = channel
        self.quiet = quiet_labels(model, self.is_quiet)
        self.sounding_mask = sounding_mask(model, self.quiet)

    @staticmethod
    def is_quiet(event: Hashable) -> bool:
        """True for events that play nothing new (density lowers their logits)."""
        raise NotImplementedError

    def player_events(self, step: StepInput, held: set[int]) -> list[Hashable]:
        """The events that encode the player's step (``held``: pitches held after it)."""
        raise NotImplementedError

    def retune(self, offset: int) -> None:
        """Hear the player ``offset`` semitones moved from now on (the caller feeds the stream
        again); only transposing voices are ever retuned."""
        raise NotImplementedError(f"{type(self).__name__} does not transpose")

    def sample(
        self, stream: Stream, rng: np.random.Generator, temperature: float, bias: np.ndarray | None, control: Any,
        must_sound: bool = False, top_p: float = 1.0,
    ) -> list[Hashable]:
        """Sample one step of events from the primed ``stream`` (appending them).

        ``must_sound``: the step starts a note (an answer's first step: on its grid point).
        ``top_p``: nucleus sampling (see ``sample_class``)."""
        if must_sound:
            bias = self.sounding_mask if bias is None else bias + self.sounding_mask
        event, _ = stream.sample(rng, temperature, control, bias, top_p)
        return [event]

    def scale_bias(self, stream: Stream, allowed: frozenset[int] | None, lock: float) -> np.ndarray | None:
        """Logit bias [num_classes] for the scale lock: the classes that would start a pitch whose
        pitch class (as the model sees it) is not in ``allowed`` get ``log(1 - lock)`` (at lock 1:
        masked). None when nothing is locked (families without pitches, no key yet, lock 0)."""
        return None

    def render(self, events: list[Hashable], tick: int, velocity: int, play: Play) -> None:
        """Play one step's ``events`` at ``tick``."""
        raise NotImplementedError

    def release(self, tick: int, play: Play) -> None:
        """End every note this voice has sounding, at ``tick``."""
        raise NotImplementedError

    def forget(self) -> None:
        """Forget sounding notes (someone else, e.g. a cancel, ended them)."""
        raise NotImplementedError


def to_midi_range(pitch: int) -> int:
    """``pitch`` moved by octaves into MIDI's 0..127."""
    while pitch < 0:
        pitch += 12
    while pitch > 127:
        pitch -= 12
    return pitch


def out_of_scale(pitches: np.ndarray, allowed: frozenset[int]) -> np.ndarray:
    """1.0 where an event is a pitch (>= 0) whose pitch class is not in ``allowed``, else 0.0."""
    inside = np.isin(pitches % 12, list(allowed))
    return ((pitches >= 0) & ~inside).astype(np.float32)


def scale_penalty(lock: float) -> float:
    """The logit bias of an out-of-scale pitch at scale lock ``lock`` (0 < lock <= 1)."""
    return MASKED if lock >= 1.0 else math.log(1.0 - lock)


class ScaleLock:
    """The scale lock's logit biases for one model's classes, cached per (allowed pitch classes,
    lock): out-of-scale pitches get ``scale_penalty(lock)``.

    label_pitch: [num_classes] the pitch each class starts, negative for classes that start none.
    """

    CACHE = 64  # (allowed, lock) pairs kept; a knob sweep clears and starts again

    def __init__(self, label_pitch: np.ndarray) -> None:
        self.label_pitch = np.asarray(label_pitch)
        self._biases: dict[tuple[frozenset[int], float], np.ndarray] = {}

    def bias(self, allowed: frozenset[int] | None, lock: float) -> np.ndarray | None:
        """[num_classes] float32, or None when nothing is locked (no key yet, lock 0)."""
        if allowed is None or lock <= 0.0:
            return None
        key = (allowed, round(lock, 3))
        bias = self._biases.get(key)
        if bias is None:
            if len(self._biases) > self.CACHE:
                self._biases.clear()
            bias = self._biases[key] = out_of_scale(self.label_pitch, allowed) * np.float32(scale_penalty(key[1]))
        return bias
