"""Clock tests. Shared helpers: a recording listener and synthetic MIDI clock streams."""

from __future__ import annotations

import threading

import mido
import numpy as np

from live.clock import TICKS_PER_QUARTER

CLOCK = mido.Message("clock")


class Recorder:
    """A clock listener that records everything it is told (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self._lock = threading.Lock()

    def on_tick(self, tick: int, time: float) -> None:
        with self._lock:
            self.events.append(("tick", tick, time))

    def on_transport(self, event: str, tick: int) -> None:
        with self._lock:
            self.events.append((event, tick))

    def ticks(self) -> list[int]:
        with self._lock:
            return [e[1] for e in self.events if e[0] == "tick"]

    def tick_times(self) -> list[float]:
        with self._lock:
            return [e[2] for e in self.events if e[0] == "tick"]

    def transport(self) -> list[tuple[str, int]]:
        with self._lock:
            return [e for e in self.events if e[0] != "tick"]


def ideal_pulse_times(bpms: np.ndarray, t0: float = 10.0) -> np.ndarray:
    """Ideal pulse times when pulse i is followed by an interval at tempo ``bpms[i]``."""
    intervals = 60.0 / (np.asarray(bpms, float) * TICKS_PER_QUARTER)
    return t0 + np.concatenate([[0.0], np.cumsum(intervals[:-1])])


def jittered(times: np.ndarray, sd: float, seed: int) -> np.ndarray:
    """Arrival times: ``times`` plus Gaussian jitter of ``sd`` seconds."""
    return times + np.random.default_rng(seed).normal(0.0, sd, len(times))
