"""The modes, registered in one place: which agent class plays a mode with a model of a family."""

from __future__ import annotations

from live.engine.agent import Agent
from live.engine.call_response import CallResponse, Continue
from live.engine.drums import DrumsAgent
from live.engine.improv import Improv
from live.engine.performance import Duet, PerformanceCallResponse, PerformanceContinue
from live.engine.polyphony import Harmonize
from live.engine.vae_agent import Morph, Vary
from live.models.configs import DRUMS, IMPROV, MELODY, PERFORMANCE, POLYPHONY, VAE
from live.protocol import MODES

AGENTS: dict[str, dict[str, type[Agent]]] = {
    # mode -> model family -> the agent class that plays it
    "call-response": {
        MELODY: CallResponse, IMPROV: CallResponse, POLYPHONY: CallResponse, DRUMS: CallResponse,
        PERFORMANCE: PerformanceCallResponse,
    },
    "continue": {
        MELODY: Continue, IMPROV: Continue, POLYPHONY: Continue, DRUMS: Continue, PERFORMANCE: PerformanceContinue,
    },
    "improv": {IMPROV: Improv},
    "harmonize": {POLYPHONY: Harmonize},
    "drums": {DRUMS: DrumsAgent},
    "duet": {PERFORMANCE: Duet},
    "vary": {VAE: Vary},
    "morph": {VAE: Morph},
}
assert tuple(AGENTS) == MODES


def agent_class(mode: str, family: str) -> type[Agent]:
    """The agent class that plays ``mode`` with a model of ``family``; ValueError if none does."""
    if mode not in AGENTS:
        raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    classes = AGENTS[mode]
    if family not in classes:
        raise ValueError(f"--mode {mode} needs a {' or '.join(classes)} model, not a {family} model")
    return classes[family]
