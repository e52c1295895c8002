"""``Wake``: a ``threading.Event`` that a thread can also sleep on beside a descriptor.

The daemon's loop sleeps until one of its inputs wakes it: a port's message, a clock tick, a
command. With our JACK binding it sleeps in ``live.midi_io.jack.wait_for_input``, where JACK's
process callback (C, no Python) wakes it directly by writing to the Wake's socket; the other
sources call ``set()``. A socket pair, not a pipe or an eventfd, so ``select`` takes it on
every platform (Windows included).
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable


class Wake:
    """``set``, ``clear``, ``is_set`` and ``wait(timeout)`` as ``threading.Event`` has them.

    ``set()`` from any thread writes a byte only while a thread sleeps in ``wait`` (the
    daemon's loop sets its own Wake often, and a system call each time would cost it more
    than the flag); ``wait`` reads what was written when it wakes. A byte written by someone
    else (JACK's process callback, through ``sleep``) wakes ``wait`` without setting the flag:
    the waiter then looks at its sources, as after any wake-up. One thread waits at a time
    (the daemon's loop; ports that share its Wake are read by that loop, not waited on).
    """

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._set = False
        self._sleeping = False  # a thread is in wait(): set() must write to wake it
        self._closed = False
        self._poll = None
        if hasattr(select, "poll"):  # select() refuses descriptor numbers past 1023
            self._poll = select.poll()
            self._poll.register(self._reader, select.POLLIN)

    @property
    def read_fd(self) -> int:
        """The descriptor ``wait`` sleeps on (readable once woken)."""
        return self._reader.fileno()

    @property
    def write_fd(self) -> int:
        """The descriptor a byte written to wakes ``wait``."""
        return self._writer.fileno()

    def set(self) -> None:
        if not self._set:
            self._set = True  # first the flag, then the look at _sleeping: wait() does the reverse
            if self._sleeping:
                try:
                    self._writer.send(b"\1")
                except OSError:  # full (woken already) or closed
                    pass

    def is_set(self) -> bool:
        return self._set

    def clear(self) -> None:
        self._set = False

    def wait(self, timeout: float | None = None, sleep: Callable[[float | None], object] | None = None) -> bool:
        """Sleep until set, woken, or ``timeout`` seconds pass; returns whether it is set.
        ``sleep(timeout)``: how to sleep instead of ``select`` on ``read_fd``; it must return
        once ``read_fd`` is readable, and read what was written there."""
        if self._closed:
            raise ValueError("wait() on a closed Wake")
        self._sleeping = True
        try:
            if not self._set:
                if sleep is not None:
                    sleep(timeout)
                    ready: object = False
                elif self._poll is not None:
                    ready = self._poll.poll(None if timeout is None else max(0.0, timeout) * 1000.0)
                else:  # Windows: select takes sockets
                    ready = select.select([self._reader], [], [], timeout)[0]
                if ready:
                    try:
                        self._reader.recv(256)  # what set() or the binding wrote
                    except OSError:  # nothing there (woken by the timeout), or closed
                        pass
        finally:
            self._sleeping = False
        return self._set

    def __del__(self) -> None:  # nobody can be waiting: a waiter holds a reference
        try:
            self.close()
        except Exception:  # noqa: BLE001 - half-made (socketpair failed)
            pass

    def close(self) -> None:
        """Close the socket pair (after the last wait: a ``set`` then does nothing)."""
        self._closed = True
        self._sleeping = False
        self._reader.close()
        self._writer.close()
