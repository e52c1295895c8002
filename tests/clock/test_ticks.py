"""Tick arithmetic, positions, the absolute anchor, and the manual clock (all deterministic)."""

from __future__ import annotations

import pytest

from live.clock import (
    TICKS_PER_QUARTER,
    TICKS_PER_STEP,
    ManualClock,
    Position,
    TempoAnchor,
    TimeSignature,
    bpm_of,
    seconds_per_tick,
)
from tests.clock import Recorder


def test_units():
    assert TICKS_PER_QUARTER == 24 and TICKS_PER_STEP == 6
    assert seconds_per_tick(120) == pytest.approx(0.5 / 24)
    assert bpm_of(seconds_per_tick(97.0)) == pytest.approx(97.0)


@pytest.mark.parametrize(
    "signature, tick, expected",
    [
        ((4, 4), 0, (0, 0, 0)),
        ((4, 4), 5, (0, 0, 0)),
        ((4, 4), 6, (0, 0, 1)),
        ((4, 4), 95, (0, 3, 3)),
        ((4, 4), 96, (1, 0, 0)),
        ((4, 4), 222, (2, 1, 1)),
        ((3, 4), 72, (1, 0, 0)),
        ((3, 4), 71, (0, 2, 3)),
        ((6, 8), 72, (1, 0, 0)),  # six eighths of 12 ticks
        ((6, 8), 18, (0, 1, 1)),  # an eighth beat holds two 16th steps
        ((7, 8), 83, (0, 6, 1)),
    ],
)
def test_position_of_a_tick(signature, tick, expected):
    clock = ManualClock(beats_per_bar=signature[0], beat_unit=signature[1])
    assert clock.position(tick) == Position(*expected)
    assert clock.tick_of(*expected) == tick - tick % TICKS_PER_STEP


def test_time_signature_checks():
    assert TimeSignature(6, 8).ticks_per_bar == 72
    for bad in [(0, 4), (4, 3), (4.0, 4), (True, 4)]:
        with pytest.raises(ValueError):
            TimeSignature.checked(*bad)
    clock = ManualClock()
    clock.time_signature = (3, 4)
    assert clock.ticks_per_bar == 72 and clock.beats_per_bar == 3
    with pytest.raises(ValueError):
        clock.position(-1)


def test_anchor_is_a_straight_line_without_accumulation():
    anchor = TempoAnchor(100.0, 0.0, seconds_per_tick(97.0))
    spt = 60.0 / (97.0 * 24)
    # a million ticks later the time is exactly the product, not a sum of a million intervals
    assert anchor.time_of(1_000_000) == pytest.approx(100.0 + 1_000_000 * spt, abs=1e-9)
    assert anchor.tick_at(anchor.time_of(12345)) == pytest.approx(12345.0, abs=1e-6)


def test_retempo_keeps_the_phase():
    old = TempoAnchor(0.0, 0.0, seconds_per_tick(120.0))  # tick every 1/48 s
    change = 0.25 + 0.5 / 48  # halfway between tick 12 and tick 13
    new = old.retempo(change, seconds_per_tick(60.0))
    assert new.tick_at(change) == pytest.approx(12.5)
    # the remaining half of tick 12's interval takes half a new interval
    assert new.time_of(13) - change == pytest.approx(0.5 * seconds_per_tick(60.0))
    assert new.time_of(14) - new.time_of(13) == pytest.approx(seconds_per_tick(60.0))


def test_manual_clock_emits_ticks_at_their_deadlines():
    clock = ManualClock(bpm=120.0, start_time=5.0)
    rec = Recorder()
    clock.add_listener(rec)
    clock.start()
    clock.advance(3)
    assert rec.events == [("start", 0), ("tick", 0, 5.0), ("tick", 1, 5.0 + 1 / 48), ("tick", 2, 5.0 + 2 / 48)]
    assert clock.tick == 2 and clock.next_tick == 3 and clock.now == pytest.approx(5.0 + 2 / 48)
    assert clock.set_time(6.0) == 46  # ticks 3..48 (48 is due at exactly 6.0)
    assert rec.ticks() == list(range(49)) and clock.now == 6.0
    assert clock.time_of_tick(96) == pytest.approx(7.0)


def test_manual_clock_tempo_change_keeps_phase():
    clock = ManualClock(bpm=120.0)
    rec = Recorder()
    clock.add_listener(rec)
    clock.start()
    clock.set_time(0.5 + 0.5 / 48)  # ticks 0..24 emitted, halfway to tick 25
    clock.set_bpm(60.0)
    clock.advance(2)
    times = rec.tick_times()
    assert times[24] == pytest.approx(0.5)
    assert times[25] == pytest.approx(0.5 + 0.5 / 48 + 0.5 / 24)  # half an old interval, half a new
    assert times[26] - times[25] == pytest.approx(1 / 24)
    assert clock.bpm == pytest.approx(60.0)


def test_manual_clock_transport():
    clock = ManualClock(bpm=120.0)
    rec = Recorder()
    clock.add_listener(rec)
    with pytest.raises(RuntimeError):
        clock.advance(1)  # stopped
    clock.start()
    clock.advance(10)
    clock.stop()
    clock.set_time(10.0)  # nothing is due while stopped
    clock.locate(96)
    clock.resume()
    clock.advance(2)
    clock.stop()
    clock.start()
    clock.advance(1)
    assert rec.transport() == [("start", 0), ("stop", 10), ("position", 96), ("continue", 96), ("stop", 98), ("start", 0)]
    assert rec.ticks() == list(range(10)) + [96, 97, 0]
    assert rec.tick_times()[10] == 10.0  # resumed at the time of the call
    with pytest.raises(ValueError):
        clock.locate(-6)
    with pytest.raises(ValueError):
        clock.set_time(1.0)  # the past


def test_locate_while_running_keeps_the_next_deadline():
    clock = ManualClock(bpm=120.0)
    rec = Recorder()
    clock.add_listener(rec)
    clock.start()
    clock.advance(5)
    due = clock.time_of_tick(5)
    clock.locate(192)
    clock.advance(2)
    assert rec.events[-2:] == [("tick", 192, due), ("tick", 193, pytest.approx(due + 1 / 48))]


def test_listener_errors_reach_the_caller_of_a_manual_clock():
    class Broken:
        def on_tick(self, tick, time):
            raise ZeroDivisionError("boom")

        def on_transport(self, event, tick):
            pass

    clock = ManualClock()
    clock.add_listener(Broken())
    clock.start()
    with pytest.raises(ZeroDivisionError):
        clock.advance(1)


def test_add_listener_checks_the_protocol_and_remove_works():
    clock = ManualClock()
    with pytest.raises(TypeError):
        clock.add_listener(object())
    rec = Recorder()
    clock.add_listener(rec)
    clock.add_listener(rec)  # once only
    assert clock.listeners == (rec,)
    clock.start()
    clock.remove_listener(rec)
    clock.advance(2)
    assert rec.ticks() == []
