"""Candidates (a stream and what is left to generate) and how they are continued: plain
sampling or Magenta's beam search."""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, Callable, Sequence

import numpy as np

from live.engine.sampling import beam_search, log_softmax, sample_class
from live.engine.stream import Stream
from live.models.encodings.performance import (
    TIME_SHIFT,
)
from live.models.encodings.polyphony import (
    STEP_END,
)
from live.generate.options import GenerateOptions, MAX_PERF_EVENTS_PER_STEP, MAX_POLY_EVENTS_PER_STEP

log = logging.getLogger("live.generate")

# --------------------------------------------------------------------------- candidates


class Candidate:
    """One generated sequence in progress: a stream plus what the family needs to continue it.

    Families whose length is not counted in events (polyphony, performance) also stop after
    ``max_events`` events, so a model stuck on events that never advance time (which argmax
    sampling can make permanent) cannot run forever; ``exhausted`` tells when that happened.
    """

    max_events: int | None = None

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    @property
    def exhausted(self) -> bool:
        return self.max_events is not None and len(self.stream) >= self.max_events

    def fork(self) -> "Candidate":
        twin = copy.copy(self)
        twin.stream = self.stream.fork()
        return twin

    @property
    def done(self) -> bool:
        raise NotImplementedError

    def events_to_go(self) -> int:
        """A guess of how many more events finish the sequence (for beam search rounds)."""
        raise NotImplementedError

    def step(self, rng: np.random.Generator, temperature: float) -> float:
        """Extend by one sampled event (plus anything forced after it); the log-likelihood gained."""
        raise NotImplementedError


def _forced_logp(stream: Stream, event: Any, temperature: float) -> float:
    """Log-probability of ``event`` as the next event (for events fed rather than sampled)."""
    if stream.logits is None:
        return 0.0
    label = stream.encoder.event_to_label(event)
    return float(log_softmax(stream.logits, temperature if temperature > 0 else 1.0)[label])


class StepCandidate(Candidate):
    """Melody, improv and drums: one event per step until ``total`` events.

    controls[i] is the control (chord) of event position i, or None for unconditioned models.
    """

    def __init__(self, stream: Stream, total: int, controls: Sequence[Any] | None) -> None:
        super().__init__(stream)
        self.total = total
        self.controls = controls

    def control_after(self, position: int) -> Any:
        """The control passed with event ``position``: that of the position after it."""
        if self.controls is None:
            return None
        return self.controls[min(position + 1, len(self.controls) - 1)]

    @property
    def done(self) -> bool:
        return len(self.stream) >= self.total

    def events_to_go(self) -> int:
        return max(self.total - len(self.stream), 0)

    def step(self, rng: np.random.Generator, temperature: float) -> float:
        if self.done:
            return 0.0
        _, logp = self.stream.sample(rng, temperature, self.control_after(len(self.stream)))
        return logp


class PolyCandidate(Candidate):
    """Polyphony: events until ``total_steps`` STEP_END events, optionally injecting a primer.

    inject[k] lists the note events forced at the start of generated step k (those of the
    primer's step k); generated step 0 begins once ``inject_base`` steps have ended.
    """

    def __init__(
        self, stream: Stream, steps: int, total_steps: int, inject: Sequence[Sequence[Any]], inject_base: int
    ) -> None:
        super().__init__(stream)
        self.steps = steps
        self.total_steps = total_steps
        self.inject = inject
        self.inject_base = inject_base
        # Every pitch struck and held on every step is 257 events a step.
        self.max_events = len(stream) + MAX_POLY_EVENTS_PER_STEP * max(total_steps - steps, 0)

    @property
    def done(self) -> bool:
        return self.steps >= self.total_steps or self.exhausted

    def events_to_go(self) -> int:
        return 5 * max(self.total_steps - self.steps, 0)  # Magenta's guess: ~5 events per step

    def inject_step(self, temperature: float) -> float:
        """Feed the primer's events for the step now starting; their log-likelihood."""
        k = self.steps - self.inject_base
        gain = 0.0
        if 0 <= k < len(self.inject):
            for event in self.inject[k]:
                gain += _forced_logp(self.stream, event, temperature)
                self.stream.feed(event)
        return gain

    def step(self, rng: np.random.Generator, temperature: float) -> float:
        if self.done:
            return 0.0
        event, logp = self.stream.sample(rng, temperature)
        if event.kind == STEP_END:
            self.steps += 1
            if not self.done:
                logp += self.inject_step(temperature)
        return logp


class PerfCandidate(Candidate):
    """Performance: events until their time shifts add up to ``total_steps`` 10 ms steps.

    control_at(step) gives the control for an event position whose preceding events end at
    time ``step``; None for unconditioned models.
    """

    def __init__(
        self,
        stream: Stream,
        time_steps: int,
        total_steps: int,
        control_at: Callable[[int], Any] | None,
        density: float,
    ) -> None:
        super().__init__(stream)
        self.time_steps = time_steps
        self.total_steps = total_steps
        self.control_at = control_at
        self.density = density

    def limit_events(self) -> None:
        """Allow MAX_PERF_EVENTS_PER_STEP events per 10 ms step still to play from here."""
        self.max_events = len(self.stream) + MAX_PERF_EVENTS_PER_STEP * max(self.total_steps - self.time_steps, 1)

    @property
    def done(self) -> bool:
        return self.time_steps >= self.total_steps or self.exhausted

    def events_to_go(self) -> int:
        # Magenta's guess: 4 events per note at the requested (or default) density.
        left = max(self.total_steps - self.time_steps, 0)
        return int(math.ceil(4.0 * max(1.0, self.density) * left / 100.0))

    def feed(self, event: Any) -> None:
        if event.kind == TIME_SHIFT:
            self.time_steps += event.value
        self.stream.feed(event, self.control_at(self.time_steps) if self.control_at else None)

    def step(self, rng: np.random.Generator, temperature: float) -> float:
        if self.done:
            return 0.0
        assert self.stream.logits is not None
        index, logp = sample_class(self.stream.logits, temperature, rng)
        self.feed(self.stream.encoder.label_to_event(index))
        return logp


def generate_from(start: Candidate, rng: np.random.Generator, args: GenerateOptions) -> Candidate:
    """Continue a primed candidate until it is done: plain sampling, or Magenta's beam search."""
    temperature = args.temperature
    if args.beam_size == 1 and args.branch_factor == 1:
        cand = start.fork()
        while not cand.done:
            cand.step(rng, temperature)
        return cand

    def extend(cands: list[Candidate]) -> list[float]:
        return [c.step(rng, temperature) for c in cands]

    cand = start
    while not cand.done:
        cand = beam_search(  # type: ignore[assignment]
            cand,
            extend,
            lambda c: c.fork(),
            max(cand.events_to_go(), 1),
            args.beam_size,
            args.branch_factor,
            args.steps_per_iteration,
        )
    return cand
