"""MIDI ports on JACK through our own binding (``live.midi_io._jackmidi``, a C extension).

Why not python-rtmidi's JACK API: it opens one JACK client per port, and every client's
process thread wakes at every period, used or not; and its input is a queue that Python must
poll (its only alternative, a Python callback, would run in JACK's real-time thread). A daemon
with its ports open then costs several percent of a core doing nothing, and a note waits for
the next poll before anyone looks at it.

Here a process keeps as few JACK clients as it can: every port whose name is free on a client
of the same name goes on that client (a second "magenta-live in" gets a client of its own,
"magenta-live-01", as with rtmidi), and listing ports borrows any live client. The process
callback is C: it stamps each input event with ``jack_get_time()`` (moved to
``time.perf_counter``'s clock when read) into the port's ring buffer, then wakes whoever waits:
a thread asleep in :func:`wait_for_input` (the daemon's loop), which then hands the input over
itself (:func:`drain`), or else, through one eventfd, the *input waker*, a Python thread that
hands each message to its port's ``put(stamp, data)``: the same "stamp and enqueue" a driver
callback does, from a thread that JACK never waits for. Outputs go the other way: a message is written into the port's ring
and leaves in the next process cycle, at the cycle's first frame.

:class:`JackMidiClient` offers the part of python-rtmidi's ``MidiIn`` / ``MidiOut`` interface that
``live.midi_io.ports`` and ``live.midi_io.supervisor`` use, so the port classes, the supervisor's
reconnects and JACK restarts work the same on both. ``--backend jack-rtmidi`` picks rtmidi's
JACK API instead (and is what ``--backend jack`` falls back to where this extension was not
built: no compiler or no JACK headers at install time).
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import rtmidi

try:
    from live.midi_io import _jackmidi
except ImportError:  # built without gcc or JACK's headers (libjack-jackd2-dev)
    _jackmidi = None

if TYPE_CHECKING:
    from live.midi_io.wake import Wake

logger = logging.getLogger("live.midi_io")

Put = Callable[[float, bytes], None]


def available() -> bool:
    """Whether our JACK binding was built (else ``--backend jack`` uses python-rtmidi's)."""
    return _jackmidi is not None


class JackMidiError(rtmidi.RtMidiError):
    """What python-rtmidi would raise: the callers already catch ``rtmidi.RtMidiError``."""


@dataclass(eq=False)
class _Shared:
    """One JACK client and what uses it: the port names on it, and how many JackMidiClients."""

    client: object  # _jackmidi.Client
    base: str  # the name asked for (JACK may have added a suffix)
    ports: set[str] = field(default_factory=set)
    refs: int = 0


_POOL: list[_Shared] = []
# Reentrant, as every lock here: a garbage collection while one is held may run a finalizer that
# closes a port (``_RtPort.__del__``), on the same thread.
_POOL_LOCK = threading.RLock()


def _acquire(base: str | None, port_name: str | None, fallback: str) -> _Shared:
    """A live shared client named ``base`` on which ``port_name`` is free (and a slot of its
    MAX_PORTS), now reserved there (``base`` None: any live client, for listing); a new one
    (named ``base`` or ``fallback``) when none fits."""
    if _jackmidi.reset_pending():  # libjack may have stopped serving the clients we have
        _jackmidi.close_all()
    with _POOL_LOCK:
        for shared in _POOL:
            if shared.client.dead or shared.client.closed:
                continue
            if base is None or (shared.base == base and port_name not in shared.ports
                                and len(shared.ports) < _jackmidi.MAX_PORTS):
                shared.refs += 1
                if port_name is not None:
                    shared.ports.add(port_name)
                return shared
    name = base or fallback
    resets, repairs = _jackmidi.last_reset()[0], _jackmidi.last_repair()[0]
    try:
        client = _jackmidi.Client(name)
    except _jackmidi.JackError as err:
        raise JackMidiError(f"{err} (JACK server not running?)") from err
    finally:
        count, why = _jackmidi.last_reset()
        if count != resets:
            logger.warning("closed every JACK client of ours before opening %r (%s); their ports are registered again", name, why)
        count, why = _jackmidi.last_repair()
        if count != repairs:
            logger.warning("opened JACK client %r again (%d time(s)) before using it: libjack kept a client that left "
                           "during the open (%s)", name, count - repairs, why)
    shared = _Shared(client, name, ports={port_name} if port_name is not None else set(), refs=1)
    with _POOL_LOCK:
        _POOL.append(shared)
    return shared


def _release(shared: _Shared, port_name: str | None) -> None:
    """One user fewer, and its reserved port name free again; the last user closes the client."""
    with _POOL_LOCK:
        shared.refs -= 1
        shared.ports.discard(port_name)
        last = shared.refs <= 0
        if last and shared in _POOL:
            _POOL.remove(shared)
    if last:
        shared.client.close()


def retire_clients() -> None:
    """The JACK server restarted or stopped: every client of ours is closed now, before anything
    opens a client on the server that comes back, and none made before is handed out again (the
    supervisor calls this before it registers the ports again, under ``backends.CLIENT_LOCK``,
    which every open of a client holds: a client that one thread closes must not be in libjack's
    table while another opens one)."""
    if _jackmidi is not None:
        _jackmidi.close_all()  # each closed client is dead: never handed out again


def clients_open() -> int:
    """How many JACK clients this process's ports hold now (tests, benchmarks)."""
    with _POOL_LOCK:
        return sum(1 for s in _POOL if not s.client.closed)


# The input waker: one thread for every input of the process.

@dataclass(eq=False)
class _Reader:
    """An input port the waker reads: its client and slot, where messages go, and how many
    events its ring had dropped when last read (the C counter only grows)."""

    client: object  # _jackmidi.Client
    slot: int
    put: Put
    lost: Callable[[int], None]
    dropped: int = 0


_READERS: dict[tuple[int, int], _Reader] = {}
_READERS_LOCK = threading.RLock()
_WAKER: tuple[int, threading.Thread] | None = None  # (the process it runs in, the thread)


def _register(client: object, slot: int, put: Put, lost: Callable[[int], None]) -> None:
    global _WAKER
    with _READERS_LOCK:
        _READERS[(id(client), slot)] = _Reader(client, slot, put, lost)
        if _WAKER is None or _WAKER[0] != os.getpid():  # none yet (or in a forked child)
            thread = threading.Thread(target=_wake_loop, name="jack midi input", daemon=True)
            thread.start()
            _WAKER = (os.getpid(), thread)


def _unregister(client: object, slot: int) -> None:
    """After this returns, ``put`` of that port is not called again (a drain under way ends first)."""
    with _READERS_LOCK:
        _READERS.pop((id(client), slot), None)


def drain() -> int:
    """Hand every waiting input message to its port; returns how many (the waker calls it)."""
    count = 0
    with _READERS_LOCK:
        for key, reader in list(_READERS.items()):
            if key not in _READERS:  # unregistered meanwhile (a finalizer on this thread)
                continue
            try:
                messages = reader.client.read(reader.slot)
                dropped = reader.client.dropped(reader.slot)
            except (ValueError, _jackmidi.JackError):  # closed meanwhile
                continue
            try:
                for stamp, data in messages:
                    reader.put(stamp, data)
                if dropped > reader.dropped:
                    reader.lost(dropped - reader.dropped)
                    reader.dropped = dropped
            except Exception:  # noqa: BLE001 - the other ports are read all the same
                logger.exception("handing JACK MIDI input to its port failed")
            count += len(messages)
    return count


def arrivals() -> int:
    """How many times input reached a process callback of ours (or a server shut a client down)
    so far, read from the binding without a system call: a thread busy with other work compares
    it with an earlier reading to see that input waits, and may take it itself (``drain``)
    rather than wait for the waker, which needs the GIL that thread holds."""
    return _jackmidi.arrivals() if _jackmidi is not None else 0


def wait_for_input(wake: Wake, seen: int, timeout: float | None) -> int:
    """Sleep until input reaches a process callback of ours (``arrivals()`` moves past
    ``seen``), ``wake`` is set, or ``timeout`` seconds pass (None: no limit); returns
    ``arrivals()``. While this thread sleeps here, the process callback wakes it itself, and the
    input waker stands aside: the caller then hands the input over (``drain``), one thread's
    wake-up sooner than through the waker."""
    if _jackmidi is None:
        wake.wait(timeout)
        return 0
    wake.wait(timeout, lambda t: _jackmidi.wait_for_input(wake.read_fd, wake.write_fd, seen, -1.0 if t is None else max(0.0, t)))
    return arrivals()


def _after_fork_in_child() -> None:
    """A forked child shares nothing of ours with its parent: not its JACK clients (they are the
    parent's: never used or closed here), not its eventfd, not the waker thread, not a lock that
    another thread held at the fork."""
    global _POOL_LOCK, _READERS_LOCK, _WAKER
    _POOL.clear()
    _READERS.clear()
    _POOL_LOCK, _READERS_LOCK, _WAKER = threading.RLock(), threading.RLock(), None
    _jackmidi.after_fork()


if _jackmidi is not None and hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _wake_loop() -> None:
    fd = _jackmidi.wake_fd()
    while True:
        select.select([fd], [], [])
        try:
            os.read(fd, 8)  # resets the eventfd's count
        except BlockingIOError:
            pass
        try:
            drain()
        except Exception:  # noqa: BLE001 - input must keep flowing
            logger.exception("reading JACK MIDI input failed")


class JackMidiClient:
    """A python-rtmidi-like client (``MidiIn`` for kind "input", ``MidiOut`` for "output") with
    at most one port, on a JACK client that other ports of this process may share.

    Inputs deliver through ``set_stamped_callback(put, lost)``: ``put(perf_counter seconds,
    bytes)`` from the input waker thread, ``lost(n)`` when n events did not fit the port's ring.

    ``port_name``: the port this client will open, reserved on its JACK client from now until
    ``delete``, so that clients made in the same order get the same JACK clients as before (a
    JACK restart registers a virtual port under the name it had, whether or not a connected
    port made before it could open yet). Without it, the client lists ports on any live one.
    """

    def __init__(self, kind: str, client_name: str, port_name: str | None = None) -> None:
        if _jackmidi is None:
            raise JackMidiError("our JACK binding (live.midi_io._jackmidi) was not built")
        self.kind = kind
        self.client_name = client_name
        self._reserved = port_name
        self._shared: _Shared | None = _acquire(None if port_name is None else client_name, port_name, client_name)
        self._slot: int | None = None
        self._put: Put | None = None
        self._lost: Callable[[int], None] = lambda n: None
        self._lock = threading.Lock()

    @property
    def dead(self) -> bool:
        """True once the JACK server shut this client's JACK client down (it stopped, or dropped
        the client): the port must be registered again on a fresh client."""
        shared = self._shared
        return shared is not None and shared.client.dead

    def _client(self):
        if self._shared is None:
            raise JackMidiError("this JACK MIDI client was deleted")
        if self._shared.client.dead:
            raise JackMidiError("the JACK server shut this client down")
        return self._shared.client

    # Listing and opening.

    def get_ports(self) -> list[str]:
        """Ports to connect to: others' outputs for an input, others' inputs for an output."""
        try:
            return self._client().ports(self.kind == "input")
        except _jackmidi.JackError as err:
            raise JackMidiError(str(err)) from err

    def ignore_types(self, sysex: bool = True, timing: bool = True, active_sense: bool = True) -> None:
        """Everything is passed through (rtmidi's filters are not needed here)."""

    def set_stamped_callback(self, put: Put, lost: Callable[[int], None] | None = None) -> None:
        self._put = put
        if lost is not None:
            self._lost = lost

    def open_virtual_port(self, name: str) -> None:
        self._open(name)

    def open_port(self, index: int, name: str) -> None:
        names = self.get_ports()
        if not 0 <= index < len(names):
            raise JackMidiError(f"no {self.kind} port number {index} (there are {len(names)})")
        local = self._open(name)
        try:
            if self.kind == "input":
                self._shared.client.connect(names[index], local)
            else:
                self._shared.client.connect(local, names[index])
        except _jackmidi.JackError as err:
            self.close_port()
            raise JackMidiError(str(err)) from err

    def _open(self, name: str) -> str:
        """Register port ``name``, on this client if the name is free there; its full name."""
        with self._lock:
            if self._slot is not None:
                raise JackMidiError(f"this client already holds port {name!r}")
            shared = self._shared
            if shared is None or shared.client.dead or self._reserved != name:
                fresh = _acquire(self.client_name, name, self.client_name)
                if shared is not None:
                    _release(shared, self._reserved)
                self._shared = shared = fresh
                self._reserved = name
            try:
                slot = shared.client.open_port(name, self.kind == "input")
            except _jackmidi.JackError as err:
                raise JackMidiError(str(err)) from err
            self._slot = slot
            if self.kind == "input" and self._put is not None:
                _register(shared.client, slot, self._put, self._lost)
            return shared.client.port_name(slot)

    def is_port_open(self) -> bool:
        return self._slot is not None

    def close_port(self) -> None:
        """Disconnect and unregister the port; an output's last messages go out first. Its name
        stays reserved on the JACK client (for opening it again) until ``delete``."""
        with self._lock:
            if self._slot is None or self._shared is None:
                return
            shared, slot = self._shared, self._slot
            self._slot = None
            _unregister(shared.client, slot)
            try:
                shared.client.close_port(slot)
            except (ValueError, _jackmidi.JackError):  # the client closed meanwhile
                pass

    def delete(self) -> None:
        """Close the port and let the JACK client go (closed with its last user)."""
        self.close_port()
        with self._lock:
            shared, self._shared = self._shared, None
        if shared is not None:
            _release(shared, self._reserved)

    # Output.

    def send_message(self, data: bytes | list[int]) -> bool:
        """Queue one message for the next process cycle; False if it was dropped (no port,
        a dead server, or a full ring)."""
        shared, slot = self._shared, self._slot
        if shared is None or slot is None or shared.client.dead:
            return False
        try:
            return shared.client.write(slot, bytes(data))
        except (ValueError, _jackmidi.JackError):  # closed meanwhile
            return False
