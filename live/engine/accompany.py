"""Accompaniment on the step grid: a model that plays continuously, locked to the clock.

The base of ``--mode improv`` and ``--mode drums``. Each step is first *planned* and later
*committed*: at step ``s``'s mid-point (its input is complete) the agent

1. commits step ``s``: feeds the stream what really happened in it, which is the event it
   planned for ``s``, or what the player played there instead (taps fed to the drums model:
   teacher forcing), with the control of step ``s + 1`` as it is known now (improv: the chord
   the player holds now, not the one held a step earlier);
2. plans step ``s + 1``: draws it from the stream's next-step distribution (temperature and the
   density bias, see ``density_bias``) without feeding it yet, and plays it at step ``s + 1``'s
   first tick (half a step of look-ahead, as the other step agents).

That costs one model step per step, as ``Stream.sample`` would, but a planned step can still be
replaced by the player's before it enters the model's memory.

The stream starts at a bar line: when an agent starts mid-bar, the steps since the bar line are
fed as rests first, so the step counters some encodings have (drum_kit, attention_improv) count
bar positions as in training, where sequences begin on a bar.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from live.engine.agent import AgentSpec, AgentState, Sink
from live.engine.step_agent import StepAgent
from live.engine.sampling import sample_class
from live.engine.voices import StepInput
from live.models.model import Model


class Accompanist(StepAgent):
    """A step agent that plays on and on (until stopped). Subclasses define ``rest`` and may
    override ``primer``, ``ready``, ``heard``, ``truth`` and ``plays``; they call ``prime()`` at
    the end of their ``__init__`` (once what ``primer`` and ``control`` need is set).

    Attributes:
        planned: step -> the events drawn for it and played, not yet committed.
        started_at: the first step this agent committed since it (re)started, or None.
    """

    rest: Hashable = None  # the event of a step in which nothing happens

    def __init__(
        self, spec: AgentSpec, model: Model, sink: Sink, rng: np.random.Generator, ticks_per_bar: int = 96, ticks_per_beat: int = 24
    ) -> None:
        super().__init__(spec, model, sink, rng, ticks_per_bar, ticks_per_beat)
        self.planned: dict[int, list[Hashable]] = {}
        self.started_at: int | None = None

    # -- for subclasses ----------------------------------------------------------------------

    def primer(self) -> list[list[Hashable]]:
        """Steps of events fed before the agent starts (a whole number of bars); none by default."""
        return []

    def ready(self, step: int) -> bool:
        """True when the agent can start playing with step ``step`` (its input taken)."""
        return True

    def truth(self, step: int, got: StepInput) -> list[Hashable]:
        """What happened in ``step`` (fed to the stream): by default what was planned for it."""
        return self.planned.pop(step, [self.rest])

    def plays(self, step: int) -> bool:
        """True if the agent is to play ``step`` (plan and render it)."""
        return True

    # -- the loop --------------------------------------------------------------------------------

    def prime(self) -> None:
        """Reset the stream and feed the primer (at construction and after a stop)."""
        self.stream.reset()
        for events in self.primer():
            self.feed(events, 0)

    def process(self, step: int) -> None:
        got = self.take_input(step)
        self.heard(step, got)
        if self.started_at is None:
            if not self.ready(step):
                return
            self.start(step)
        self.feed(self.truth(step, got), step + 1)
        self.planned.pop(step, None)
        if self.plays(step + 1):
            events = self.draw(step + 1)
            self.planned[step + 1] = events
            self.render(events, step + 1)

    def heard(self, step: int, got: StepInput) -> None:
        """Step ``step``'s input was taken (before anything is fed): update what the player does."""

    def start(self, step: int) -> None:
        """Begin with ``step``: rests from its bar line up to it, so the stream starts on a bar."""
        self.started_at = step
        self.state = AgentState.PLAYING
        for s in range(step - step % self.steps_per_bar, step):
            self.feed([self.rest], s + 1)

    def draw(self, step: int) -> list[Hashable]:
        """Step ``step``'s events, drawn from the stream's distribution (not fed yet): temperature,
        top-p, and the density and scale-lock biases (see ``sampling_bias``)."""
        p = self.params
        logits = self.stream.logits
        assert logits is not None
        bias = self.sampling_bias(step)
        if bias is not None:
            logits = logits + bias
        label, _ = sample_class(logits, p.temperature, self.rng, p.top_p)
        return [self.stream.encoder.label_to_event(label)]

    def stop(self, tick: int) -> None:
        """Silence, forget the plans, and start again from a fresh stream (primer included) on
        the next step that is ready."""
        super().stop(tick)
        self.planned.clear()
        self.started_at = None
        self.prime()

