"""Choosing the next class from a model's logits: temperature sampling, argmax, beam search."""

from __future__ import annotations

import heapq
import math
from typing import Callable

import numpy as np

MASKED = -1e9
"""A logit bias that rules a class out (added to the logits; a finite number keeps the
softmax free of NaNs even if every class were masked)."""


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """log softmax(logits / temperature) over the last axis."""
    z = logits / temperature if temperature not in (0.0, 1.0) else logits
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def sample_class(logits: np.ndarray, temperature: float, rng: np.random.Generator, top_p: float = 1.0) -> tuple[int, float]:
    """Draw one class from softmax(logits / temperature); temperature 0 takes the argmax.

    top_p: nucleus sampling (Holtzman et al. 2019): only the most likely classes whose
    probabilities add up to at least ``top_p`` (0 < top_p <= 1) can be drawn, renormalised;
    1.0 draws from the whole distribution. logits: [C]. Returns (class index, its
    log-probability under the distribution it was drawn from; 0.0 for argmax).
    """
    if temperature <= 0.0:
        return int(np.argmax(logits)), 0.0
    z = logits / temperature if temperature != 1.0 else logits
    p = np.exp(z - z.max())  # unnormalised probabilities [C]
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")  # most likely first [C]
        kept = p[order].cumsum(dtype=np.float64)
        # the smallest head that reaches top_p (a head within rounding of it reaches it)
        n = min(int(kept.searchsorted(top_p * float(kept[-1]) * (1.0 - 1e-6), side="left")) + 1, len(p))
        p[order[n:]] = 0.0
    cdf = p.cumsum()
    total = float(cdf[-1])
    index = min(int(cdf.searchsorted(rng.random() * total, side="right")), len(p) - 1)
    while p[index] == 0.0:  # a draw on the edge of a removed class: the nearest kept one below
        index -= 1
    return index, math.log(float(p[index]) / total)


def log_prob(logits: np.ndarray, index: int) -> float:
    """log softmax(logits)[index] for logits [C], at temperature 1."""
    m = float(logits.max())
    return float(logits[index]) - m - math.log(float(np.exp(logits - m).sum()))


def beam_search(
    start: object,
    extend: Callable[[list[object]], list[float]],
    fork: Callable[[object], object],
    num_steps: int,
    beam_size: int = 1,
    branch_factor: int = 1,
    steps_per_iteration: int = 1,
) -> object:
    """Magenta's beam search over stochastic continuations.

    The beam starts as ``beam_size`` copies of ``start``. Each iteration every entry is forked
    ``branch_factor`` times and each branch is extended by ``steps_per_iteration`` sampled steps
    (``extend`` extends every candidate by one step in place and returns each one's added
    log-likelihood); then the ``beam_size`` highest-scoring branches are kept. The first
    iteration takes (num_steps - 1) % steps_per_iteration + 1 steps so the rest are even.
    Returns the best candidate after ``num_steps`` steps.
    """
    if num_steps <= 0:
        return start
    beam = [(0.0, fork(start)) for _ in range(beam_size)]
    first = (num_steps - 1) % steps_per_iteration + 1
    remaining = num_steps
    steps = first
    while True:
        branches = beam if branch_factor == 1 else [(s, fork(c)) for _ in range(branch_factor) for s, c in beam]
        scores = [s for s, _ in branches]
        candidates = [c for _, c in branches]
        for _ in range(steps):
            gains = extend(candidates)
            scores = [s + g for s, g in zip(scores, gains)]
        remaining -= steps
        ranked = list(zip(scores, candidates))
        if remaining <= 0:
            return max(ranked, key=lambda e: e[0])[1]
        beam = heapq.nlargest(beam_size, ranked, key=lambda e: e[0])
        steps = steps_per_iteration
