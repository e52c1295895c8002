"""A quiet daemon's wait (``Daemon._wait_quietly``): it only reads the input queues, every
QUIET_POLL_SECONDS, and hands back to the loop on input, a tick or command (the wake event), a
signal's stop, or the loop's next chore."""

from __future__ import annotations

import threading
import time

import pytest

import live.daemon.loop as loop
from live.config import agent_spec
from live.daemon import Daemon, DaemonOptions


class QueuePort:
    """A polled input whose driver queue fills at a given perf_counter time."""

    def __init__(self, arrives: float = float("inf")) -> None:
        self.arrives, self.reads = arrives, 0

    def pump(self) -> int:
        self.reads += 1
        return 1 if time.perf_counter() >= self.arrives else 0


@pytest.fixture()
def daemon():
    return Daemon(DaemonOptions(agents=[agent_spec({})]))


def test_input_ends_the_wait_within_one_poll_and_marks_the_daemon_playing(daemon):
    start = time.perf_counter()
    idle, playing = QueuePort(), QueuePort(arrives=start + 0.05)
    daemon._last_input = start - 60.0
    daemon._wait_quietly([playing, idle], until=start + 10.0)
    waited = time.perf_counter() - start
    assert 0.05 <= waited < 0.05 + loop.QUIET_POLL_SECONDS + 0.02
    assert daemon._last_input >= start + 0.05  # the loop polls fast again (_poll_wait)
    assert daemon._poll_wait(time.perf_counter()) == loop.POLL_SECONDS
    assert idle.reads == playing.reads  # both queues are read on every poll, even the one that had input


def test_a_wake_a_signal_or_the_next_chore_ends_the_wait(daemon):
    port = QueuePort()
    start = time.perf_counter()
    daemon._wait_quietly([port], until=start + 0.03)  # the loop's next chore (keep_warm, the report)
    assert 0.03 <= time.perf_counter() - start < 0.03 + loop.QUIET_POLL_SECONDS + 0.02
    assert 5 <= port.reads <= 0.03 / loop.QUIET_POLL_SECONDS + 2  # polls, not a spin

    threading.Timer(0.02, daemon._wake.set).start()  # a tick or a command
    start = time.perf_counter()
    daemon._wait_quietly([port], until=start + 10.0)
    assert time.perf_counter() - start < 0.02 + 0.02

    daemon._wake.clear()
    threading.Timer(0.02, daemon.stop_from_signal, args=(15,)).start()  # SIGTERM sets a flag only
    start = time.perf_counter()
    daemon._wait_quietly([port], until=start + 10.0)
    assert time.perf_counter() - start < 0.02 + loop.QUIET_POLL_SECONDS + 0.02


# ``Daemon._chore_wait``: a loop whose inputs wake it (our JACK binding, ALSA) sleeps until its
# next chore instead of every IDLE_WAIT_SECONDS.


def test_an_event_driven_loop_sleeps_until_its_next_chore_and_no_longer(daemon):
    daemon._open_session()  # its agents, without ports
    now = time.perf_counter()
    daemon._next_report = now + 10.0
    daemon._snapshot_asked = now - 5.0  # nobody watches the panel
    assert daemon._chore_wait(now, None) == pytest.approx(loop.QUIET_WAIT_SECONDS)  # a signal's flag is read that often
    assert daemon._chore_wait(now, now + 0.03) == pytest.approx(0.03)  # the end of run(seconds)
    daemon._next_report = now + 0.02
    assert daemon._chore_wait(now, None) == pytest.approx(0.02)  # the log's report
    daemon._next_report = now - 1.0
    assert daemon._chore_wait(now, None) == 0.0  # overdue: no wait
    daemon._next_report = now + 10.0
    daemon._snapshot_asked, daemon._next_snapshot = now - 0.5, now + 0.04  # the panel watches
    assert daemon._chore_wait(now, None) == pytest.approx(0.04)
    daemon._snapshot_asked = now - 5.0
    daemon._next_warm = now + 0.001
    assert not daemon.session.warming  # call-response does not rehearse: its keep_warm is not a chore
    assert daemon._chore_wait(now, None) == pytest.approx(loop.QUIET_WAIT_SECONDS)


def test_a_rehearsing_agent_or_a_sounding_note_keeps_the_loop_waking_often():
    harmonizer = Daemon(DaemonOptions(agents=[agent_spec({"mode": "harmonize", "model": "polyphony"})]))
    harmonizer._open_session()
    now = time.perf_counter()
    harmonizer._next_report, harmonizer._snapshot_asked = now + 10.0, now - 5.0
    harmonizer._next_warm = now + 0.015
    assert harmonizer.session.warming
    assert harmonizer._chore_wait(now, None) == pytest.approx(0.015)

    class Sounding:
        sounding_count = 1

    class Scheduler:
        ledger = Sounding()

    harmonizer._next_warm = now + 10.0
    harmonizer.schedulers = [Scheduler()]
    assert harmonizer._chore_wait(now, None) == loop.IDLE_WAIT_SECONDS  # the longest-note guard runs
