"""The output scheduler: order, deadlines, lateness, cancel and stop without hanging notes.

The real clock is used with loose tolerances; how precise the scheduler is belongs to
benchmarks/midi_scheduling.py, not to these tests.
"""

from __future__ import annotations

import threading
import time

import mido
import pytest

from live.midi_io.ledger import ALL_NOTES_OFF, NoteLedger
from tests.midi_io.notes import hanging
from live.midi_io.scheduler import OutputScheduler, percentile

SLACK = 0.020  # seconds a message may arrive after its deadline on a busy shared machine


def on(note: int, channel: int = 0, velocity: int = 100) -> mido.Message:
    return mido.Message("note_on", channel=channel, note=note, velocity=velocity)


def off(note: int, channel: int = 0) -> mido.Message:
    return mido.Message("note_off", channel=channel, note=note, velocity=64)


class Recorder:
    """A send function that records (perf_counter, message)."""

    def __init__(self) -> None:
        self.got: list[tuple[float, mido.Message]] = []
        self._lock = threading.Lock()

    def __call__(self, msg: mido.Message) -> None:
        stamp = time.perf_counter()
        with self._lock:
            self.got.append((stamp, msg))

    @property
    def messages(self) -> list[mido.Message]:
        with self._lock:
            return [m for _, m in self.got]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[mido.Message]:
        deadline = time.perf_counter() + timeout
        while len(self.got) < count and time.perf_counter() < deadline:
            time.sleep(0.002)
        return self.messages


@pytest.fixture
def rec():
    return Recorder()


@pytest.fixture
def scheduler(rec):
    s = OutputScheduler(rec)
    s.start()
    yield s
    s.stop()


def test_messages_go_out_in_deadline_order_never_early_and_soon_after(scheduler, rec):
    t0 = time.perf_counter() + 0.05
    offsets = [0.040, 0.000, 0.030, 0.010, 0.020, 0.025, 0.005]
    for i, dt in enumerate(offsets):
        scheduler.schedule(t0 + dt, mido.Message("control_change", control=20, value=i))
    rec.wait_for(len(offsets))
    got = rec.got
    values = [m.value for _, m in got]
    assert values == sorted(range(len(offsets)), key=lambda i: offsets[i])
    for stamp, m in got:
        deadline = t0 + offsets[m.value]
        assert stamp >= deadline, "sent before its deadline"
        assert stamp - deadline < SLACK
    stats = scheduler.stats()
    assert stats.sent == len(offsets)
    assert len(stats.errors) == len(offsets) and min(stats.errors) >= 0
    assert stats.pending == 0


def test_equal_deadlines_keep_the_order_they_were_scheduled_in(scheduler, rec):
    when = time.perf_counter() + 0.03
    for i in range(50):
        scheduler.schedule(when, mido.Message("control_change", control=21, value=i))
    assert [m.value for m in rec.wait_for(50)] == list(range(50))


