"""MIDI clock in: follow another device's 0xF8 pulses, Start, Stop, Continue and Song Position.

:class:`MidiClockIn` is fed ``(timestamp, message)`` pairs by whoever reads the clock port (the
daemon's input thread): ``timestamp`` is the perf_counter time in seconds at which the driver
delivered the message. Every Clock pulse received while running is a tick; the song position
counts pulses from Start (tick 0) or from a Song Position Pointer (16ths, 6 ticks each), so the
bar and beat are the ones the sending DAW has. The tempo and the times of future ticks come from
:class:`TempoFilter`, which smooths the pulses' arrival jitter.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque
import time as _time
from dataclasses import dataclass
from typing import Any, Callable

from live.clock.base import TICKS_PER_STEP, ClockSource, bpm_of, check_bpm, seconds_per_tick


@dataclass
class FilterStats:
    """What the tempo filter did. Counts are pulses since the filter was created.

    Attributes:
        pulses: pulse times seen.
        rejected: pulses whose time was left out of the estimate (an outlier, or one of the
            run that triggered a re-lock). Every pulse still counts as a tick.
        relocks: times the filter started over: a tempo jump (``reset_after`` rejected pulses
            in a row) or a gap in the pulses.
        missed: pulses inferred lost on the way (a pulse one or two periods late, on the grid).
        jitter: the current estimate of the arrival jitter (standard deviation, seconds).
        period_sd: the standard deviation of the current period estimate, seconds per tick.
    """

    pulses: int = 0
    rejected: int = 0
    relocks: int = 0
    missed: int = 0
    jitter: float = 0.0
    period_sd: float = 0.0


class TempoFilter:
    """A Kalman filter on pulse arrival times: the tick period and the time of the latest pulse.

    The model: pulses are due at a steady period (seconds per tick) that may wander (a random
    walk of relative size ``tempo_drift`` per pulse, which lets it follow tempo ramps), and
    arrive with Gaussian jitter. After a (re)start the first ``acquire_pulses`` pulses are
    gathered unjudged and a least-squares line through them starts the estimate, so it locks
    within a few pulses; afterwards recent pulses weigh more. The jitter is estimated on the fly
    from second differences of the last ``jitter_window`` arrivals (never below ``jitter``).

    Outliers: a pulse that arrives further from its predicted time than ``gate`` standard
    deviations of the prediction (but at least ``gate_floor`` and at most half a period) is left
    out of the estimate. ``reset_after`` such pulses in a row that are evenly spaced among
    themselves, at a tempo from ``min_bpm`` to ``max_bpm``, mean the tempo really changed: the
    filter restarts from them. Rejected pulses that are not evenly spaced (a sender that stalled
    and then sent a burst) leave the estimate alone; only after ``4 * reset_after`` rejections in
    a row does it start from scratch. A silence longer than ``gap_periods`` periods restarts it
    too (the sender stopped and started again).

    Lost pulses: while locked, after ``miss_guard`` pulses used in a row, a pulse that arrives one
    or two periods late but on the grid is held back and judged by the next pulse: if that one
    is on the grid, the held pulse was just late (an outlier); if it is as late, one or two pulses
    were lost on the way, and :meth:`update` returns how many (the caller emits them as ticks,
    one pulse late, so the song position stays the sender's) and the estimate stays locked. A
    real slowdown (say, to half the tempo) fits neither and ends in the usual relock.

    Ramps: the filter keeps a running mean (weight ``trend_memory``) of its innovations divided
    by their standard deviation. Plain jitter keeps it near 0; while the estimate lags a tempo
    ramp it leans one way, and once it passes ``trend_limit`` (while locked) the tempo walk's
    variance is multiplied by ``trend_boost`` so the estimate catches up.

    ``locked`` is True from the moment the period's standard deviation falls under
    ``lock_tolerance`` (relative) with at least ``min_lock_pulses`` pulses used, until a restart.
    """

    def __init__(
        self,
        *,
        jitter: float = 0.0005,
        tempo_drift: float = 5e-4,
        gate: float = 5.0,
        gate_floor: float = 0.0015,
        reset_after: int = 3,
        acquire_pulses: int = 5,
        gap_periods: float = 4.0,
        lock_tolerance: float = 0.003,
        min_lock_pulses: int = 6,
        jitter_window: int = 24,
        miss_guard: int = 4,
        min_bpm: float = 10.0,
        max_bpm: float = 1000.0,
        trend_limit: float = 0.8,
        trend_boost: float = 20.0,
        trend_memory: float = 0.2,
    ) -> None:
        if jitter <= 0 or tempo_drift < 0 or gate <= 0 or reset_after < 1 or min_lock_pulses < 2:
            raise ValueError("TempoFilter: jitter, gate > 0; tempo_drift >= 0; reset_after >= 1; min_lock_pulses >= 2")
        self._r_min = jitter * jitter
        self._drift = tempo_drift
        self._gate = gate
        self._gate_floor = gate_floor
        self._reset_after = reset_after
        self._gap = gap_periods
        self._lock_tolerance = lock_tolerance
        self._min_lock = min_lock_pulses
        self._d2s: deque[float] = deque(maxlen=jitter_window)  # recent abs second differences
        self._miss_guard = miss_guard
        if acquire_pulses < 2 or min_lock_pulses < acquire_pulses:
            raise ValueError("TempoFilter: 2 <= acquire_pulses <= min_lock_pulses")
        self._acquire_pulses = acquire_pulses
        self._min_period = seconds_per_tick(max_bpm)
        self._max_period = seconds_per_tick(min_bpm)
        self._trend_alpha = trend_memory
        self._trend_limit = trend_limit
        self._boost = trend_boost
        self.stats = FilterStats(jitter=jitter)
        self.period: float | None = None  # seconds per tick; kept across restarts as a prior
        self.time: float | None = None  # filtered time of the latest pulse, perf_counter seconds
        self.locked = False
        self._r = self._r_min  # the jitter variance estimate, kept across restarts
        self._recent: list[float] = []  # the last two arrival times, for second differences
        self._restart()

    def _restart(self) -> None:
        self._n = 0  # pulses whose times the current estimate uses
        self._raw: list[float] = []  # pulses gathered since a restart, before there is an estimate
        self._rejected: list[float] = []  # raw times of consecutive rejected pulses
        self._cov = (0.0, 0.0, 0.0)  # covariance of (time, period): var t, cov, var p
        self._clean = 0  # pulses used in a row since the last restart, rejection or lost pulse
        self._pending: tuple[float, int] | None = None  # a pulse 1-2 periods late: (time, periods)
        self._rejected_run = 0  # pulses rejected in a row
        self._trend = 0.0  # running mean of normalized innovations: leans one way while lagging
        self._running_estimate = False
        self.locked = False

    @property
    def pulses_used(self) -> int:
        """Pulses the current estimate rests on (since the last restart)."""
        return self._n

    @property
    def bpm(self) -> float | None:
        """The tempo estimate in quarter notes per minute, or None before two pulses."""
        return None if self.period is None else bpm_of(self.period)

    def predict(self, pulses_ahead: float = 1.0) -> float | None:
        """Predicted arrival time of the pulse ``pulses_ahead`` after the latest, or None."""
        if self.time is None or self.period is None:
            return None
        return self.time + pulses_ahead * self.period

    def update(self, t: float) -> int:
        """Take the arrival time ``t`` (seconds) of the next pulse.

        Returns how many pulses were lost on the way just before the previous one (almost
        always 0; see "Lost pulses" above): the caller counts them as ticks now."""
        stats = self.stats
        stats.pulses += 1
        if self._running_estimate and t - self.time > self._gap * self.period:
            stats.relocks += 1
            self._restart()
            self._recent.clear()
        self._learn_jitter(t)
        if not self._running_estimate:
            self._acquire(t)
            return 0
        predicted, cov = self._predicted(self.time, self._cov)
        innovation, s, limit = self._test(t, predicted, cov)
        missed = 0
        pending, self._pending = self._pending, None
        if pending is not None:
            # The previous pulse came one or two periods late. If this one is on the grid, that
            # pulse was merely late (an outlier); if this one is as late too, pulses were lost.
            held, k = pending
            if abs(innovation) <= limit:
                stats.rejected += 1
                self._clean = 0
            else:
                ahead, ahead_cov = predicted, cov
                for _ in range(k):
                    ahead, ahead_cov = self._predicted(ahead, ahead_cov)
                e, s_k, limit_k = self._test(t, ahead, ahead_cov)
                if abs(e) <= limit_k:
                    missed = k
                    stats.missed += k
                    predicted, cov, innovation, s, limit = ahead, ahead_cov, e, s_k, limit_k
                else:
                    self._reject(held, predicted, cov, advance=False)
        elif abs(innovation) > limit and self.locked and self._clean >= self._miss_guard:
            ahead, ahead_cov = predicted, cov
            for k in (1, 2):
                ahead, ahead_cov = self._predicted(ahead, ahead_cov)
                e, _, limit_k = self._test(t, ahead, ahead_cov)
                if abs(e) <= limit_k:  # one or two periods late, on the grid: decide at the next pulse
                    self._pending = (t, k)
                    self.time, self._cov = predicted, cov
                    return 0
        if abs(innovation) > limit:
            self._reject(t, predicted, cov)
            return 0
        self._rejected.clear()
        self._rejected_run = 0
        self._clean = 0 if missed else self._clean + 1
        self._trend += self._trend_alpha * (innovation / math.sqrt(s) - self._trend)
        a, b, d = cov
        k0 = a / s
        k1 = b / s
        self.time = predicted + k0 * innovation
        self.period += k1 * innovation
        self._cov = ((1.0 - k0) * a, (1.0 - k0) * b, d - k1 * b)
        self._n += 1
        self._update_lock()
        return missed

    def _reject(self, t: float, predicted: float, cov: tuple[float, float, float], advance: bool = True) -> None:
        """Leave the pulse at ``t`` out of the estimate; after ``reset_after`` in a row that are
        evenly spaced, start over from them (the tempo changed)."""
        self.stats.rejected += 1
        self._clean = 0
        if advance:
            self.time, self._cov = predicted, cov
        rejected = self._rejected
        rejected.append(t)
        self._rejected_run += 1
        if len(rejected) < self._reset_after:
            return
        if self._evenly_spaced(rejected):
            self.stats.relocks += 1
            times = list(rejected)
            self._restart()
            self._start_line(times)
        elif self._rejected_run >= 4 * self._reset_after:  # nothing fits: begin from scratch
            self.stats.relocks += 1
            self._restart()
            self._acquire(t)
        else:
            del rejected[0]  # a burst or a stray pulse is no new tempo: keep the old estimate

    def _evenly_spaced(self, times: list[float]) -> bool:
        """True if consecutive pulse times are evenly spaced (within the jitter) at a tempo from
        ``min_bpm`` to ``max_bpm``."""
        limit = max(self._gate * math.sqrt(6.0 * self._r), self._gate_floor)
        for i in range(2, len(times)):
            if abs(times[i] - 2.0 * times[i - 1] + times[i - 2]) > limit:
                return False
        period = (times[-1] - times[0]) / (len(times) - 1)
        return self._min_period <= period <= self._max_period

    def _predicted(self, time: float, cov: tuple[float, float, float]) -> tuple[float, tuple[float, float, float]]:
        """One pulse ahead: time + period, and the covariance through F = [[1, 1], [0, 1]]
        plus the tempo's random walk."""
        vt, c, vp = cov
        q = (self._drift * self.period) ** 2
        if self.locked and abs(self._trend) > self._trend_limit:  # lagging a ramp: let the tempo move
            q *= self._boost
        return time + self.period, (vt + 2.0 * c + vp, c + vp, vp + q)

    def _test(self, t: float, predicted: float, cov: tuple[float, float, float]) -> tuple[float, float, float]:
        """(innovation, its variance, the outlier limit) of arrival ``t`` against a prediction."""
        s = cov[0] + self._r
        limit = min(max(self._gate * math.sqrt(s), self._gate_floor), 0.5 * self.period)
        return t - predicted, s, limit

    def _learn_jitter(self, t: float) -> None:
        """Estimate the arrival jitter from second differences of consecutive arrivals, every
        pulse included: t[i] - 2 t[i-1] + t[i-2] has standard deviation sqrt(6) sigma for white
        jitter, while a tempo ramp adds only its tiny change of period per pulse. The median of
        the recent absolute values (0.674 of that deviation for Gaussian jitter) is not swayed by
        the few large values an outlier, a lost pulse or a tempo jump makes."""
        recent = self._recent
        if len(recent) == 2:
            self._d2s.append(abs(t - 2.0 * recent[1] + recent[0]))
            recent[0] = recent[1]
            recent[1] = t
        else:
            recent.append(t)
        if len(self._d2s) >= 3:
            sigma = statistics.median(self._d2s) / (0.6745 * math.sqrt(6.0))
            self._r = max(self._r_min, sigma * sigma)

    def _acquire(self, t: float) -> None:
        """The first ``acquire_pulses`` pulses after a restart are gathered without judging them
        (there is no trustworthy prediction yet), then a least-squares line through them starts
        the estimate. Only an impossible interval (a burst, a silence) starts the gathering over."""
        raw = self._raw
        if raw and not self._min_period <= t - raw[-1] <= self._max_period:
            raw.clear()
        raw.append(t)
        self.time = t
        if len(raw) >= 2:
            self.period = (raw[-1] - raw[0]) / (len(raw) - 1)  # meanwhile: the mean interval
        if len(raw) >= self._acquire_pulses:
            self._start_line(raw)
            raw.clear()

    def _start_line(self, times: list[float]) -> None:
        """Start the estimate from a least-squares line through consecutive pulse times."""
        n = len(times)
        x_mean = (n - 1) / 2.0
        y_mean = sum(times) / n
        sxx = sum((x - x_mean) ** 2 for x in range(n))
        slope = sum((x - x_mean) * (y - y_mean) for x, y in enumerate(times)) / sxx
        last = n - 1 - x_mean
        r = self._r
        self.period = slope
        self.time = y_mean + slope * last
        self._cov = (r * (1.0 / n + last * last / sxx), r * last / sxx, r / sxx)
        self._n = n
        self._running_estimate = True
        self._update_lock()

    def _update_lock(self) -> None:
        vp = self._cov[2]
        self.stats.jitter = math.sqrt(self._r)
        self.stats.period_sd = math.sqrt(max(vp, 0.0))
        if not self.locked and self._n >= self._min_lock and self.stats.period_sd <= self._lock_tolerance * self.period:
            self.locked = True


@dataclass
class ClockInStats(FilterStats):
    """:class:`FilterStats` plus the transport messages seen."""

    ticks: int = 0  # ticks emitted (pulses received while running, and filled-in lost ones)
    filled: int = 0  # ticks emitted for pulses inferred lost
    starts: int = 0
    stops: int = 0
    continues: int = 0
    positions: int = 0
    joins: int = 0  # running clocks joined without a Start (the daemon started mid-song)


JOIN_PULSES = 24
"""Pulses (one beat) with no Start, Continue or Stop seen yet after which the clock joins a
sender that is already playing."""


class MidiClockIn(ClockSource):
    """A clock that follows incoming MIDI clock. Call :meth:`feed` for every message from the
    clock port, in arrival order, from one thread; listeners run in that thread.

    Args:
        beats_per_bar, beat_unit: the time signature used for bar/beat positions (MIDI clock
            does not carry one).
        nominal_bpm: the tempo assumed before two pulses have arrived.
        tempo_filter: the :class:`TempoFilter` (default settings if None).
        fill_lost_pulses: emit a tick for each pulse the filter infers was lost on the way
            (just before the tick of the pulse that revealed it), so the song position stays
            the sender's. Without it a lost pulse leaves the position a tick behind until the
            next Start or Song Position Pointer.
        now: the time source for predictions before any pulse arrived.
    """

    def __init__(
        self,
        beats_per_bar: int = 4,
        *,
        beat_unit: int = 4,
        nominal_bpm: float = 120.0,
        tempo_filter: TempoFilter | None = None,
        fill_lost_pulses: bool = True,
        now: Callable[[], float] = _time.perf_counter,
    ) -> None:
        super().__init__(beats_per_bar, beat_unit)
        self._fill_lost = fill_lost_pulses
        self._nominal_spt = seconds_per_tick(check_bpm(nominal_bpm))
        self.filter = tempo_filter if tempo_filter is not None else TempoFilter()
        self._now = now
        self._lock = threading.Lock()
        self._counts = ClockInStats()
        # No transport message seen yet: pulses that keep coming mean the sender is playing
        # (we started mid-song), and the clock joins it. After a Stop, pulses mean nothing.
        self._may_join = True
        self._pulses_waiting = 0

    @property
    def bpm(self) -> float:
        """The estimated tempo (the nominal tempo until two pulses have arrived)."""
        period = self.filter.period
        return bpm_of(period if period is not None else self._nominal_spt)

    @property
    def locked(self) -> bool:
        """True once the tempo estimate is settled (see :class:`TempoFilter`)."""
        return self.filter.locked

    @property
    def waiting_for(self) -> str | None:
        """What the clock waits for before it runs (for the log and the panel), or None."""
        if self._running:
            return None
        if self.filter.time is None:
            return "MIDI clock pulses"
        if self._may_join:
            return "a beat of pulses (or Start) to join the song"
        return "Start or Continue"

    @property
    def last_pulse_time(self) -> float | None:
        """The filtered (jitter-smoothed) time of the latest pulse, perf_counter seconds."""
        return self.filter.time

    def time_of_tick(self, tick: int) -> float:
        """Extrapolated from the filter: the next pulse carries ``next_tick`` (while stopped,
        that assumes a Continue before it). Before any pulse: from now, at the nominal tempo."""
        with self._lock:
            ahead = tick - self._next_tick + 1
            base = self.filter.time
            period = self.filter.period
            if base is None:
                return self._now() + (ahead - 1) * self._nominal_spt
            return base + ahead * (period if period is not None else self._nominal_spt)

    @property
    def stats(self) -> ClockInStats:
        """A snapshot of the filter's statistics and the transport counts."""
        with self._lock:
            merged = ClockInStats(**{**vars(self._counts), **vars(self.filter.stats)})
        return merged

    def feed(self, timestamp: float, message: Any) -> bool:
        """Take one message received at perf_counter time ``timestamp`` (seconds).

        Handles mido messages of type clock, start, stop, continue and songpos; returns False
        (and does nothing) for any other message."""
        kind = getattr(message, "type", None)
        if kind == "clock":
            joined = None
            with self._lock:
                missed = self.filter.update(timestamp)
                if not self._fill_lost:
                    missed = 0
                if not self._running:
                    self._pulses_waiting += 1
                    if not (self._may_join and self._pulses_waiting > JOIN_PULSES):
                        return True
                    # a beat of pulses with no Start: the sender is playing; follow it from here
                    self._running, self._may_join, missed = True, False, 0
                    self._counts.joins += 1
                    joined = self._next_tick
                first = self._next_tick
                self._next_tick = first + missed + 1
                self._counts.ticks += missed + 1
                self._counts.filled += missed
                period = self.filter.period or self._nominal_spt
                estimate = self.filter.time
            if joined is not None:
                self._emit_transport("join", joined)
            for k in range(missed):  # lost on the way: late, but the song position stays the DAW's
                self._emit_tick(first + k, estimate - (missed - k) * period)
            self._emit_tick(first + missed, timestamp)
            return True
        if kind in ("start", "stop", "continue"):
            self._may_join = False
        if kind == "start":
            with self._lock:
                self._next_tick = 0
                self._running = True
                self._counts.starts += 1
            self._emit_transport("start", 0)
            return True
        if kind == "stop":
            with self._lock:
                was_running = self._running
                self._running = False
                self._counts.stops += 1
                tick = self._next_tick
            if was_running:
                self._emit_transport("stop", tick)
            return True
        if kind == "continue":
            with self._lock:
                self._running = True
                self._counts.continues += 1
                tick = self._next_tick
            self._emit_transport("continue", tick)
            return True
        if kind == "songpos":
            with self._lock:
                tick = int(message.pos) * TICKS_PER_STEP
                self._next_tick = tick
                self._counts.positions += 1
            self._emit_transport("position", tick)
            return True
        return False
