"""The output scheduler: MIDI messages sent at absolute perf_counter deadlines.

:class:`OutputScheduler` owns one thread. Callers hand it messages with an absolute deadline
(``time.perf_counter`` seconds, the clock's edge; ticks are turned into seconds before this
point) and an optional tag naming the agent or answer they belong to. The thread waits on a
condition variable until ``spin_seconds`` before the earliest deadline, then spins on
perf_counter for the last stretch and sends. Every wait is computed afresh from the absolute
deadline and the clock now, never from a relative sleep, so errors don't add up.

While spinning, the thread sleeps for zero seconds each turn until the final ``hold_seconds``.
That lets go of the GIL: a JACK input callback of the same process needs it, and one kept
waiting longer than a JACK period makes its client miss the cycle (on a JACK server in the
default asynchronous mode, the events of that cycle are lost). It also keeps the thread looking
like a sleeper to the OS: on a loaded machine a thread that spins without pause for 2 ms is
preempted as a CPU hog, and was measured later than one that only holds for the last 0.2 ms.

A message whose deadline has passed goes out at once. The scheduling error of every message
(perf_counter right before the send minus the deadline, in seconds) is kept for the last
``history`` messages; one above ``late_seconds`` counts as late (see :meth:`stats`).

Everything goes out through a :class:`~live.midi_io.ledger.NoteLedger`, so no note is left
hanging: :meth:`OutputScheduler.cancel` drops the pending messages of one tag but lets the
note-offs of its notes that already sound go out (or sends them at once), and
:meth:`OutputScheduler.stop` drops what is pending and releases every sounding note.

Python's GIL matters here: a thread that computes in Python holds the GIL for up to
``sys.getswitchinterval()`` (5 ms by default) before the woken scheduler thread gets to run.
A daemon that computes beside the scheduler should lower it (``sys.setswitchinterval(0.0005)``);
this module does not change that process-wide setting itself.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import mido

from live.midi_io.ledger import NoteLedger, is_note_off

log = logging.getLogger(__name__)

_Item = tuple[float, int, mido.Message, "Hashable | None"]  # deadline, sequence, message, tag


@dataclass(frozen=True)
class SchedulerStats:
    """A snapshot of the scheduler's counters. Times are seconds.

    ``errors`` are the last scheduling errors (send time minus deadline, measured right before
    the send), oldest first; ``median_error`` and ``p99_error`` summarize them (None before
    the first message).
    """

    sent: int  # scheduled messages sent
    sent_now: int  # messages sent through send_now
    late: int  # scheduled messages sent more than late_seconds after their deadline
    worst_lateness: float  # the largest scheduling error so far
    pending: int  # messages waiting for their deadline
    cancelled: int  # messages dropped by cancel (and stop)
    send_errors: int  # sends that raised (the message is lost; the scheduler goes on)
    errors: tuple[float, ...]
    median_error: float | None
    p99_error: float | None


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values`` by the nearest-rank method; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(min(rank, len(ordered))) - 1]


class OutputScheduler:
    """Sends MIDI messages at absolute deadlines from its own thread, through a note ledger.

    ``send`` is either a :class:`NoteLedger` (used as it is) or the output's plain send
    function (a ledger is made around it with ``max_note_seconds``). ``spin_seconds`` is how
    long before a deadline the thread stops waiting and spins on the clock (seconds);
    ``hold_seconds`` is the final part of that spin in which it keeps the GIL (seconds).
    ``realtime_priority`` (1-99): the thread asks for SCHED_FIFO at that priority (Linux; needs
    CAP_SYS_NICE or an rtprio limit); refused, it runs at normal priority and logs a warning.
    ``realtime`` says which happened. Keep it below jackd's own realtime threads.
    ``late_seconds``: a message sent later than this after its deadline counts as late.
    ``history``: how many recent scheduling errors are kept for percentiles. ``now`` is the
    clock (``time.perf_counter``; replace only in tests). ``name`` names the thread.

    Deadlines, the clock and every figure are perf_counter seconds.
    """

    def __init__(
        self,
        send: Callable[[mido.Message], None] | NoteLedger,
        *,
        spin_seconds: float = 0.002,
        now: Callable[[], float] = time.perf_counter,
        name: str = "magenta-live output scheduler",
        late_seconds: float = 0.001,
        history: int = 4096,
        max_note_seconds: float | None = None,
        hold_seconds: float = 0.0002,
        realtime_priority: int | None = None,
    ) -> None:
        if spin_seconds < 0 or hold_seconds < 0:
            raise ValueError(f"spin_seconds and hold_seconds must be >= 0 seconds, not {spin_seconds}, {hold_seconds}")
        if realtime_priority is not None and not 1 <= realtime_priority <= 99:
            raise ValueError(f"realtime priority must be 1 to 99, not {realtime_priority!r}")
        self.realtime_priority = realtime_priority
        self.realtime = False  # whether the thread got SCHED_FIFO
        self.hold_seconds = hold_seconds
        self.ledger = send if isinstance(send, NoteLedger) else NoteLedger(send, max_note_seconds, now=now)
        self.spin_seconds = spin_seconds
        self.late_seconds = late_seconds
        self.name = name
        self._now = now
        self._cond = threading.Condition(threading.RLock())  # guards the heap and the flags
        self._send_lock = threading.RLock()  # held from taking messages off the heap to sent
        self._heap: list[_Item] = []
        self._seq = itertools.count()
        self._version = 0  # bumped whenever the earliest deadline moves earlier
        self._running = False
        self._thread: threading.Thread | None = None
        self._errors: deque[float] = deque(maxlen=history)
        self._sent = 0
        self._sent_now = 0
        self._late = 0
        self._worst = 0.0
        self._cancelled = 0
        self._send_errors = 0

    # -- the caller's side -------------------------------------------------------------------

    def schedule(self, deadline: float, msg: mido.Message, tag: Hashable | None = None) -> None:
        """Send ``msg`` at ``deadline`` (absolute perf_counter seconds). Thread-safe, O(log n).

        Messages with equal deadlines go out in the order they were scheduled. ``tag`` (any
        hashable but None) names the agent or answer the message belongs to, for
        :meth:`cancel`. A deadline already past sends the message at once (counted late).
        Messages scheduled before :meth:`start` wait for it.
        """
        with self._cond:
            item = (float(deadline), next(self._seq), msg, tag)
            heapq.heappush(self._heap, item)
            if self._heap[0] is item:
                self._version += 1
                self._cond.notify()

    def send_now(self, msg: mido.Message, tag: Hashable | None = None) -> None:
        """Send ``msg`` at once from the calling thread, through the ledger (for passthrough).

        Exceptions of the output propagate to the caller.
        """
        self.ledger.send(msg, tag)
        self._sent_now += 1

    def cancel(self, tag: Hashable, *, cut: bool = False) -> int:
        """Drop the pending messages of ``tag``; returns how many were dropped.

        No note is left hanging: for every note of ``tag`` that already sounds, its first
        pending note-off is kept at its deadline (the note ends as planned), or, with
        ``cut=True``, dropped and replaced by a note-off sent at once. A note of ``tag`` that
        sounds with no pending note-off at all is released at once too.
        """
        if tag is None:
            raise ValueError("cancel needs a tag; untagged messages can only be dropped by stop()")
        with self._send_lock:  # no message of this tag is half-way out while we look
            owned = set(self.ledger.sounding(owner=tag))
            kept_offs: set[tuple[int, int]] = set()
            with self._cond:
                kept: list[_Item] = []
                dropped = 0
                for item in sorted(self._heap):
                    msg, item_tag = item[2], item[3]
                    if item_tag != tag:
                        kept.append(item)
                        continue
                    if not cut and is_note_off(msg):
                        key = (msg.channel, msg.note)
                        if key in owned and key not in kept_offs:
                            kept_offs.add(key)
                            kept.append(item)
                            continue
                    dropped += 1
                self._heap = kept  # sorted, hence a valid heap
                self._cancelled += dropped
                self._version += 1
                self._cond.notify()
            # Notes of this tag that would otherwise hang; release() skips any that another
            # tag has re-struck since we looked.
            self.ledger.release(owner=tag, keys=sorted(owned - kept_offs))
        return dropped

    def pending(self, tag: Hashable | None = None) -> int:
        """How many messages wait (of ``tag`` only, if given)."""
        with self._cond:
            if tag is None:
                return len(self._heap)
            return sum(1 for item in self._heap if item[3] == tag)

    def start(self) -> None:
        """Start the sending thread (again, after a stop). Starting a running one does nothing."""
        with self._cond:
            if self._running:
                return
            self._running = True
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, release: bool = True, timeout: float = 1.0) -> int:
        """Stop the thread, drop every pending message, and (``release``) release all notes.

        Returns how many pending messages were dropped. With ``release`` the ledger sends a
        note-off for each sounding note and All Notes Off on the channels used
        (:meth:`NoteLedger.release_all`). ``timeout`` (seconds) bounds the wait for the thread.
        Safe to call twice. From a signal handler prefer ``ledger.release_all()``.
        """
        self._running = False
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the output scheduler thread did not stop within %.3g s", timeout)
        with self._cond:
            dropped = len(self._heap)
            self._heap = []
            self._cancelled += dropped
        if release:
            with self._send_lock:
                self.ledger.release_all()
        return dropped

    @property
    def running(self) -> bool:
        return self._running

    def stats(self) -> SchedulerStats:
        """A snapshot of the counters and recent scheduling errors (seconds)."""
        errors = list(self._errors)
        return SchedulerStats(
            sent=self._sent,
            sent_now=self._sent_now,
            late=self._late,
            worst_lateness=self._worst,
            pending=len(self._heap),
            cancelled=self._cancelled,
            send_errors=self._send_errors,
            errors=tuple(errors),
            median_error=percentile(errors, 50),
            p99_error=percentile(errors, 99),
        )

    def __enter__(self) -> OutputScheduler:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop(release=True)

    # -- the thread ------------------------------------------------------------------------

    def _wake_time(self, now: float) -> float | None:
        """When the thread must next act (absolute seconds), or None for 'when notified'."""
        wake = self._heap[0][0] - self.spin_seconds if self._heap else None
        limit = self.ledger.max_note_seconds
        if limit is not None:
            expiry = self.ledger.next_expiry()
            # Notes sent from other threads (send_now) don't notify us: look again at least
            # every tenth of the limit (between 10 ms and 250 ms).
            poll = now + min(0.25, max(0.01, limit / 10))
            for t in (expiry, poll):
                if t is not None and (wake is None or t < wake):
                    wake = t
        return wake

    def _become_realtime(self) -> None:
        if self.realtime_priority is None:
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.realtime_priority))  # this thread
        except (AttributeError, OSError) as err:
            log.warning("output scheduler: realtime priority %d refused (%s)", self.realtime_priority, err)
        else:
            self.realtime = True

    def _run(self) -> None:
        self._become_realtime()
        try:
            while True:
                with self._cond:
                    while True:
                        if not self._running:
                            return
                        now = self._now()
                        wake = self._wake_time(now)
                        if wake is not None and wake <= now:
                            break
                        self._cond.wait(None if wake is None else wake - now)
                    version = self._version
                    head = self._heap[0][0] if self._heap else None
                expiry = self.ledger.next_expiry()
                if expiry is not None and expiry <= self._now():
                    self.ledger.expire()
                if head is None:
                    continue
                # The last stretch: spin on the clock, unless an earlier message arrives.
                # Until the final hold_seconds each turn sleeps for zero seconds, which lets
                # other threads take the GIL (a JACK callback blocked on it would miss its
                # cycle); the final stretch spins without letting go.
                hold_from = head - self.hold_seconds
                while self._version == version and (now := self._now()) < head:
                    if now < hold_from:
                        time.sleep(0)
                if self._version == version:
                    self._send_due()
        except BaseException:
            log.exception("the output scheduler failed; releasing every sounding note")
            self._running = False
            self.ledger.release_all()
            raise

    def _send_due(self) -> None:
        with self._send_lock:
            with self._cond:
                now = self._now()
                due = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap))
            for deadline, _, msg, tag in due:
                if not self._running:
                    self._cancelled += 1
                    continue
                error = self._now() - deadline
                try:
                    self.ledger.send(msg, tag)
                except Exception as err:  # noqa: BLE001 - one bad send must not stop the music
                    self._send_errors += 1
                    log.warning("could not send %s: %s", msg, err)
                    continue
                self._sent += 1
                self._errors.append(error)
                if error > self.late_seconds:
                    self._late += 1
                self._worst = max(self._worst, error)
