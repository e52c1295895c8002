"""The internal clock in real time (each test a second or less): deadlines, drift, tempo changes,
transport, late ticks. Timing tolerances are generous: the machine may be shared."""

from __future__ import annotations

import math
import threading
import time

import pytest

from live.clock import InternalClock, seconds_per_tick
from tests.clock import Recorder


class Arrivals(Recorder):
    """Also records perf_counter when each tick arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[float] = []

    def on_tick(self, tick: int, time_: float) -> None:
        self.arrived.append(time.perf_counter())
        super().on_tick(tick, time_)


def run_clock(clock: InternalClock, seconds: float, start_in: float = 0.02) -> tuple[float, float]:
    """Start at a known time, run ``seconds``, stop; returns (start time, time just before stop)."""
    t_start = time.perf_counter() + start_in
    clock.start(at=t_start)
    time.sleep(start_in + seconds)
    t_stop = time.perf_counter()
    clock.stop()
    return t_start, t_stop


def test_ticks_never_come_early_and_never_drift():
    bpm = 180.0
    spt = seconds_per_tick(bpm)
    with InternalClock(bpm) as clock:
        rec = Arrivals()
        clock.add_listener(rec)
        t_start, t_stop = run_clock(clock, 1.5)
    ticks, deadlines = rec.ticks(), rec.tick_times()
    assert ticks == list(range(len(ticks)))
    # each tick's time is its absolute deadline on the grid, and it never arrives before it
    for n, deadline, arrived in zip(ticks, deadlines, rec.arrived):
        assert deadline == pytest.approx(t_start + n * spt, abs=1e-9)
        assert arrived >= deadline
    expected = math.floor((t_stop - t_start) / spt) + 1  # ticks 0..k were due before the stop
    assert abs(len(ticks) - expected) <= 1
    assert clock.stats.ticks == len(ticks)
    # no drift: the lateness at the end is no worse than at the start (medians, robust to load)
    late = sorted(a - d for a, d in zip(rec.arrived[-20:], deadlines[-20:]))
    assert late[10] < 0.005


def test_a_tempo_change_keeps_the_phase():
    with InternalClock(120.0) as clock:
        rec = Arrivals()
        clock.add_listener(rec)
        clock.start()
        time.sleep(0.41)
        before = clock.anchor
        clock.set_bpm(80.0)
        after = clock.anchor
        time.sleep(0.4)
        clock.stop()
    assert clock.bpm == pytest.approx(80.0)
    # the song position at the moment of the change is the same on both lines
    assert after.tick_at(after.t0) == pytest.approx(before.tick_at(after.t0), abs=1e-9)
    assert after.spt == pytest.approx(seconds_per_tick(80.0))
    ticks, deadlines = rec.ticks(), rec.tick_times()
    assert ticks == list(range(len(ticks)))
    first_new = math.ceil(after.n0)
    for n, deadline, arrived in zip(ticks, deadlines, rec.arrived):
        line = before if n < first_new else after
        assert deadline == pytest.approx(line.time_of(n), abs=1e-9)
        assert arrived >= deadline
    # the interval straddling the change lies between the old and the new interval
    straddle = deadlines[first_new] - deadlines[first_new - 1]
    assert before.spt <= straddle <= after.spt
    assert deadlines[first_new + 1] - deadlines[first_new] == pytest.approx(after.spt)


def test_transport_order_and_contiguous_positions():
    with InternalClock(240.0) as clock:
        rec = Recorder()
        clock.add_listener(rec)
        clock.start()
        time.sleep(0.15)
        clock.stop()
        stopped_at = clock.next_tick
        time.sleep(0.1)
        assert len(rec.ticks()) == stopped_at  # nothing while stopped
        clock.resume()
        time.sleep(0.1)
        clock.locate(960)
        time.sleep(0.1)
        clock.stop()
    events = rec.events
    assert events[0] == ("start", 0) and events[1][:2] == ("tick", 0)
    transport = rec.transport()
    assert transport[:3] == [("start", 0), ("stop", stopped_at), ("continue", stopped_at)]
    assert transport[3][0] == "position" and transport[3][1] == 960
    assert transport[4] == ("stop", clock.next_tick)
    ticks = rec.ticks()
    located = ticks.index(960)
    assert ticks[:located] == list(range(located))  # contiguous across stop/continue
    assert ticks[located:] == list(range(960, 960 + len(ticks) - located))
    assert stopped_at >= 10 and len(ticks) - located >= 5


def test_a_failing_listener_does_not_stop_the_clock():
    class Failing(Recorder):
        def on_tick(self, tick, time_):
            super().on_tick(tick, time_)
            if tick == 3:
                raise RuntimeError("listener bug")

    with InternalClock(240.0) as clock:
        bad, good = Failing(), Recorder()
        clock.add_listener(bad)
        clock.add_listener(good)
        clock.start()
        deadline = time.perf_counter() + 10.0  # a loaded machine may hold the clock's thread up
        while len(good.ticks()) < 12 and time.perf_counter() < deadline:
            time.sleep(0.01)
        clock.stop()
    assert clock.listener_errors == 1
    assert good.ticks() == list(range(len(good.ticks()))) and len(good.ticks()) > 10
    assert bad.ticks() == good.ticks()


class Stalling(Arrivals):
    """Blocks the clock thread once, for ``seconds`` at tick ``at``."""

    def __init__(self, at: int, seconds: float) -> None:
        super().__init__()
        self.at, self.seconds = at, seconds

    def on_tick(self, tick: int, time_: float) -> None:
        super().on_tick(tick, time_)
        if tick == self.at:
            time.sleep(self.seconds)


def test_a_held_up_clock_catches_up_with_contiguous_ticks():
    spt = seconds_per_tick(240.0)  # 10.4 ms
    with InternalClock(240.0) as clock:
        rec = Stalling(at=5, seconds=4.5 * spt)
        clock.add_listener(rec)
        t_start, _ = run_clock(clock, 0.25)
    stats = clock.stats
    assert stats.caught_up >= 2 and stats.reanchored == 0
    assert stats.worst >= 3 * spt and stats.late >= 3
    ticks, deadlines = rec.ticks(), rec.tick_times()
    assert ticks == list(range(len(ticks)))
    assert all(d == pytest.approx(t_start + n * spt, abs=1e-9) for n, d in zip(ticks, deadlines))  # the grid holds
    # the overdue ticks went out together right after the stall
    assert rec.arrived[8] - rec.arrived[6] < spt


def test_a_long_stall_re_anchors_instead_of_bursting():
    spt = seconds_per_tick(240.0)
    with InternalClock(240.0, max_catch_up=2) as clock:
        rec = Stalling(at=5, seconds=8 * spt)
        clock.add_listener(rec)
        run_clock(clock, 0.3)
    stats = clock.stats
    assert stats.reanchored >= 1  # (a loaded machine may add a short catch-up elsewhere)
    ticks, deadlines = rec.ticks(), rec.tick_times()
    assert ticks == list(range(len(ticks)))
    assert deadlines[6] - deadlines[5] > 7 * spt  # tick 6 was moved to when the clock could go on
    assert deadlines[7] - deadlines[6] == pytest.approx(spt)
    assert rec.arrived[7] - rec.arrived[6] > 0.5 * spt  # no burst


def test_tempo_is_checked_and_close_ends_the_thread():
    clock = InternalClock(120.0)
    for bad in (0, -5, float("nan"), 5000):
        with pytest.raises(ValueError):
            clock.set_bpm(bad)
    clock.start()
    thread = clock._thread
    clock.close()
    assert not thread.is_alive() and not clock.running
    with pytest.raises(RuntimeError):
        clock.start()


def test_set_bpm_from_another_thread_while_running():
    with InternalClock(200.0) as clock:
        rec = Recorder()
        clock.add_listener(rec)
        clock.start()
        changers = [threading.Thread(target=clock.set_bpm, args=(100.0 + i,)) for i in range(20)]
        for t in changers:
            t.start()
        for t in changers:
            t.join()
        time.sleep(0.1)
        clock.stop()
    ticks = rec.ticks()
    assert ticks == list(range(len(ticks)))
    assert 100.0 <= clock.bpm <= 119.0


def test_realtime_priority_is_asked_for_in_the_clock_thread(monkeypatch):
    from live.clock import internal

    calls = []
    def record(pid, policy, param):
        calls.append((pid, policy, param.sched_priority, threading.current_thread().name))

    monkeypatch.setattr(internal.os, "sched_setscheduler", record, raising=False)
    monkeypatch.setattr(internal.os, "SCHED_FIFO", 1, raising=False)
    with InternalClock(240.0, realtime_priority=7) as clock:
        clock.start()
        time.sleep(0.05)
        clock.stop()
    assert calls == [(0, 1, 7, "live-internal-clock")]  # pid 0 from the clock thread: that thread only
    assert clock.realtime


def test_a_refused_realtime_priority_is_a_warning_not_an_error(monkeypatch, caplog):
    from live.clock import internal

    def refuse(pid, policy, param):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(internal.os, "sched_setscheduler", refuse, raising=False)
    with InternalClock(240.0, realtime_priority=7) as clock:
        rec = Recorder()
        clock.add_listener(rec)
        clock.start()
        time.sleep(0.1)
        clock.stop()
    assert not clock.realtime
    assert len(rec.ticks()) >= 5
    assert any("realtime priority 7 refused" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError):
        InternalClock(realtime_priority=0)
