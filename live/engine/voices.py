"""Voices: how a step-grid family turns the player's notes into model events, and back.

A voice knows one family's events. Each step it is given what the player did in that step (a
:class:`StepInput`) and gives the events to feed; it samples one step of events from a stream;
it renders events into note-on / note-off messages on the agent's channel at a tick, keeping
track of what it has sounding so that every note it starts, it ends.

The agents (``live.engine.call_response`` and the accompaniment modes) own the timing and the
stream; a voice owns the family's vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

import mido
import numpy as np

from live.engine.sampling import MASKED
from live.engine.stream import Stream
from live.models.configs import get_config
from live.models.encodings.melody import MELODY_NO_EVENT, MELODY_NOTE_OFF
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
    """Base of the step-grid voices. Subclasses define the family's events."""

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

    def sample(
        self, stream: Stream, rng: np.random.Generator, temperature: float, bias: np.ndarray | None, control: Any,
        must_sound: bool = False,
    ) -> list[Hashable]:
        """Sample one step of events from the primed ``stream`` (appending them).

        ``must_sound``: the step starts a note (an answer's first step: on its grid point)."""
        if must_sound:
            bias = self.sounding_mask if bias is None else bias + self.sounding_mask
        event, _ = stream.sample(rng, temperature, control, bias)
        return [event]

    def render(self, events: list[Hashable], tick: int, velocity: int, play: Play) -> None:
        """Play one step's ``events`` at ``tick``."""
        raise NotImplementedError

    def release(self, tick: int, play: Play) -> None:
        """End every note this voice has sounding, at ``tick``."""
        raise NotImplementedError

    def forget(self) -> None:
        """Forget sounding notes (someone else, e.g. a cancel, ended them)."""
        raise NotImplementedError


class MelodyVoice(StepVoice):
    """Monophonic melodies (Melody RNN, Improv RNN): one event per step.

    Events: a pitch starts a note, ``MELODY_NOTE_OFF`` ends it, ``MELODY_NO_EVENT`` holds.
    The player's pitches are folded by octaves into the model's range; of several notes struck
    in one step the last one counts (the model hears one voice).
    """

    def __init__(self, model: Model, channel: int) -> None:
        super().__init__(model, channel)
        spec = get_config(model.config_id)
        self.low, self.high = spec.min_note, spec.max_note  # high is exclusive
        self.sounding: int | None = None  # the pitch this voice plays
        self.heard: int | None = None  # the player's pitch the model last heard

    @staticmethod
    def is_quiet(event: Hashable) -> bool:
        return event in (MELODY_NO_EVENT, MELODY_NOTE_OFF)

    def fold(self, pitch: int) -> int:
        """``pitch`` moved by octaves into [low, high)."""
        while pitch < self.low:
            pitch += 12
        while pitch >= self.high:
            pitch -= 12
        return pitch

    def player_events(self, step: StepInput, held: set[int]) -> list[Hashable]:
        if step.onsets:
            self.heard = self.fold(step.onsets[-1][0])
            return [self.heard]
        if self.heard is not None and not held:
            self.heard = None
            return [MELODY_NOTE_OFF]
        return [MELODY_NO_EVENT]

    def render(self, events: list[Hashable], tick: int, velocity: int, play: Play) -> None:
        for event in events:
            if event == MELODY_NO_EVENT:
                continue
            self.release(tick, play)
            if event != MELODY_NOTE_OFF:
                play(tick, mido.Message("note_on", channel=self.channel, note=int(event), velocity=velocity))
                self.sounding = int(event)

    def release(self, tick: int, play: Play) -> None:
        if self.sounding is not None:
            play(tick, mido.Message("note_off", channel=self.channel, note=self.sounding, velocity=0))
            self.sounding = None

    def forget(self) -> None:
        self.sounding = None


def voice_for(model: Model, channel: int) -> StepVoice:
    """The voice of ``model``'s family (step-grid families only)."""
    family = get_config(model.config_id).family
    if family in ("melody", "improv"):
        return MelodyVoice(model, channel)
    if family == "drums":
        from live.engine.drums import DrumVoice

        return DrumVoice(model, channel)
    if family == "polyphony":
        from live.engine.polyphony import PolyVoice

        return PolyVoice(model, channel)
    raise ValueError(f"{model.config_id} ({family}) is not a step-grid model")
