"""The melody voice (Melody RNN and Improv RNN): one event per step, moved between keys."""

from __future__ import annotations

from typing import Hashable

import mido
import numpy as np

from live.engine.stream import Stream
from live.engine.voices.base import Play, ScaleLock, StepInput, StepVoice, _one_hot, out_of_scale, scale_penalty, to_midi_range
from live.models.configs import get_config
from live.models.encodings.melody import MELODY_NO_EVENT, MELODY_NOTE_OFF
from live.models.model import Model


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
        self.sounding: int | None = None  # the pitch this voice plays (the player's side)
        self.heard: int | None = None  # the player's pitch the model last heard (the model's side)
        self.offset = 0  # semitones from the player's pitches to the model's (Tonality.offset)
        one_hot = _one_hot(model)
        self._plain = one_hot.num_classes  # classes from here on are lookback's "repeat" labels
        pitches = [one_hot.decode_event(i) for i in range(one_hot.num_classes)]
        self.scale_lock = ScaleLock(np.array(pitches + [-1] * (model.num_classes - self._plain)))

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

    def retune(self, offset: int) -> None:
        """Hear the player ``offset`` semitones moved from now on (forgetting what was heard:
        the caller feeds the stream again)."""
        self.offset = offset
        self.heard = None

    def player_events(self, step: StepInput, held: set[int]) -> list[Hashable]:
        if step.onsets:
            self.heard = self.fold(step.onsets[-1][0] + self.offset)
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
                pitch = to_midi_range(int(event) - self.offset)
                play(tick, mido.Message("note_on", channel=self.channel, note=pitch, velocity=velocity))
                self.sounding = pitch

    def scale_bias(self, stream: Stream, allowed: frozenset[int] | None, lock: float) -> np.ndarray | None:
        base = self.scale_lock.bias(allowed, lock)
        n = self._plain
        if base is None or self.model.num_classes == n:
            return base
        # lookback "repeat" labels: the event they stand for depends on the history
        encoder = stream.encoder
        repeats = np.array([encoder.label_to_event(label) for label in range(n, self.model.num_classes)])
        out = out_of_scale(repeats, allowed)
        if not out.any():
            return base
        bias = base.copy()
        bias[n:] = out * scale_penalty(round(lock, 3))
        return bias

    def release(self, tick: int, play: Play) -> None:
        if self.sounding is not None:
            play(tick, mido.Message("note_off", channel=self.channel, note=self.sounding, velocity=0))
            self.sounding = None

    def forget(self) -> None:
        self.sounding = None
