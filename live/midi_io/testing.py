"""In-process ports for unit tests: no MIDI system, same consumer API as the real ports.

``MemoryInput`` takes (perf_counter seconds, message) pairs through ``inject`` (or raw bytes
through ``inject_bytes``, which goes through the same bounded queue and counters as
``MidiInput``'s driver callback). ``MemoryOutput`` records what was sent.
"""

from __future__ import annotations

import time

import mido
import mido.ports

from live.midi_io.ports import DEFAULT_CAPACITY, MidiInput


class MemoryInput(MidiInput):
    """A MidiInput without a driver: what is injected comes out of ``poll_stamped`` & co."""

    def __init__(self, name: str = "memory in", *, capacity: int = DEFAULT_CAPACITY) -> None:
        self._init_queue(capacity)
        mido.ports.BaseInput.__init__(self, name)

    def _open(self, **kwargs) -> None:
        self.backend = None
        self.client_name = self.port_name = self.name
        self.remote = None
        self.up = True
        self._rt = None

    def _close(self) -> None:
        self.up = False

    def inject_bytes(self, data: bytes | list[int], stamp: float | None = None) -> None:
        """Deliver raw bytes as the driver would (stamped now unless ``stamp`` is given)."""
        self._put(time.perf_counter() if stamp is None else stamp, list(data))

    def inject(self, message: mido.Message, stamp: float | None = None) -> None:
        """Deliver a mido message, stamped ``stamp`` (perf_counter seconds; default now)."""
        self.inject_bytes(message.bytes(), stamp)


class MemoryOutput(mido.ports.BaseOutput):
    """An output that records (perf_counter seconds, message) for everything sent."""

    def __init__(self, name: str = "memory out") -> None:
        self.sent_stamped: list[tuple[float, mido.Message]] = []
        self.dropped = 0
        self.up = True
        mido.ports.BaseOutput.__init__(self, name)

    @property
    def sent(self) -> int:
        return len(self.sent_stamped)

    @property
    def messages(self) -> list[mido.Message]:
        """Everything sent, in order."""
        return [m for _, m in self.sent_stamped]

    def _send(self, msg: mido.Message) -> None:
        self.sent_stamped.append((time.perf_counter(), msg))

    def send_raw(self, data: bytes | list[int]) -> bool:
        """Like MidiOutput.send_raw: record the bytes parsed as a message."""
        with self._lock:
            if self.closed or not self.up:
                self.dropped += 1
                return False
            self._send(mido.Message.from_bytes(list(data)))
            return True

    def clear(self) -> None:
        self.sent_stamped.clear()
