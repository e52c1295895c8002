"""A stream: one voice of a model with its encoder and recurrent state cached for the whole session.

The player's events are fed as they are played (teacher forcing), each costing one model step,
so the distribution over the next step is always ready: when the player stops, sampling the
answer's first event costs nothing but the draw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Hashable

import numpy as np

from live.engine.sampling import log_prob, log_softmax, sample_class
from live.models.cells import State
from live.models.model import Model


class Stream:
    """One event sequence stepped through a model, step by step.

    Attributes:
        model: the Model.
        encoder: the incremental encoder holding the event history.
        state: recurrent state after the last fed event (batch of one).
        logits: float32 [num_classes] for the next step, or None before the first event.
        log_likelihood: sum of log-probabilities of the events sampled or fed since priming.
    """

    def __init__(self, model: Model, scored: bool = True) -> None:
        """scored: keep ``log_likelihood`` (the generator's beam search ranks by it); a live
        agent never reads it and spares its cost on every step (it then stays 0.0)."""
        self.model = model
        self.scored = scored
        self.encoder = model.make_encoder()
        self._one_hot = self.encoder.one_hot_input
        self._x = np.zeros((1, model.input_size), np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget everything: empty history, zero state."""
        self.encoder.reset()
        self.state: State = self.model.initial_state(1)
        self.logits: np.ndarray | None = None
        self.log_likelihood = 0.0
        self._ahead_of: State | None = None  # the state the last lookahead started from
        self._ahead_done: object = None  # the paths it went through to the end from there
        # (id of a state, label) -> (that state, logits and state after feeding the label)
        self._ahead: dict[tuple[int, int], tuple[State, np.ndarray, State]] = {}

    def __len__(self) -> int:
        """Steps (events) fed or sampled so far."""
        return len(self.encoder)

    @property
    def events(self) -> list[Any]:
        return self.encoder.events

    @property
    def primed(self) -> bool:
        """True once a next-step distribution is ready."""
        return self.logits is not None

    def feed(self, event: Hashable, control: Any = None) -> None:
        """Append ``event`` (teacher forcing) and step the model once.

        control: for conditional models, the control (chord, density...) of the step *after*
        this one, the step the model predicts next.
        """
        scoring = self.scored and self.logits is not None
        label = self.encoder.event_to_label(event) if self._one_hot or scoring else None
        if scoring:
            self.log_likelihood += log_prob(self.logits, label)
        self._step(event, label, control)

    def _step(self, event: Hashable, label: int | None, control: Any) -> None:
        """Append ``event`` and step the model on it (``label``: its class, needed by a
        one-hot stream only)."""
        self.encoder.append(event)
        if self._one_hot:  # the input is the one-hot of the label: the model looks it up
            ahead = self._ahead.get((id(self.state), label))
            if ahead is not None and ahead[0] is self.state:  # worked out by lookahead: the same numbers
                _, self.logits, self.state = ahead
                return
            logits, self.state = self.model.logits_of_class(label, self.state)
        else:
            self.encoder.encode_input(self._x[0], control)
            logits, self.state = self.model.logits(self._x, self.state)
        self.logits = logits[0]

    def prepare(self) -> None:
        """Work out the next model step's part that does not depend on its input (see
        ``Model.prepare``): a step fed soon after then costs less. Call it while nothing waits
        (the same numbers come out either way)."""
        self.model.prepare(self.state)

    def lookahead(self, paths: Iterable[Sequence[Hashable]], interrupted: Callable[[], bool] | None = None) -> bool:
        """Work out now the model steps that feeding each path of events next would cost, path
        by path in the order given, until ``interrupted`` says something waits (asked before
        each step). Feeding a path's events from this same state (now, or after going back to
        it) then takes each step from here: the same numbers, without the model's work when
        the events come. A new lookahead from another state forgets the old one's steps; the
        same ``paths`` object again from the same state, finished before, costs nothing (the
        daemon asks every 20 ms). Streams whose input is the one-hot of the event only
        (``one_hot_input``); others do nothing. Returns False when ``interrupted`` stopped it
        before the end."""
        if not self._one_hot or self.logits is None:
            return True
        if self._ahead_of is not self.state:
            self._ahead_of, self._ahead, self._ahead_done = self.state, {}, None
        elif self._ahead_done is paths:
            return True
        for path in paths:
            state = self.state
            for event in path:
                key = (id(state), self.encoder.event_to_label(event))
                ahead = self._ahead.get(key)
                if ahead is None:
                    if interrupted is not None and interrupted():
                        return False
                    self.model.prepare(state)
                    logits, after = self.model.logits_of_class(key[1], state)
                    ahead = self._ahead[key] = (state, logits[0], after)
                state = ahead[2]
        self._ahead_done = paths
        return True

    def distribution(self, temperature: float = 1.0) -> np.ndarray:
        """Probabilities [num_classes] of the next step's classes at ``temperature``."""
        if self.logits is None:
            raise RuntimeError("the stream is not primed: feed at least one event first")
        return np.exp(log_softmax(self.logits, max(temperature, 1e-6)))

    def sample(
        self,
        rng: np.random.Generator,
        temperature: float = 1.0,
        control: Any = None,
        bias: np.ndarray | None = None,
        top_p: float = 1.0,
    ) -> tuple[Hashable, float]:
        """Draw the next event, append it and step the model. Returns (event, its log-probability).

        temperature: 0 takes the most likely class. bias: optional [num_classes] added to the
        logits before sampling (density steering, scale lock). control: as in ``feed``.
        top_p: nucleus sampling (see ``sample_class``).
        """
        if self.logits is None:
            raise RuntimeError("the stream is not primed: feed at least one event first")
        logits = self.logits if bias is None else self.logits + bias
        index, logp = sample_class(logits, temperature, rng, top_p)
        event = self.encoder.label_to_event(index)
        self._step(event, index, control)
        if self.scored:
            self.log_likelihood += logp
        return event, logp

    def fork(self) -> "Stream":
        """An independent copy sharing only the (read-only) model: for branching and beam search."""
        twin = Stream.__new__(Stream)
        twin.model = self.model
        twin.scored = self.scored
        twin._one_hot = self._one_hot
        twin.encoder = self.encoder.copy()
        twin._x = np.zeros_like(self._x)
        twin.state = self.state.copy()
        twin.logits = None if self.logits is None else self.logits.copy()
        twin.log_likelihood = self.log_likelihood
        twin._ahead_of, twin._ahead, twin._ahead_done = None, {}, None
        return twin


def sample_together(
    streams: list[Stream],
    rng: np.random.Generator,
    temperature: float = 1.0,
    controls: list[Any] | None = None,
) -> list[tuple[Hashable, float]]:
    """``Stream.sample`` for several primed streams of one model, with one batched model step.

    Each stream draws its own next event (in list order, from ``rng``), then all inputs go
    through the model as one batch [len(streams), input_size]. Returns (event, log-probability)
    per stream, like ``sample``.
    """
    if not streams:
        return []
    model = streams[0].model
    x = np.zeros((len(streams), model.input_size), np.float32)
    drawn = []
    for i, stream in enumerate(streams):
        if stream.model is not model:
            raise ValueError("sample_together needs streams of one model")
        if stream.logits is None:
            raise RuntimeError("the stream is not primed: feed at least one event first")
        index, logp = sample_class(stream.logits, temperature, rng)
        event = stream.encoder.label_to_event(index)
        stream.encoder.append(event)
        stream.encoder.encode_input(x[i], None if controls is None else controls[i])
        stream.log_likelihood += logp
        drawn.append((event, logp))
    logits, state = model.logits(x, State.stack([s.state for s in streams]))
    for i, stream in enumerate(streams):
        stream.state = state.take([i])
        stream.logits = logits[i]
    return drawn
