"""Voices: how each step-grid family turns the player's notes into model events, and back.

``base`` holds what they share; ``melody``, ``drums`` and ``polyphony`` one family each.
Voices know a family's vocabulary, never the modes that use them.
"""

from __future__ import annotations

from live.engine.voices.base import (
    Play,
    StepInput,
    StepVoice,
    out_of_scale,
    quiet_labels,
    scale_penalty,
    sounding_mask,
    to_midi_range,
)
from live.engine.voices.drums import DrumVoice
from live.engine.voices.melody import MelodyVoice
from live.engine.voices.polyphony import PolyVoice
from live.models.configs import DRUMS, IMPROV, MELODY, POLYPHONY, get_config
from live.models.model import Model

__all__ = [
    "DrumVoice", "MelodyVoice", "Play", "PolyVoice", "StepInput", "StepVoice", "out_of_scale", "quiet_labels",
    "scale_penalty", "sounding_mask", "to_midi_range", "voice_for",
]


def voice_for(model: Model, channel: int) -> StepVoice:
    """The voice of ``model``'s family (step-grid families only)."""
    family = get_config(model.config_id).family
    if family in (MELODY, IMPROV):
        return MelodyVoice(model, channel)
    if family == DRUMS:
        return DrumVoice(model, channel)
    if family == POLYPHONY:
        return PolyVoice(model, channel)
    raise ValueError(f"{model.config_id} ({family}) is not a step-grid model")
