"""The internal clock: ticks from perf_counter at absolute deadlines, on its own thread.

Tick ``n`` is due at ``t0 + (n - n0) * 60 / (bpm * 24)`` seconds, from an absolute anchor
``(t0, n0)`` (see :class:`~live.clock.base.TempoAnchor`). A tempo change re-anchors at the
fractional song position of that moment, so the phase is kept; nothing is ever computed as
"previous tick + interval", so the clock never drifts. The thread waits on a condition until
``spin`` seconds before the deadline (a tempo change, stop or locate wakes it), then spins on
perf_counter for the last stretch and calls the listeners.

Late ticks. A tick emitted more than ``late_tolerance`` after its deadline is counted as late
(see :class:`LateStats`). If the thread was held up for longer than a tick interval (the process
was descheduled, a listener blocked), the ticks that fell due meanwhile are emitted at once, in
order, each with its own deadline as ``time``, and a warning is logged: tick numbers stay
contiguous (a listener never misses a step boundary) and the phase against perf_counter is kept.
If more than ``max_catch_up`` ticks are overdue (the process was suspended), none is bursted:
the clock re-anchors so that the overdue tick is due now (the song position carries on from
where it stopped, later than planned) and logs a warning.

The GIL: the spin holds the GIL for up to ``spin`` seconds per tick, and the thread needs the GIL
to wake up, so a Python thread that computes without releasing it delays ticks by up to
``sys.getswitchinterval()`` (5 ms by default). The daemon may lower the switch interval.
"""

from __future__ import annotations

import math
import os
import threading
import time as _time
from dataclasses import dataclass
from typing import Callable

from live.clock.base import ClockSource, TempoAnchor, bpm_of, check_bpm, check_tick, log, seconds_per_tick

_WARN_INTERVAL = 1.0  # seconds between two warnings about late ticks


@dataclass
class LateStats:
    """Timeliness of emitted ticks (lateness = emission time - deadline, seconds).

    Attributes:
        ticks: ticks emitted since the clock was created.
        late: ticks emitted more than ``late_tolerance`` after their deadline.
        worst: the largest lateness seen, seconds.
        caught_up: ticks emitted in a catch-up burst (overdue when an earlier one went out).
        reanchored: times the clock gave up catching up and re-anchored (more than
            ``max_catch_up`` ticks overdue).
    """

    ticks: int = 0
    late: int = 0
    worst: float = 0.0
    caught_up: int = 0
    reanchored: int = 0


