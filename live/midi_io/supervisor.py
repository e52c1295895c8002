"""Watching connected ports: a port whose remote vanished is closed, said, and reopened with
backoff when it comes back."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import rtmidi

from live.errors import BackendError
from live.midi_io import jack as jack_binding
from live.midi_io.backends import CLIENT_LOCK, Backend, delete_client, jack_server_identity, new_client
from live.midi_io.names import CLIENT_NAME, KIND_WORDS, find_again
from live.midi_io.ports import MidiInput, MidiOutput

logger = logging.getLogger("live.midi_io")


@dataclass
class _Watch:
    backoff: float
    due: float = 0.0
    since: float | None = None  # when the port was first found down (perf_counter seconds)


class PortSupervisor:
    """Watches ports from its own thread; reopens those whose remote went away, and registers
    every port again when the JACK server restarts.

    Every ``interval`` seconds it lists the ports; a connected port whose remote is missing is
    closed and logged ("... vanished"); it is tried again every ``fast_retry`` seconds for its
    first ``fast_for`` seconds down (a remote back at once, as after a JACK restart, is found
    within ``fast_retry``), then after ``min_backoff`` seconds, the wait doubling up to
    ``max_backoff``, and logged again when it is back. A remote that goes and comes back within
    one interval is not noticed.

    On JACK it also watches the server itself (``jack_server_identity``: no client needed).
    When the server stops, every port (virtual ones too) is down and ``on_server`` is called
    with "down"; when a server of the same name runs again, every port is registered again with
    a fresh client (virtual ports under their names, connected ones to their remotes) and
    ``on_server`` is called with "back". A server that runs on but shut our binding's client
    down (it drops a client whose cycle was held up past its timeout) is told with "dropped",
    then "back" once those ports are registered again. ``on_server`` runs on the supervisor's
    thread.
    """

    def __init__(
        self,
        ports: Iterable[MidiInput | MidiOutput] = (),
        *,
        interval: float = 0.5,
        min_backoff: float = 0.25,
        max_backoff: float = 5.0,
        fast_retry: float = 0.1,
        fast_for: float = 2.0,
    ) -> None:
        self.interval = interval
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.fast_retry = fast_retry
        self.fast_for = fast_for
        self._watched: dict[MidiInput | MidiOutput, _Watch] = {}
        self._listers: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_server: Callable[[str], None] | None = None
        self._server: tuple[int, int] | None = None  # the JACK server's identity while it runs
        self._server_down = False
        self._rebuilt: set[MidiInput | MidiOutput] = set()  # registered again on the new server
        self.server_restarts = 0
        for port in ports:
            self.watch(port)

    def watch(self, port: MidiInput | MidiOutput) -> None:
        with self._lock:
            self._watched[port] = _Watch(self.min_backoff)

    def unwatch(self, port: MidiInput | MidiOutput) -> None:
        with self._lock:
            self._watched.pop(port, None)

    def _names(self, backend: Backend, kind: str) -> list[str] | None:
        key = (backend.name, kind)
        try:
            lister = self._listers.get(key)
            if lister is None:
                # once: the supervisor's own passes are its retries (with backoff)
                lister = self._listers[key] = new_client(backend, kind, f"{CLIENT_NAME}-watch", tries=1)
            return lister.get_ports()
        except (BackendError, rtmidi.RtMidiError) as err:
            logger.warning("cannot list %s MIDI %s ports: %s", backend.name, kind, err)
            return None

    def _check_server(self, ports: list[MidiInput | MidiOutput]) -> bool:
        """Follow the JACK server's life; False while it is down (nothing else to check)."""
        if not any(p.backend.name == "jack" for p in ports):
            return True
        identity = jack_server_identity()
        if self._server is None and not self._server_down:
            self._server = identity  # the server our ports were opened on
            return True
        if identity is not None and identity == self._server:
            lost = [p for p in ports if p._lost_client()]
            if lost:  # the server runs on but dropped our client (a cycle held up past its timeout)
                self._register_again(lost)
            return True
        if not self._server_down:  # it stopped, or restarted between two passes
            self._server_down = True
            with CLIENT_LOCK:
                jack_binding.retire_clients()  # our binding's clients from before are closed, never reused
            free = identity is None  # dead clients are freed only while no server runs
            for port in ports:
                port._server_gone(free)
            for lister in self._listers.values():
                if free:
                    delete_client(lister)
            self._listers.clear()
            logger.warning("the JACK server stopped; waiting for it to come back")
            self._tell("down")
        if identity is None:
            return False
        # A server of the same name runs: register every port on it again (each once).
        pending = [p for p in ports if p.backend.name == "jack" and p not in self._rebuilt and not p._rebuild()]
        self._rebuilt.update(p for p in ports if p not in pending)
        if pending:
            logger.info("the JACK server is back; %d port(s) not registered yet, trying again", len(pending))
            return False
        self._server, self._server_down = identity, False
        self._rebuilt.clear()
        self.server_restarts += 1
        logger.warning("the JACK server is back: %d port(s) registered again", len(ports))
        self._tell("back")
        return True

    def _register_again(self, lost: list[MidiInput | MidiOutput]) -> None:
        """Ports whose client the running server shut down: their notes are released and they are
        registered again on a fresh client (virtual ports under their names, connected ones to
        their remotes), as after a restart; a port that fails is tried again next pass."""
        logger.warning("the JACK server dropped the client of %d of our port(s); registering them again", len(lost))
        self._tell("dropped")
        for port in lost:
            if port._rt is not None:
                port._server_gone(free=False)  # the dead client is kept: libjack frees it itself
        back = [port for port in lost if port._rebuild()]
        if back:
            logger.warning("%d port(s) registered again", len(back))
            self._tell("back")

    def _tell(self, what: str) -> None:
        if self.on_server is not None:
            try:
                self.on_server(what)
            except Exception:  # noqa: BLE001 - the supervisor keeps watching
                logger.exception("the JACK server %s handler failed", what)

    def check(self, now: float | None = None) -> float:
        """One pass over the watched ports; returns seconds until the next pass is due."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            watched = list(self._watched.items())
        if not self._check_server([p for p, _ in watched if not p.closed]):
            return self.min_backoff
        listed: dict[tuple[str, str], list[str] | None] = {}
        next_due = now + self.interval
        for port, watch in watched:
            if port.closed:
                self.unwatch(port)
                continue
            if port.virtual:
                continue
            what = KIND_WORDS[port.kind]
            if port.up:
                key = (port.backend.name, port.kind)
                if key not in listed:
                    listed[key] = self._names(port.backend, port.kind)
                names = listed[key]
                if names is not None and find_again(port.remote, names, port.backend) is None:
                    port._go_down()
                    logger.warning("%s %r vanished; will reopen it when it comes back", what, port.remote)
                    watch.backoff, watch.since = self.fast_retry, now
                    watch.due = now + watch.backoff
            elif now >= watch.due:
                if watch.since is None:  # down since a restart of the server, or since it opened
                    watch.since = now
                if port._reopen():
                    logger.info("%s %r is back", what, port.remote)
                    watch.backoff, watch.since = self.min_backoff, None
                else:
                    if now - watch.since < self.fast_for:
                        watch.backoff = self.fast_retry
                    else:
                        watch.backoff = min(max(watch.backoff * 2, self.min_backoff), self.max_backoff)
                    watch.due = now + watch.backoff
            if not port.up:
                next_due = min(next_due, watch.due)
        return max(0.0, next_due - now)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self.check()
            except Exception:  # the daemon keeps running; say what went wrong
                logger.exception("MIDI port supervisor pass failed")
                delay = self.interval
            self._stop.wait(delay)

    def start(self) -> PortSupervisor:
        """Start the watching thread (a daemon thread)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="midi-port-supervisor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and drop the listing clients."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for lister in self._listers.values():
            delete_client(lister)
        self._listers.clear()

    def __enter__(self) -> PortSupervisor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