def test_scheduling_from_many_threads(scheduler, rec):
    base = time.perf_counter() + 0.05

    def feed(k: int) -> None:
        for i in range(25):
            scheduler.schedule(base + 0.001 * i, mido.Message("control_change", channel=k, control=22, value=i))

    threads = [threading.Thread(target=feed, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = rec.wait_for(100)
    assert len(got) == 100
    for k in range(4):
        assert [m.value for m in got if m.channel == k] == list(range(25))
    assert [s for s, _ in rec.got] == sorted(s for s, _ in rec.got)


def test_a_message_scheduled_in_the_past_goes_out_at_once_and_counts_as_late(scheduler, rec):
    before = time.perf_counter()
    scheduler.schedule(before - 0.5, on(60))
    rec.wait_for(1)
    stamp, msg = rec.got[0]
    assert msg == on(60)
    assert stamp - before < SLACK
    stats = scheduler.stats()
    assert stats.late == 1
    assert stats.worst_lateness >= 0.5


def test_an_earlier_message_overtakes_one_being_waited_for(scheduler, rec):
    now = time.perf_counter()
    scheduler.schedule(now + 0.3, on(61))
    time.sleep(0.01)
    scheduler.schedule(now + 0.03, on(60))
    got = rec.wait_for(1)
    assert got[0] == on(60)
    assert rec.got[0][0] - (now + 0.03) < SLACK
    assert rec.wait_for(2)[1] == on(61)


def test_messages_scheduled_before_start_wait_for_it(rec):
    s = OutputScheduler(rec)
    s.schedule(time.perf_counter() - 1, on(60))
    time.sleep(0.02)
    assert rec.messages == []
    s.start()
    try:
        assert rec.wait_for(1) == [on(60)]
    finally:
        s.stop()


def test_send_now_goes_through_the_ledger(scheduler, rec):
    scheduler.send_now(on(60))
    scheduler.send_now(on(60))
    assert rec.messages == [on(60), off(60), on(60)]
    assert scheduler.ledger.sounding() == [(0, 60)]
    assert scheduler.stats().sent_now == 2


def test_stop_drops_pending_messages_and_releases_sounding_notes(rec):
    s = OutputScheduler(rec)
    s.start()
    now = time.perf_counter()
    s.schedule(now, on(60, channel=1))
    s.schedule(now, on(64, channel=2))
    s.schedule(now + 10, off(60, channel=1))
    s.schedule(now + 10, off(64, channel=2))
    rec.wait_for(2)
    assert s.stop() == 2
    got = rec.messages
    assert hanging(got) == set()
    assert got[2:] == [off(60, 1), off(64, 2),
                       mido.Message("control_change", channel=1, control=ALL_NOTES_OFF, value=0),
                       mido.Message("control_change", channel=2, control=ALL_NOTES_OFF, value=0)]
    assert not s.running
    assert s.stop() == 0  # twice is harmless and sends nothing more
    assert len(rec.messages) == len(got)


def test_stop_and_start_again(rec):
    s = OutputScheduler(rec)
    s.start()
    s.stop()
    s.start()
    try:
        s.schedule(time.perf_counter() + 0.01, on(70))
        assert rec.wait_for(1) == [on(70)]
    finally:
        s.stop()


def test_cancel_keeps_the_note_offs_of_notes_already_sounding(scheduler, rec):
    now = time.perf_counter()
    # Answer "a": one note already sounding, one still to come.
    scheduler.schedule(now, on(60), tag="a")
    scheduler.schedule(now + 0.15, off(60), tag="a")
    scheduler.schedule(now + 0.10, on(62), tag="a")
    scheduler.schedule(now + 0.20, off(62), tag="a")
    # Answer "b" is not touched.
    scheduler.schedule(now + 0.05, on(72), tag="b")
    scheduler.schedule(now + 0.12, off(72), tag="b")
    rec.wait_for(1)
    assert scheduler.cancel("a") == 2  # the note-on of 62 and its note-off
    assert scheduler.pending("a") == 1  # 60's note-off stays at its deadline
    got = rec.wait_for(4)
    assert got == [on(60), on(72), off(72), off(60)]
    off60 = rec.got[3][0]
    assert off60 >= now + 0.15  # the note ended as planned, not early
    assert hanging(got) == set()
    assert scheduler.ledger.sounding() == []


def test_cancel_with_cut_ends_sounding_notes_at_once(scheduler, rec):
    now = time.perf_counter()
    scheduler.schedule(now, on(60), tag="a")
    scheduler.schedule(now, on(64), tag="a")
    scheduler.schedule(now + 5, off(60), tag="a")
    scheduler.schedule(now + 5, off(64), tag="a")
    scheduler.schedule(now + 5, on(67), tag="a")
    rec.wait_for(2)
    before = time.perf_counter()
    assert scheduler.cancel("a", cut=True) == 3
    got = rec.messages
    assert got == [on(60), on(64), off(60), off(64)]
    assert rec.got[-1][0] - before < SLACK
    assert scheduler.pending() == 0
    assert scheduler.ledger.sounding() == []


def test_cancel_releases_a_sounding_note_that_has_no_pending_note_off(scheduler, rec):
    now = time.perf_counter()
    scheduler.schedule(now, on(60), tag="a")
    scheduler.schedule(now + 5, on(61), tag="a")
    rec.wait_for(1)
    scheduler.cancel("a")
    assert rec.messages == [on(60), off(60)]
    assert scheduler.pending() == 0


def test_cancel_does_not_cut_a_note_that_another_tag_struck_again(scheduler, rec):
    now = time.perf_counter()
    scheduler.schedule(now, on(60), tag="a")
    scheduler.schedule(now + 0.01, on(60), tag="b")  # re-strikes: now b's note
    scheduler.schedule(now + 5, off(60), tag="a")
    scheduler.schedule(now + 0.1, off(60), tag="b")
    rec.wait_for(3)  # on, (ledger's) off, on
    scheduler.cancel("a")
    assert scheduler.pending("a") == 0  # a's note-off would only have cut b's note
    got = rec.wait_for(4)
    assert got == [on(60), off(60), on(60), off(60)]
    assert rec.got[3][0] >= now + 0.1
    assert hanging(got) == set()


def test_cancel_racing_the_sender_never_leaves_a_note_hanging(rec):
    """Cancel while the scheduler is sending: whatever got out, nothing hangs."""
    s = OutputScheduler(rec)
    s.start()
    try:
        for round_ in range(20):
            now = time.perf_counter()
            tag = ("answer", round_)
            for i in range(10):
                s.schedule(now + 0.001 * i, on(40 + i), tag=tag)
                s.schedule(now + 0.001 * i + 0.02, off(40 + i), tag=tag)
            time.sleep(0.001 * (round_ % 12))
            s.cancel(tag)
            while s.pending(tag):
                time.sleep(0.005)
            assert s.ledger.sounding(owner=tag) == []
        assert hanging(rec.messages) == set()
    finally:
        s.stop()
    assert s.ledger.notes_on > 0  # some rounds did get notes out before the cancel


def test_cancel_needs_a_tag(scheduler):
    with pytest.raises(ValueError):
        scheduler.cancel(None)


def test_the_maximum_note_length_guard_runs_in_the_scheduler_thread(rec):
    s = OutputScheduler(rec, max_note_seconds=0.05)
    s.start()
    try:
        s.send_now(on(60))  # a note-on with no note-off, from another thread
        got = rec.wait_for(2, timeout=2.0)
        assert got == [on(60), off(60)]
        held = rec.got[1][0] - rec.got[0][0]
        assert 0.05 <= held < 0.05 + 0.1
        assert s.ledger.expired == 1
    finally:
        s.stop()


def test_a_failing_output_is_counted_and_the_scheduler_goes_on(rec):
    def flaky(msg: mido.Message) -> None:
        if msg.type == "control_change" and msg.value == 1:
            raise OSError("port gone for a moment")
        rec(msg)

    s = OutputScheduler(flaky)
    s.start()
    try:
        now = time.perf_counter()
        for i in range(3):
            s.schedule(now + 0.005 * i, mido.Message("control_change", control=7, value=i))
        assert [m.value for m in rec.wait_for(2)] == [0, 2]
        time.sleep(0.01)
        assert s.stats().send_errors == 1
        assert s.running
    finally:
        s.stop()


def test_a_ledger_can_be_shared(rec):
    ledger = NoteLedger(rec)
    s = OutputScheduler(ledger)
    assert s.ledger is ledger


def test_stats_percentiles():
    assert percentile([], 50) is None
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 99) == 3.0


def test_bad_spin_settings_are_refused(rec):
    with pytest.raises(ValueError):
        OutputScheduler(rec, spin_seconds=-0.001)
    with pytest.raises(ValueError):
        OutputScheduler(rec, hold_seconds=-1)
    with pytest.raises(ValueError):
        OutputScheduler(rec, realtime_priority=0)


def test_a_refused_realtime_priority_still_sends(rec, monkeypatch):
    import os

    def refuse(*args):
        raise PermissionError("not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse, raising=False)
    s = OutputScheduler(rec, realtime_priority=5)
    s.start()
    try:
        s.schedule(time.perf_counter(), on(60))
        assert rec.wait_for(1) == [on(60)]
        assert not s.realtime
    finally:
        s.stop()
