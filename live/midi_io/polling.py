"""Reading a JACK input without a Python callback.

python-rtmidi runs an input callback in the driver's thread and takes the GIL there. On JACK
that thread is the client's process thread, part of the server's real-time graph: while it
waits for the GIL, the whole graph waits. And python-rtmidi keeps the GIL through every call,
including the ones that wait for the graph (opening a client, closing a port). So one thread
of ours that opens a client while our input callback is due stalls the server until its
timeout, and the open fails with "JACK server not running?" (measured: tests/midi_io/
test_polling_jack.py). On JACK, inputs therefore use rtmidi's own lock-free queue, which the
process thread fills without Python, and :class:`InputPump` empties it from Python.

Stamps stay honest: rtmidi gives each queued message the time since the previous one, measured
with ``jack_get_time()`` in the process cycle that delivered it. :class:`DeltaStamps` turns
those deltas into ``time.perf_counter()`` seconds: the messages' times are the running sum of
deltas plus one unknown offset, and every read bounds that offset from above (a message can't
have arrived after it was read). The tightest bound so far is the estimate, so a stamp is late
by at most the shortest delay between an arrival and its read (a poll interval or less once any
message has been read promptly), never early, and independent of how late a particular read was.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

POLL_SECONDS = 0.0005
"""How often the pump (and the daemon's loop, while the player plays) looks for input
(seconds). JACK delivers input once per period (1.33 ms at 64 frames and 48 kHz); what a read
waits after a delivery is on average half this interval, and it is most of the daemon's own
share of a note's latency: at 1 ms its p99 was 1.2 ms, at 0.5 ms 0.87 ms (benchmarks/RESULTS.md,
"Passthrough latency")."""

QUEUE_SIZE = 8192
"""rtmidi's queue for one input (messages). When it is full rtmidi drops messages, and their
deltas with them; :class:`DeltaStamps` then starts its estimate afresh."""

DRIFT_PER_SECOND = 1e-4
"""How far the offset estimate may rise per second (seconds per second), in case the driver's
clock and ``perf_counter`` are not the same clock (they are on Linux: both CLOCK_MONOTONIC)."""


class DeltaStamps:
    """perf_counter stamps (seconds) from rtmidi's per-message deltas (seconds) and read times."""

    def __init__(self) -> None:
        self.offset: float | None = None  # arrival time minus the sum of deltas (seconds)
        self.total = 0.0  # the sum of deltas so far (seconds)
        self.last = float("-inf")  # the last stamp handed out
        self._updated = 0.0  # read time of the last offset update

    def restart(self) -> None:
        """Forget the offset (rtmidi dropped messages, so the deltas no longer add up)."""
        self.offset = None

    def stamp(self, delta: float, read_at: float) -> float:
        """The arrival time of a message whose delta is ``delta``, read at ``read_at``
        (perf_counter seconds). Stamps never decrease and never pass ``read_at``."""
        self.total += delta
        bound = read_at - self.total
        if self.offset is None:
            self.offset = bound
        else:  # the tightest bound, with a little room to rise in case the clocks drift apart
            self.offset = min(bound, self.offset + (read_at - self._updated) * DRIFT_PER_SECOND)
        self._updated = read_at
        stamp = max(self.offset + self.total, self.last)
        self.last = stamp
        return stamp


class InputPump:
    """Empties a python-rtmidi input's queue: from a thread of its own every :data:`POLL_SECONDS`
    (``start``), or whenever its owner calls ``drain`` (the daemon's loop does, every millisecond).

    ``get_message``: the rtmidi input's ``get_message`` (returns ``(bytes, delta seconds)`` or
    None). ``put(stamp, data)``: where each message goes, with its perf_counter stamp.
    ``full``: how many messages in one read mean rtmidi's queue had filled (and dropped some).
    The thread wakes at absolute deadlines, so the rate does not drift with the work done.
    """

    def __init__(
        self,
        get_message: Callable[[], tuple[list[int], float] | None],
        put: Callable[[float, list[int]], None],
        name: str,
        full: int = QUEUE_SIZE - 1,
    ) -> None:
        self.get_message = get_message
        self.put = put
        self.full = full
        self.stamps = DeltaStamps()
        self.overflows = 0  # reads that found rtmidi's queue full
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> InputPump:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling and wait for the thread (it ends within one poll); after this
        ``get_message`` is not called again, so its client may be closed. No timeout: closing
        the client under a thread still reading it would crash the process."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def drain(self) -> int:
        """Read every waiting message now; returns how many."""
        count = 0
        while (item := self.get_message()) is not None:
            data, delta = item
            self.put(self.stamps.stamp(delta, time.perf_counter()), data)
            count += 1
        if count >= self.full:
            self.overflows += 1
            self.stamps.restart()
        return count

    def _run(self) -> None:
        deadline = time.perf_counter()
        while not self._stop.is_set():
            self.drain()
            deadline += POLL_SECONDS
            now = time.perf_counter()
            if deadline < now:  # fell behind (the GIL, a loaded machine): don't catch up in a burst
                deadline = now + POLL_SECONDS
            time.sleep(deadline - now)  # cheaper than an Event's wait; stop() waits one poll
