"""DeltaStamps and InputPump: perf_counter stamps from rtmidi's deltas, without a JACK server."""

from __future__ import annotations

import time

import numpy as np
import pytest

from live.midi_io.polling import DRIFT_PER_SECOND, DeltaStamps, InputPump


def arrivals_and_reads(seed: int, count: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Arrival times (seconds) and the (later) times they were read, as a poller sees them."""
    rng = np.random.default_rng(seed)
    arrivals = 100.0 + np.cumsum(rng.exponential(0.02, count))
    delays = rng.uniform(0.0, 0.001, count)  # a 1 ms poll
    delays[rng.random(count) < 0.05] += rng.uniform(0.005, 0.05)  # now and then a late read
    reads = np.maximum.accumulate(arrivals + delays)  # reads happen in order
    return arrivals, reads


@pytest.mark.parametrize("seed", range(5))
def test_stamps_are_never_early_never_after_the_read_and_converge(seed):
    arrivals, reads = arrivals_and_reads(seed)
    stamps = DeltaStamps()
    deltas = np.diff(arrivals, prepend=arrivals[0])  # rtmidi: the first message's delta is 0
    got = np.array([stamps.stamp(d, r) for d, r in zip(deltas, reads)])
    assert np.all(got >= arrivals - 1e-9), "a stamp before the message arrived"
    assert np.all(got <= reads + 1e-9), "a stamp after the message was read"
    assert np.all(np.diff(got) >= 0)
    # once one message has been read promptly, stamps are as good as the best read so far,
    # even for messages read 5-50 ms late
    late = (reads - arrivals) > 0.005
    settled = np.arange(len(got)) > 20
    assert np.max((got - arrivals)[late & settled]) < 0.0005


def test_the_first_late_read_is_corrected_by_a_prompt_one():
    stamps = DeltaStamps()
    first = stamps.stamp(0.0, 10.030)  # arrived at 10.000, read 30 ms late
    assert first == pytest.approx(10.030)
    stamps.stamp(0.040, 10.0401)  # arrived at 10.040, read at once
    assert stamps.offset == pytest.approx(10.0001)
    third = stamps.stamp(0.010, 10.080)  # arrived at 10.050, read 30 ms late
    assert third == pytest.approx(10.0501)


def test_restart_forgets_an_offset_that_lost_deltas_made_wrong():
    stamps = DeltaStamps()
    stamps.stamp(0.0, 1.0)
    # rtmidi dropped messages worth 2 s of deltas: the next delta is short by that much
    stamps.restart()
    assert stamps.stamp(0.001, 3.0015) == pytest.approx(3.0015)


def test_the_offset_may_rise_only_by_the_drift_allowance():
    stamps = DeltaStamps()
    stamps.stamp(0.0, 1.0)
    later = stamps.stamp(10.0, 11.5)  # as if the message had been read 0.5 s late
    assert later == pytest.approx(11.0 + 10.5 * DRIFT_PER_SECOND)  # 10.5 s after the first read


class FakeQueue:
    """rtmidi's queue: ``get_message`` pops (bytes, delta) or returns None."""

    def __init__(self) -> None:
        self.items: list[tuple[list[int], float]] = []

    def get_message(self):
        return self.items.pop(0) if self.items else None


def test_the_pump_moves_messages_with_stamps_and_stops():
    queue = FakeQueue()
    got: list[tuple[float, list[int]]] = []
    pump = InputPump(queue.get_message, lambda stamp, data: got.append((stamp, data)), name="test pump").start()
    try:
        before = time.perf_counter()
        queue.items += [([0x90, 60, 100], 0.0), ([0x80, 60, 0], 0.0)]
        deadline = time.perf_counter() + 2.0
        while len(got) < 2 and time.perf_counter() < deadline:
            time.sleep(0.001)
    finally:
        pump.stop()
    assert [data for _, data in got] == [[0x90, 60, 100], [0x80, 60, 0]]
    assert all(before <= stamp <= time.perf_counter() for stamp, _ in got)
    queue.items.append(([0x90, 61, 100], 0.1))
    time.sleep(0.01)
    assert len(got) == 2, "a stopped pump reads nothing"


def test_a_full_queue_restarts_the_stamps():
    queue = FakeQueue()
    pump = InputPump(queue.get_message, lambda stamp, data: None, name="test pump", full=3)
    queue.items += [([0xF8], 0.01)] * 3
    assert pump.drain() == 3
    assert pump.overflows == 1 and pump.stamps.offset is None