class InternalClock(ClockSource):
    """A master clock at ``bpm`` quarter notes per minute (adjustable live, from any thread).

    Args:
        bpm: tempo, quarter notes per minute.
        beats_per_bar, beat_unit: the time signature (default 4/4).
        spin: seconds before each deadline at which the thread stops waiting and spins.
        late_tolerance: seconds after its deadline at which a tick counts as late.
        max_catch_up: at most this many overdue ticks are emitted at once; beyond, re-anchor.
        realtime_priority: if given (1-99), the clock thread asks for SCHED_FIFO at this
            priority (Linux; needs CAP_SYS_NICE or an rtprio limit, as audio users often have).
            If that is refused, a warning is logged and the thread runs at normal priority;
            :attr:`realtime` says which happened.
        now: the time source (seconds); perf_counter unless a test substitutes one.
    """

    def __init__(
        self,
        bpm: float = 120.0,
        beats_per_bar: int = 4,
        *,
        beat_unit: int = 4,
        spin: float = 0.001,
        late_tolerance: float = 0.001,
        max_catch_up: int = 24,
        realtime_priority: int | None = None,
        now: Callable[[], float] = _time.perf_counter,
    ) -> None:
        super().__init__(beats_per_bar, beat_unit)
        if spin < 0 or late_tolerance < 0 or max_catch_up < 1:
            raise ValueError("spin and late_tolerance must be >= 0 seconds, max_catch_up >= 1 tick")
        self._now = now
        self._spin = float(spin)
        self._late_tolerance = float(late_tolerance)
        self._max_catch_up = int(max_catch_up)
        if realtime_priority is not None and not 1 <= realtime_priority <= 99:
            raise ValueError(f"realtime priority must be 1 to 99, got {realtime_priority}")
        self._realtime_priority = realtime_priority
        self.realtime = False
        self._anchor = TempoAnchor(now(), 0.0, seconds_per_tick(check_bpm(bpm)))
        self._cond = threading.Condition()  # guards the anchor, _running, _next_tick, _generation
        self._emit_lock = threading.RLock()  # one emission (tick or transport) at a time, in order
        self._generation = 0  # bumped by every change that invalidates a computed deadline
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stats = LateStats()
        self._last_warning = -_WARN_INTERVAL

    # -- tempo -----------------------------------------------------------------------------------

    @property
    def bpm(self) -> float:
        return bpm_of(self._anchor.spt)

    @bpm.setter
    def bpm(self, value: float) -> None:
        self.set_bpm(value)

    def set_bpm(self, bpm: float) -> None:
        """Change the tempo now, keeping the phase: the fraction of the tick interval already
        elapsed is kept, and later ticks follow the new interval. Thread-safe."""
        spt = seconds_per_tick(check_bpm(bpm))
        with self._cond:
            if self._running:
                self._anchor = self._anchor.retempo(self._now(), spt)
            else:
                self._anchor = TempoAnchor(self._anchor.t0, self._anchor.n0, spt)
            self._generation += 1
            self._cond.notify_all()

    def time_of_tick(self, tick: int) -> float:
        with self._cond:
            if self._running:
                return self._anchor.time_of(tick)
            return self._now() + (tick - self._next_tick) * self._anchor.spt

    @property
    def anchor(self) -> TempoAnchor:
        """The current absolute anchor (t0 seconds, n0 ticks, seconds per tick)."""
        return self._anchor

    @property
    def stats(self) -> LateStats:
        """A copy of the late-tick statistics."""
        with self._cond:
            return LateStats(**vars(self._stats))

    # -- transport -------------------------------------------------------------------------------

    def start(self, at: float | None = None) -> None:
        """Go to song position 0 and run; tick 0 is due at perf_counter time ``at`` (default: now).

        Listeners get ("start", 0) before tick 0."""
        with self._emit_lock:
            self._resume(0, at)
            self._emit_transport("start", 0)
        self._wake()

    def resume(self, at: float | None = None) -> None:
        """Run on from the current song position ("continue"); the next tick is due at ``at``."""
        with self._emit_lock:
            tick = self._resume(None, at)
            self._emit_transport("continue", tick)
        self._wake()

    def _resume(self, tick: int | None, at: float | None) -> int:
        self._ensure_thread()
        with self._cond:
            if tick is not None:
                self._next_tick = tick
            due = self._now() if at is None else float(at)
            self._anchor = TempoAnchor(due, float(self._next_tick), self._anchor.spt)
            self._running = True
            self._generation += 1
            return self._next_tick

    def stop(self) -> None:
        """Halt after the tick in flight (if any); the song position stays. Listeners get "stop"."""
        with self._emit_lock:
            with self._cond:
                if not self._running:
                    return
                self._running = False
                self._generation += 1
                tick = self._next_tick
                self._cond.notify_all()
            self._emit_transport("stop", tick)

    def locate(self, tick: int) -> None:
        """Move the song position to ``tick``. While running, ``tick`` is due when the old next
        tick would have been. Listeners get ("position", tick)."""
        check_tick(tick)
        with self._emit_lock:
            with self._cond:
                if self._running:
                    self._anchor = self._anchor.due_at(tick, self._anchor.time_of(self._next_tick))
                self._next_tick = tick
                self._generation += 1
                self._cond.notify_all()
            self._emit_transport("position", tick)

    def close(self) -> None:
        """Stop (if running) and end the thread. The clock cannot be restarted afterwards."""
        self.stop()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def __enter__(self) -> "InternalClock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the thread ------------------------------------------------------------------------------

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _ensure_thread(self) -> None:
        if self._closed:
            raise RuntimeError("this InternalClock was closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="live-internal-clock", daemon=True)
            self._thread.start()

    def _become_realtime(self) -> None:
        priority = self._realtime_priority
        if priority is None:
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # this thread only
        except (AttributeError, OSError) as err:
            log.warning("internal clock: realtime priority %d refused (%s); running at normal priority", priority, err)
        else:
            self.realtime = True

    def _run(self) -> None:
        self._become_realtime()
        now = self._now
        while True:
            with self._cond:
                if self._closed:
                    return
                if not self._running:
                    self._cond.wait()
                    continue
                generation = self._generation
                deadline = self._anchor.time_of(self._next_tick)
                wait = deadline - self._spin - now()
                if wait > 0:
                    self._cond.wait(wait)  # a change (tempo, stop, locate) wakes us early
                    continue
            while now() < deadline:  # the last stretch: spin
                pass
            with self._emit_lock:
                due = self._take_due(generation)
                for tick, tick_time in due:
                    with self._cond:
                        if self._generation != generation:  # a listener stopped or moved the clock
                            break
                        self._next_tick = tick + 1
                    self._emit_tick(tick, tick_time)

    def _take_due(self, generation: int) -> list[tuple[int, float]]:
        """The ticks to emit now, with their deadlines; empty if the state changed since the
        deadline was computed. The caller advances the song position as it emits them."""
        with self._cond:
            if not self._running or self._generation != generation:
                return []
            emit_time = self._now()
            first = self._next_tick
            anchor = self._anchor
            overdue = math.floor(anchor.tick_at(emit_time)) - first  # ticks beyond `first` already due
            stats = self._stats
            if overdue > self._max_catch_up:
                late = emit_time - anchor.time_of(first)
                self._anchor = anchor = anchor.due_at(first, emit_time)
                stats.reanchored += 1
                self._warn(
                    f"internal clock {late * 1e3:.1f} ms behind ({overdue} ticks): re-anchored at tick {first}, not catching up"
                )
                overdue = 0
            elif overdue >= 1:
                stats.caught_up += overdue
                self._warn(f"internal clock held up: {overdue + 1} ticks emitted at once from tick {first}")
            else:
                overdue = 0
            due = []
            for tick in range(first, first + overdue + 1):
                deadline = anchor.time_of(tick)
                lateness = emit_time - deadline
                stats.ticks += 1
                if lateness > self._late_tolerance:
                    stats.late += 1
                stats.worst = max(stats.worst, lateness)
                due.append((tick, deadline))
            return due

    def _warn(self, message: str) -> None:
        stamp = self._now()
        if stamp - self._last_warning >= _WARN_INTERVAL:
            self._last_warning = stamp
            log.warning(message)
        else:
            log.debug(message)
