"""The drums voice (Drums RNN: drum_kit, one_drum): one frozenset of drum pitches per step."""

from __future__ import annotations

from collections.abc import Hashable

import mido

from live.engine.agent import ticks_per_step
from live.engine.voices.base import Play, StepInput, StepVoice
from live.models.model import Model

EMPTY: frozenset[int] = frozenset()


class DrumVoice(StepVoice):
    """Drum kits (drum_kit) and a single drum (one_drum): one frozenset of MIDI pitches per step.

    Hits are played on the agent's channel (10 for a kit) at ``velocity``, each ended one step
    later. The player's step is the set of drum pitches struck in it (the encoding maps them to
    its drum classes; pitches in none are dropped).
    """

    def __init__(self, model: Model, channel: int) -> None:
        super().__init__(model, channel)
        self.step_ticks = ticks_per_step(model)
        self.sounding: dict[int, int] = {}  # pitch -> tick of its planned note-off

    @staticmethod
    def is_quiet(event: Hashable) -> bool:
        return not event

    def player_events(self, step: StepInput, held: set[int]) -> list[Hashable]:
        return [frozenset(pitch for pitch, _ in step.onsets)]

    def render(self, events: list[Hashable], tick: int, velocity: int, play: Play) -> None:
        end = tick + self.step_ticks
        for event in events:
            for pitch in sorted(event):  # type: ignore[union-attr]
                if pitch in self.sounding and self.sounding[pitch] > tick:  # still sounding: end it first
                    play(tick, mido.Message("note_off", channel=self.channel, note=pitch, velocity=0))
                play(tick, mido.Message("note_on", channel=self.channel, note=pitch, velocity=velocity))
                play(end, mido.Message("note_off", channel=self.channel, note=pitch, velocity=0))
                self.sounding[pitch] = end
        for pitch in [p for p, off in self.sounding.items() if off <= tick]:
            del self.sounding[pitch]

    def release(self, tick: int, play: Play) -> None:
        # Every hit's note-off is already planned; end early the ones due after ``tick``.
        for pitch, off in sorted(self.sounding.items()):
            if off > tick:
                play(tick, mido.Message("note_off", channel=self.channel, note=pitch, velocity=0))
        self.sounding.clear()

    def forget(self) -> None:
        self.sounding.clear()
