"""What the MIDI libraries print: taken off the terminal, counted, and logged at a bounded rate.

python-rtmidi and libjack write to file descriptor 2 from C: RtMidi prints "message queue
limit reached" for every message it drops when its input queue is full (thousands of lines in a
flood), libjack prints its socket errors when the server goes away. On a terminal with the
panel those lines overwrite it. :class:`LibraryOutput` points descriptor 2 at a pipe while the
daemon runs; a thread reads it in large chunks, counts RtMidi's drops (``dropped``: one line
each, so the count is exact), and passes other lines to the log, at most ``LINES_PER_SECOND``
a second (the rest are counted in ``suppressed`` and summed up in one line). Python's own
``sys.stderr`` keeps writing to the terminal: it is given a descriptor of its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import threading
import time

from live.midi_io.names import printable

logger = logging.getLogger("live.midi_io")

DROP_MARK = b"message queue limit reached"
LINES_PER_SECOND = 5
PIPE_BYTES = 1 << 20  # what the pipe holds: a C writer (a driver thread) never waits on the reader


class LibraryOutput:
    """Descriptor 2 taken from C libraries while it runs (``start``/``stop``, or ``with``).

    Attributes:
        dropped: messages RtMidi said it dropped (its input queue was full).
        lines: other lines the libraries printed.
        suppressed: of those, lines not logged (over ``LINES_PER_SECOND``).
    """

    def __init__(self) -> None:
        self.dropped = 0
        self.lines = 0
        self.suppressed = 0
        self._saved: int | None = None
        self._read: int | None = None
        self._thread: threading.Thread | None = None
        self._python_stderr = None
        self._window = (0.0, 0)

    def start(self) -> LibraryOutput:
        """Take descriptor 2; does nothing where there is none (an embedded, captured stderr)."""
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            return self
        read, write = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(write, 1031, PIPE_BYTES)  # F_SETPIPE_SZ (Linux): room for a flood's lines
        os.dup2(write, 2)
        os.close(write)
        self._saved, self._read = saved, read
        # Python's writes (logging, tracebacks) keep reaching the terminal, on a descriptor of their own.
        self._python_stderr = sys.stderr
        mine = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="backslashreplace")
        self._swap_stderr(self._python_stderr, mine)
        self._thread = threading.Thread(target=self._run, name="midi library output", daemon=True)
        self._thread.start()
        return self

    def _swap_stderr(self, old, new) -> None:
        sys.stderr = new
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(new)

    def stop(self) -> None:
        """Give descriptor 2 back and log what was counted."""
        if self._saved is None:
            return
        os.dup2(self._saved, 2)  # closes the pipe's last write end: the reader sees its end
        os.close(self._saved)
        self._saved = None
        if self._thread is not None:
            self._thread.join(2.0)
        mine = sys.stderr
        self._swap_stderr(mine, self._python_stderr)
        with contextlib.suppress(Exception):
            mine.close()
        if self.dropped or self.suppressed:
            logger.warning("the MIDI driver dropped %d message(s) (its input queue was full); %d library line(s) not shown",
                           self.dropped, self.suppressed)

    def _run(self) -> None:
        rest = b""
        while True:
            try:
                chunk = os.read(self._read, 65536)
            except OSError:
                break
            if not chunk:
                break
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                self._line(line)
        if rest:
            self._line(rest)
        os.close(self._read)

    def _line(self, line: bytes) -> None:
        if DROP_MARK in line:
            self.dropped += 1
            return
        text = printable(line.decode(errors="replace").strip())
        if not text:
            return
        self.lines += 1
        now = time.perf_counter()
        start, count = self._window
        if now - start >= 1.0:
            if count > LINES_PER_SECOND:
                logger.warning("%d more line(s) from the MIDI libraries", count - LINES_PER_SECOND)
            start, count = now, 0
        count += 1
        self._window = (start, count)
        if count <= LINES_PER_SECOND:
            logger.warning("MIDI library: %s", text)
        else:
            self.suppressed += 1

    def __enter__(self) -> LibraryOutput:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
