"""A clock advanced by hand, on simulated time: deterministic tests and offline runs.

Nothing here reads the real clock. Simulated time (``now``, seconds) starts at ``start_time``;
tick times follow the same absolute-anchor arithmetic as the internal clock, so a tempo change
keeps the phase exactly as it would live. Listeners run in the caller's thread, and an exception
in a listener propagates to the caller of :meth:`advance` / :meth:`set_time`.
"""

from __future__ import annotations

from live.clock.base import ClockSource, TempoAnchor, bpm_of, check_bpm, check_tick, seconds_per_tick

# Simulated times are sums of floats: a tick due within a nanosecond of a target time counts as due.
_EPSILON = 1e-9


class ManualClock(ClockSource):
    """Ticks on demand.

    >>> clock = ManualClock(bpm=120)
    >>> clock.start()             # emits ("start", 0); tick 0 is due now (time 0.0)
    >>> clock.advance(6)          # emits ticks 0..5 at their due times
    >>> clock.set_time(1.0)       # emits every tick due up to 1.0 s: ticks 6..48
    """

    propagate_listener_errors = True

    def __init__(self, bpm: float = 120.0, beats_per_bar: int = 4, *, beat_unit: int = 4, start_time: float = 0.0) -> None:
        super().__init__(beats_per_bar, beat_unit)
        self._now = float(start_time)
        self._anchor = TempoAnchor(self._now, 0.0, seconds_per_tick(check_bpm(bpm)))

    @property
    def now(self) -> float:
        """Simulated time in seconds."""
        return self._now

    @property
    def bpm(self) -> float:
        return bpm_of(self._anchor.spt)

    @bpm.setter
    def bpm(self, value: float) -> None:
        self.set_bpm(value)

    def set_bpm(self, bpm: float) -> None:
        """Change the tempo at the current simulated time, keeping the phase."""
        spt = seconds_per_tick(check_bpm(bpm))
        if self._running:
            self._anchor = self._anchor.retempo(self._now, spt)
        else:
            self._anchor = TempoAnchor(self._anchor.t0, self._anchor.n0, spt)

    def time_of_tick(self, tick: int) -> float:
        if self._running:
            return self._anchor.time_of(tick)
        return self._now + (tick - self._next_tick) * self._anchor.spt

    # -- transport -----------------------------------------------------------------------------

    def start(self, at: float | None = None) -> None:
        """Go to song position 0 and run; tick 0 is due at ``at`` (default: now)."""
        self._next_tick = 0
        self._resume(at)
        self._emit_transport("start", 0)

    def resume(self, at: float | None = None) -> None:
        """Run on from the current song position ("continue"); the next tick is due at ``at``."""
        self._resume(at)
        self._emit_transport("continue", self._next_tick)

    def _resume(self, at: float | None) -> None:
        due = self._now if at is None else float(at)
        if due < self._now:
            raise ValueError(f"cannot start in the past: {due} s < now {self._now} s")
        self._anchor = TempoAnchor(due, float(self._next_tick), self._anchor.spt)
        self._running = True

    def stop(self) -> None:
        """Halt; the song position stays where it is."""
        if self._running:
            self._running = False
            self._emit_transport("stop", self._next_tick)

    def locate(self, tick: int) -> None:
        """Move the song position; while running, ``tick`` takes the due time of the old next tick."""
        check_tick(tick)
        if self._running:
            self._anchor = self._anchor.due_at(tick, self._anchor.time_of(self._next_tick))
        self._next_tick = tick
        self._emit_transport("position", tick)

    # -- advancing -----------------------------------------------------------------------------

    def advance(self, ticks: int = 1) -> None:
        """Emit the next ``ticks`` ticks, each at its due time; simulated time moves to the last."""
        if ticks < 0:
            raise ValueError(f"cannot advance by {ticks} ticks")
        if not self._running:
            raise RuntimeError("the manual clock is stopped: call start() or resume() first")
        for _ in range(ticks):
            if not self._running:  # a listener stopped it
                break
            tick = self._next_tick
            due = self._anchor.time_of(tick)
            self._now = max(self._now, due)
            self._next_tick = tick + 1
            self._emit_tick(tick, due)

    def set_time(self, time: float) -> int:
        """Move simulated time to ``time`` seconds, emitting every tick due by then; returns how many."""
        time = float(time)
        if time < self._now:
            raise ValueError(f"simulated time cannot go back: {time} s < now {self._now} s")
        emitted = 0
        while self._running and self._anchor.time_of(self._next_tick) <= time + _EPSILON:
            self.advance(1)
            emitted += 1
        self._now = time
        return emitted
