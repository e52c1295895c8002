"""The base of every step-grid agent: the step clock, the player's quantized input, the stream.

Step-grid families (melody, improv, polyphony, drums) quantize the player to the model's step
(see ``live.engine.agent``). A :class:`StepAgent` collects the player's messages per step,
follows the player's key (``live.engine.key``: melody and improv models hear the player moved
into their key), and at each step's mid-point hands the complete step to ``process``, which the
modes (call-and-response, improv, drums, harmonize) define.
"""

from __future__ import annotations

from typing import Any, Hashable

import mido
import numpy as np

from live.engine.agent import Agent, AgentSpec, OnSteps, Sink, density_bias, ticks_per_step
from live.engine.key import Key, Tonality
from live.engine.stream import Stream
from live.engine.voices import StepInput, StepVoice, voice_for
from live.models.configs import IMPROV, MELODY, get_config
from live.models.model import Model


class StepAgent(OnSteps, Agent):
    """What every step-grid agent shares: the step clock, the player's quantized input, the stream."""

    follows_register = True  # melody models hear the player's register moved to theirs (improv: no)

    def __init__(
        self, spec: AgentSpec, model: Model, sink: Sink, rng: np.random.Generator, ticks_per_bar: int = 96, ticks_per_beat: int = 24
    ) -> None:
        super().__init__(spec, model, sink, rng, ticks_per_bar, ticks_per_beat)
        self.step_ticks = ticks_per_step(model)
        self.steps_per_bar = max(1, ticks_per_bar // self.step_ticks)
        self.stream = Stream(model, scored=False)
        self.voice: StepVoice = voice_for(model, self.channel)
        self.inputs: dict[int, StepInput] = {}  # step -> what the player did in it
        self.held: set[int] = set()  # pitches the player holds (after the last processed step)
        self.processed = -1  # the last step whose input was fed
        config = get_config(model.config_id)
        transposed = config.family in (MELODY, IMPROV) and config.transpose_to_key is not None
        self.tonality = Tonality(
            spec.key, config.transpose_to_key if transposed else None, config.min_note, config.max_note, self.follows_register
        )
        self.retunes = 0  # how often a new key or register re-primed the stream

    # -- the player's side -------------------------------------------------------------------

    def note(self, tick: int, msg: mido.Message) -> None:
        velocity = self.record(tick, msg)
        if velocity:
            self.tonality.observe(msg.note)

    def record(self, tick: int, msg: mido.Message) -> int:
        """Keep a player's note message as its step's input; returns its velocity (0: a note-off)."""
        velocity = msg.velocity if msg.type == "note_on" else 0
        self.inputs.setdefault(self.step_of(tick), StepInput()).messages.append((msg.note, velocity))
        return velocity

    @property
    def key(self) -> Key | None:
        """The player's key in use (``--key`` or the running estimate), or None while unknown."""
        return self.tonality.key

    def take_input(self, step: int) -> StepInput:
        """The player's input of ``step`` (and of any earlier step not yet taken), with ``held`` updated."""
        taken = StepInput()
        for s in sorted(k for k in self.inputs if k <= step):
            taken.messages += self.inputs.pop(s).messages
        for pitch, velocity in taken.messages:
            if velocity:
                self.held.add(pitch)
            else:
                self.held.discard(pitch)
        return taken

    # -- the clock's side ----------------------------------------------------------------------

    # -- helpers for subclasses --------------------------------------------------------------

    def control(self, step: int) -> Any:
        """The conditioning input for ``step`` (improv: its chord); None for unconditioned models."""
        return None

    def feed(self, events: list[Hashable], next_step: int) -> None:
        """Feed one step's events; the last one is fed with the control of ``next_step``."""
        for i, event in enumerate(events):
            self.stream.feed(event, self.control(next_step) if i == len(events) - 1 else self.control(next_step - 1))

    def allowed_pitch_classes(self, step: int) -> frozenset[int] | None:
        """The pitch classes the scale lock lets step ``step`` draw, as the model sees them (the
        key's scale at the voice's offset); None while the key is unknown."""
        return self.tonality.model_scale(self.voice.offset)

    def sampling_bias(self, step: int) -> np.ndarray | None:
        """The logit bias for drawing step ``step``: density and scale lock (None: neither)."""
        p = self.params
        bias = density_bias(self.voice.quiet, self.model.num_classes, p.density)
        lock = self.voice.scale_bias(self.stream, self.allowed_pitch_classes(step), p.scale_lock) if p.scale_lock > 0 else None
        if lock is None:
            return bias
        return lock if bias is None else bias + lock

    def sample_step(self, step: int, must_sound: bool = False) -> list[Hashable]:
        """Sample step ``step``'s events (the stream is primed with everything before it);
        ``must_sound``: the step starts a note."""
        p = self.params
        bias = self.sampling_bias(step)
        return self.voice.sample(self.stream, self.rng, p.temperature, bias, self.control(step + 1), must_sound, p.top_p)

    def render(self, events: list[Hashable], step: int) -> None:
        self.voice.render(events, step * self.step_ticks, self.params.velocity, self.play)

    def silence(self, step: int) -> None:
        """End the voice's sounding notes at the start of ``step``."""
        self.voice.release(step * self.step_ticks, self.play)

    def stop(self, tick: int) -> None:
        super().stop(tick)
        self.voice.forget()
        self.inputs.clear()
        self.held.clear()
        self.processed = -1  # the clock may start again from anywhere (a MIDI Start is tick 0)
