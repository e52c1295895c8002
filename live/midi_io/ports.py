"""MIDI ports over python-rtmidi, wrapped in mido's port classes.

- Names (``live.midi_io.names``): ``match_port`` turns ``--input-port`` / ``--output-port`` text
  into one port name, or an error.
- ``MidiInput``: the driver's callback only stamps each message with ``time.perf_counter()`` and
  puts (seconds, raw bytes) on a bounded queue; a full queue counts and drops, never blocks.
  Parsing into mido messages happens on the consumer's side. On JACK there is no Python
  callback: a pump thread, or the port's owner through ``pump()``, empties rtmidi's own queue
  into ours (``live.midi_io.polling`` says why).
- ``MidiOutput``: sends raw bytes; drops (and counts) while its remote port is gone.
- ``PortSupervisor`` (``live.midi_io.supervisor``): notices a connected port whose remote
  vanished, and reopens it with backoff when it comes back.

Ports are opened with python-rtmidi directly, not through mido's rtmidi backend: that backend
names a connecting port after the remote one, and JACK refuses local port names with ':'.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

import mido
import mido.ports
import rtmidi

from live.errors import BackendError, ConfigFileError
from live.messages import from_bytes
from live.midi_io.backends import (
    CLIENT_LOCK,
    Backend,
    delete_client,
    new_client,
    port_names,
    resolve_backend,
)
from live.midi_io.names import (
    CLIENT_NAME,
    INPUT_PORT_NAME,
    KIND_WORDS,
    OUTPUT_PORT_NAME,
    find_again,
    match_port,
)
from live.midi_io.polling import InputPump
from live.midi_io.wake import Wake

logger = logging.getLogger("live.midi_io")

DEFAULT_CAPACITY = 4096  # messages waiting in one input's queue before new ones are dropped
CONNECT_SETTLE_SECONDS = 0.05  # JACK may lose what is sent right after a connection is made

# The ports.


class _RtPort:
    """What MidiInput and MidiOutput share: one python-rtmidi client holding one port."""

    kind = ""  # "input" or "output"

    def __del__(self) -> None:
        if hasattr(self, "_lock"):  # mido's __init__ ran (it fails early on bad arguments)
            self.close()

    def _open_rt(self, query: str | None, backend: Backend | str, client_name: str, port_name: str) -> None:
        self.backend = resolve_backend(backend)
        self.client_name = client_name
        self.port_name = port_name
        self.remote: str | None = None
        self.up = False
        self._rt = None
        if query is None:
            self.backend.require_virtual_ports()
        with CLIENT_LOCK:  # from the listing client to the open port (see CLIENT_LOCK)
            # Our virtual input shows up in others' output lists, and the other way round.
            other = "output" if self.kind == "input" else "input"
            before = port_names(self.backend, other) if query is None else []
            rt = new_client(self.backend, self.kind, client_name, port_name=port_name)
            try:
                self._prepare(rt)
                if query is None:
                    rt.open_virtual_port(port_name)
                else:
                    names = rt.get_ports()
                    self.remote = match_port(query, names, self.kind)
                    rt.open_port(names.index(self.remote), port_name)
            except rtmidi.RtMidiError as err:
                delete_client(rt)
                where = f"a virtual port {port_name!r}" if query is None else f"port {self.remote!r}"
                raise BackendError(f"the {self.backend.name} MIDI backend could not open {where}: {err}") from err
            except BaseException:
                delete_client(rt)
                raise
        self._rt = rt
        if query is None:
            self.name = self._own_full_name(before, port_names(self.backend, other))
        else:
            self.name = self.remote
        self.up = True

    def _own_full_name(self, before: list[str], after: list[str]) -> str:
        """How other clients see our virtual port ("magenta-live:magenta-live in"; on JACK a
        second client of the same name is "magenta-live-01")."""
        new = [n for n in after if n not in before and self.port_name in n]
        return new[0] if len(new) == 1 else f"{self.client_name}:{self.port_name}"

    def _prepare(self, rt) -> None:
        """Set up a fresh client before its port opens (inputs: filters and callback)."""

    @property
    def virtual(self) -> bool:
        """True for a port others connect to; False when connected to an existing port."""
        return self.remote is None

    def _close_rt(self) -> None:
        rt, self._rt = self._rt, None
        self.up = False
        if rt is not None:
            delete_client(rt)

    # Used by PortSupervisor, from its own thread.

    def _go_down(self) -> None:
        with self._lock:
            if self.closed or self._rt is None:
                return
            self.up = False
            with CLIENT_LOCK:
                self._rt.close_port()

    def _reopen(self) -> bool:
        """Connect to our remote port again if it exists; True when done."""
        with self._lock:
            if self.closed or self._rt is None or self.remote is None:
                return False
            try:
                names = self._rt.get_ports()
                target = find_again(self.remote, names, self.backend)
                if target is None:
                    return False
                with CLIENT_LOCK:
                    if self._rt.is_port_open():
                        self._rt.close_port()
                    self._prepare(self._rt)
                    self._rt.open_port(names.index(target), self.port_name)
            except rtmidi.RtMidiError as err:
                logger.debug("reopening %s %r failed: %s", KIND_WORDS[self.kind], self.remote, err)
                return False
            self.remote = self.name = target
        self._after_reopen()
        return True

    def _after_reopen(self) -> None:
        self.up = True

    def _server_gone(self, free: bool = True) -> None:
        """The MIDI server died, and this port's client with it: messages are dropped and
        counted until ``_rebuild``. The dead client is let go now, while no server runs (freeing
        it once a new server of the same name runs would touch that server's shared memory);
        libjack takes about half a second for it. Called on the supervisor's thread."""
        with self._lock:
            self.up = False
            old, self._rt = self._rt, None
            self._use_client(None)
        if old is not None and not free:  # a new server already runs: keep the dead client
            _GRAVEYARD.append(old)
        elif old is not None:
            time.sleep(RETIRE_DELAY_SECONDS)  # a read of the old client already under way ends first
            with CLIENT_LOCK:
                old.delete()

    def _rebuild(self) -> bool:
        """The MIDI server is back (restarted): register this port again with a fresh client, as
        a virtual port of the same name, or connected to its remote (if that is back too; if not,
        the supervisor connects it when it comes). True when the fresh client holds the port."""
        with self._lock:
            if self.closed:
                return False
            with CLIENT_LOCK:
                try:
                    rt = new_client(self.backend, self.kind, self.client_name, tries=1, port_name=self.port_name)
                except BackendError as err:
                    logger.debug("re-registering %s %r: %s", KIND_WORDS[self.kind], self.name, err)
                    return False
                up = True
                try:
                    self._prepare(rt)
                    if self.remote is None:
                        rt.open_virtual_port(self.port_name)
                    else:
                        names = rt.get_ports()
                        target = find_again(self.remote, names, self.backend)
                        up = target is not None
                        if up:
                            rt.open_port(names.index(target), self.port_name)
                            self.remote = self.name = target
                except rtmidi.RtMidiError as err:
                    logger.debug("re-registering %s %r failed: %s", KIND_WORDS[self.kind], self.name, err)
                    delete_client(rt)
                    return False
            old, self._rt = self._rt, rt
            self._use_client(rt)
        if old is not None:  # the server came back before its death was seen: keep the dead client
            _GRAVEYARD.append(old)
        if up:
            self._after_reopen()
        return True

    def _use_client(self, rt) -> None:
        """A fresh client (or None) replaced the dead one (inputs: the JACK pump reads it)."""

    def _lost_client(self) -> bool:
        """True when this open port has no live client while its server runs: our JACK binding's
        client was shut down by the server (it dropped the client), or a re-registration failed."""
        if self.closed or not self.backend.native:
            return False
        return self._rt is None or self._rt.dead


RETIRE_DELAY_SECONDS = 0.1  # a read of a dead client already under way ends well within this
_GRAVEYARD: list = []  # dead clients that cannot be freed safely (see ``_server_gone``)


CALLBACK_DRAIN_SECONDS = 0.02


def _nothing() -> None:
    """A pump's source while its port has no client: nothing waits."""
    return None


class MidiInput(_RtPort, mido.ports.BaseInput):
    """A MIDI input: a virtual port named ``port_name`` (``port=None``) or a connection to the
    existing port that ``port`` matches (see ``match_port``).

    The driver thread (on JACK, the input pump of ``live.midi_io.polling``) only appends
    (perf_counter seconds, raw bytes) to a queue of ``capacity`` entries; when it is full the
    message is dropped and counted in ``dropped``. Read with
    ``poll_stamped`` / ``receive_stamped`` / ``iter_stamped`` for (seconds, mido.Message) pairs,
    or mido's ``poll`` / ``receive`` / ``iter_pending``, whose messages carry the same
    perf_counter seconds in ``.time``. Sysex, clock and active sensing are passed through;
    filtering is the consumer's business.
    """

    kind = "input"

    def __init__(
        self,
        port: str | None = None,
        *,
        backend: Backend | str = "auto",
        client_name: str = CLIENT_NAME,
        port_name: str = INPUT_PORT_NAME,
        capacity: int = DEFAULT_CAPACITY,
        pump_thread: bool = True,
    ) -> None:
        self._init_queue(capacity)
        self._pump_thread = pump_thread
        mido.ports.BaseInput.__init__(self, port, backend=backend, client_name=client_name, port_name=port_name)

    def _init_queue(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._pump: InputPump | None = None  # JACK only: reads rtmidi's queue
        self._queue: deque[tuple[float, list[int]]] = deque()
        self._ready: threading.Event | Wake = threading.Event()
        self.received = 0  # messages queued (driver thread)
        self.dropped = 0  # messages dropped because the queue was full (driver thread)
        self.malformed = 0  # queued bytes that were not a MIDI message (consumer side)

    def _open(self, backend: Backend | str, client_name: str, port_name: str) -> None:
        self._open_rt(self.name, backend, client_name, port_name)
        if self.backend.name == "jack" and not self.backend.native:
            self._pump = InputPump(self._rt.get_message, self._put, name=f"{self.name} input pump")
            if self._pump_thread:
                self._pump.start()

    def _use_client(self, rt) -> None:
        if self._pump is not None:
            self._pump.get_message = rt.get_message if rt is not None else _nothing

    def _prepare(self, rt) -> None:
        rt.ignore_types(sysex=False, timing=False, active_sense=False)
        if self.backend.native:  # our JACK binding's input thread stamps and hands over
            rt.set_stamped_callback(self._put, self._driver_lost)
        elif self.backend.name != "jack":
            rt.set_callback(self._on_event)

    @property
    def polled(self) -> bool:
        """True when whoever reads this port must call :meth:`pump` (JACK, ``pump_thread=False``)."""
        return self._pump is not None and not self._pump_thread

    def pump(self) -> int:
        """Move what the driver queued into this port's queue, with stamps; returns how many.

        Only JACK inputs opened with ``pump_thread=False`` need it: the daemon's loop calls it
        every millisecond itself, which spares a thread and a wake-up per message (under CPU
        load each wake-up can wait for the scheduler). Elsewhere it does nothing."""
        return self._pump.drain() if self.polled else 0

    def _close(self) -> None:
        if self._pump is not None:
            self._pump.stop()
            self._pump = None
        elif self._rt is not None and not self.backend.native:
            self._rt.cancel_callback()
            # A driver thread already inside the callback waits for the GIL; closing the client
            # while holding the GIL would wait for that thread. Sleeping lets it finish; with
            # the callback cancelled, no other follows.
            time.sleep(CALLBACK_DRAIN_SECONDS)
        self._close_rt()

    def _on_event(self, event: tuple[list[int], float], data: object = None) -> None:
        """The driver's callback: stamp and enqueue, nothing else."""
        self._put(time.perf_counter(), event[0])

    def _driver_lost(self, count: int) -> None:
        """``count`` messages did not fit the driver's own buffer (a flood): counted as dropped."""
        self.dropped += count

    def _put(self, stamp: float, data: list[int]) -> None:
        """Queue (seconds, bytes) unless the queue is full; count either way. Never blocks."""
        if len(self._queue) < self.capacity:
            self._queue.append((stamp, data))
            self.received += 1
            if not self._ready.is_set():
                self._ready.set()
        else:
            self.dropped += 1

    @property
    def pending(self) -> int:
        """Messages waiting in the queue."""
        return len(self._queue)

    def poll_stamped(self) -> tuple[float, mido.Message] | None:
        """The oldest waiting (perf_counter seconds, message), or None. Never blocks."""
        while True:
            try:
                stamp, data = self._queue.popleft()
            except IndexError:
                return None
            try:
                return stamp, from_bytes(data, time=stamp)
            except ValueError:
                self.malformed += 1

    def iter_stamped(self, limit: int | None = None) -> Iterator[tuple[float, mido.Message]]:
        """Yield waiting (seconds, message) pairs, at most ``limit`` of them."""
        count = 0
        while limit is None or count < limit:
            item = self.poll_stamped()
            if item is None:
                return
            count += 1
            yield item

    def set_wakeup(self, event: threading.Event | Wake) -> None:
        """Have the driver callback set ``event`` (shared with other inputs and the clock, so one
        thread can wait for all of them) instead of this port's own. ``wait`` then waits on it."""
        self._ready = event

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a message waits or ``timeout`` seconds pass; True if one waits."""
        self._ready.clear()
        if self._queue:
            return True
        self._ready.wait(timeout)
        return bool(self._queue)

    def receive_stamped(self, timeout: float | None = None) -> tuple[float, mido.Message] | None:
        """The next (seconds, message), waiting up to ``timeout`` seconds (None: for ever)."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        while True:
            item = self.poll_stamped()
            if item is not None:
                return item
            remaining = None if deadline is None else deadline - time.perf_counter()
            if remaining is not None and remaining <= 0:
                return None
            if self.closed:
                return None
            self.wait(0.1 if remaining is None else min(remaining, 0.1))

    def _receive(self, block: bool = True) -> mido.Message | None:
        item = self.poll_stamped()
        return None if item is None else item[1]


class MidiOutput(_RtPort, mido.ports.BaseOutput):
    """A MIDI output: a virtual port named ``port_name`` (``port=None``) or a connection to the
    existing port that ``port`` matches. While a connected remote is gone, messages are dropped
    and counted in ``dropped``; ``sent`` counts what went to the driver."""

    kind = "output"

    def __init__(
        self,
        port: str | None = None,
        *,
        backend: Backend | str = "auto",
        client_name: str = CLIENT_NAME,
        port_name: str = OUTPUT_PORT_NAME,
        settle: float = CONNECT_SETTLE_SECONDS,
    ) -> None:
        self.sent = 0
        self.dropped = 0
        self.settle = settle
        mido.ports.BaseOutput.__init__(self, port, backend=backend, client_name=client_name, port_name=port_name)

    def _open(self, backend: Backend | str, client_name: str, port_name: str) -> None:
        self._open_rt(self.name, backend, client_name, port_name)
        if not self.virtual and self.settle > 0:
            time.sleep(self.settle)

    def _close(self) -> None:
        self._close_rt()

    def _after_reopen(self) -> None:
        if self.settle > 0:
            time.sleep(self.settle)  # supervisor thread; sends are dropped until up
        self.up = True

    def _send(self, msg: mido.Message) -> None:
        self.send_raw(msg.bytes())

    def send_raw(self, data: bytes | list[int]) -> bool:
        """Send one complete MIDI message given as bytes, unchecked; False if it was dropped."""
        with self._lock:
            if not self.up or self._rt is None:
                self.dropped += 1
                return False
            if self._rt.send_message(data) is False:  # our JACK binding: its ring was full
                self.dropped += 1
                return False
            self.sent += 1
            return True


def open_input(port: str | None = None, backend: Backend | str = "auto", **kwargs) -> MidiInput:
    """A MidiInput: virtual "magenta-live in" when ``port`` is None, else connected to it."""
    return MidiInput(port, backend=backend, **kwargs)


def open_output(port: str | None = None, backend: Backend | str = "auto", **kwargs) -> MidiOutput:
    """A MidiOutput: virtual "magenta-live out" when ``port`` is None, else connected to it."""
    return MidiOutput(port, backend=backend, **kwargs)


def channel_filter(channels: Iterable[int] | None) -> Callable[[mido.Message], bool]:
    """A predicate for ``--input-channel``: channels are numbered 1-16 as on instruments; None
    lets everything through. Messages without a channel (clock, sysex) always pass."""
    if channels is None:
        return lambda message: True
    wanted = set()
    for channel in channels:
        if not 1 <= channel <= 16:
            raise ConfigFileError(f"MIDI channel {channel} is outside 1-16")
        wanted.add(channel - 1)
    return lambda message: not hasattr(message, "channel") or message.channel in wanted


