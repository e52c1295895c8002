"""The daemon: ports, clock, output scheduler and note ledger wired together.

One thread (the caller's, normally the main thread) reads the input ports' stamped queues and
acts on each message; the clock and the output scheduler run their own threads. Whatever way
the daemon ends -- ``stop()`` from a signal handler (SIGTERM, Ctrl-C), an error, or the end of
``run`` -- ``close()`` sends a note-off for every sounding note and All Notes Off on every channel
used, before the ports close.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import mido

from live.clock.base import ClockSource
from live.clock.internal import InternalClock
from live.clock.midi_in import MidiClockIn
from live.clock.midi_out import MidiClockOut
from live.midi_io.backends import Backend, resolve_backend
from live.midi_io.ledger import NoteLedger
from live.midi_io.ports import (
    CLIENT_NAME,
    INPUT_PORT_NAME,
    OUTPUT_PORT_NAME,
    MidiInput,
    MidiOutput,
    PortSupervisor,
)
from live.midi_io.scheduler import OutputScheduler

logger = logging.getLogger(__name__)

CLOCK_TYPES = frozenset({"clock", "start", "stop", "continue", "songpos"})
# Channel messages a player makes, forwarded by --passthrough.
PLAYED_TYPES = frozenset({"note_on", "note_off", "control_change", "pitchwheel", "aftertouch", "polytouch", "program_change"})


@dataclass
class DaemonOptions:
    """What the command line and the TOML file choose. Channels are 1..16, as musicians count.

    Attributes:
        backend: auto | alsa | jack | coremidi | winmm.
        input_ports: existing ports to listen to; empty: one virtual port "magenta-live in".
        output_ports: existing ports to play to; empty: one virtual port "magenta-live out".
        input_channels: channels the models hear (None: all).
        passthrough: forward the player's notes to the outputs.
        clock: "internal" or "midi" (follow 0xF8 from ``clock_port``).
        clock_port: the port MIDI clock comes from (``clock == "midi"``); may be an input port.
        clock_out: a port to send MIDI clock to, making the daemon the master.
        bpm: tempo of the internal clock, beats per minute.
        beats_per_bar: the time signature's numerator (the beat is a quarter note).
        max_note_seconds: longest a note may sound before the ledger ends it (seconds).
        client_name: the MIDI client name the ports are opened under.
        realtime_priority: SCHED_FIFO priority (1-99) asked for the clock and output threads;
            None keeps normal scheduling. Refused (no rtprio limit) is logged, not fatal.
    """

    backend: str = "auto"
    input_ports: list[str] = field(default_factory=list)
    output_ports: list[str] = field(default_factory=list)
    input_channels: list[int] | None = None
    passthrough: bool = False
    clock: str = "internal"
    clock_port: str | None = None
    clock_out: str | None = None
    bpm: float = 120.0
    beats_per_bar: int = 4
    max_note_seconds: float = 8.0
    client_name: str = CLIENT_NAME
    realtime_priority: int | None = None


@dataclass
class Counters:
    """What the daemon counted since it opened (messages)."""

    notes_in: int = 0
    ignored_channel: int = 0
    ignored_system: int = 0
    clock_messages: int = 0
    passed_through: int = 0


class Daemon:
    """The running co-performer. ``open()``, then ``run()`` until ``stop()``, then ``close()``.

    Use it as a context manager: ``with Daemon(options) as daemon: daemon.run()``.
    """

    def __init__(self, options: DaemonOptions) -> None:
        self.options = options
        self.counters = Counters()
        self.backend: Backend | None = None
        self.inputs: list[MidiInput] = []
        self.outputs: list[MidiOutput] = []
        self.schedulers: list[OutputScheduler] = []
        self.clock: ClockSource | None = None
        self.clock_input: MidiInput | None = None
        self.clock_output: MidiOutput | None = None
        self.supervisor: PortSupervisor | None = None
        self._stop = threading.Event()
        self._closed = False
        self._channels = None if options.input_channels is None else {c - 1 for c in options.input_channels}

    # -- life cycle ---------------------------------------------------------------------------

    def open(self) -> "Daemon":
        """Open ports, scheduler and clock. Raises PortNotFoundError / BackendError on bad ports."""
        o = self.options
        try:
            self.backend = resolve_backend(o.backend)
            self.supervisor = PortSupervisor()
            for query in o.input_ports or [None]:
                self.inputs.append(MidiInput(query, backend=self.backend, client_name=o.client_name, port_name=INPUT_PORT_NAME))
            for query in o.output_ports or [None]:
                out = MidiOutput(query, backend=self.backend, client_name=o.client_name, port_name=OUTPUT_PORT_NAME)
                self.outputs.append(out)
                ledger = NoteLedger(out.send, o.max_note_seconds)
                self.schedulers.append(
                    OutputScheduler(ledger, name=f"magenta-live output {out.name}", realtime_priority=o.realtime_priority)
                )
            for port in [*self.inputs, *self.outputs]:
                if not port.virtual:
                    self.supervisor.watch(port)
            self._open_clock()
            for scheduler in self.schedulers:
                scheduler.start()
            self.supervisor.start()
        except BaseException:
            self.close()
            raise
        for port in self.inputs:
            logger.info("listening on %s", port.name)
        for port in self.outputs:
            logger.info("playing to %s", port.name)
        return self

    def _open_clock(self) -> None:
        o = self.options
        if o.clock == "midi":
            if not o.clock_port:
                raise ValueError("--clock midi needs --clock-port NAME")
            self.clock = MidiClockIn(o.beats_per_bar, nominal_bpm=o.bpm)
            same = [p for p in self.inputs if not p.virtual and o.clock_port in (p.name, p.remote)]
            if same:
                self.clock_input = same[0]
            else:
                self.clock_input = MidiInput(o.clock_port, backend=self.backend, client_name=o.client_name, port_name="clock in")
                self.supervisor.watch(self.clock_input)
        elif o.clock == "internal":
            self.clock = InternalClock(o.bpm, o.beats_per_bar, realtime_priority=o.realtime_priority)
        else:
            raise ValueError(f"--clock must be internal or midi, not {o.clock!r}")
        if o.clock_out:
            self.clock_output = MidiOutput(o.clock_out, backend=self.backend, client_name=o.client_name, port_name="clock out")
            self.supervisor.watch(self.clock_output)
            self.clock.add_listener(MidiClockOut(self.clock_output.send))
        if isinstance(self.clock, InternalClock):
            self.clock.start()

    def stop(self) -> None:
        """Ask ``run`` to return. Safe from a signal handler: it only sets a flag."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, seconds: float | None = None) -> None:
        """Read and act on input until ``stop()`` (or for ``seconds``)."""
        end = None if seconds is None else time.perf_counter() + seconds
        reads = list(dict.fromkeys([*self.inputs, *([self.clock_input] if self.clock_input else [])]))
        first = reads[0]
        while not self._stop.is_set():
            if end is not None and time.perf_counter() >= end:
                break
            for port in reads:
                for stamp, msg in port.iter_stamped(limit=256):
                    self.handle(stamp, msg, port)
            for scheduler in self.schedulers:
                scheduler.ledger.expire()
            if len(reads) == 1:
                first.wait(0.01)
            else:
                self._stop.wait(0.001)

    def handle(self, stamp: float, msg: mido.Message, port: Any = None) -> None:
        """Act on one input message received at ``stamp`` (perf_counter seconds)."""
        if msg.type in CLOCK_TYPES:
            if port is self.clock_input and isinstance(self.clock, MidiClockIn):
                self.counters.clock_messages += 1
                self.clock.feed(stamp, msg)
            else:
                self.counters.ignored_system += 1
            return
        if not hasattr(msg, "channel"):
            self.counters.ignored_system += 1  # sysex, active sensing, tune request...
            return
        if self._channels is not None and msg.channel not in self._channels:
            self.counters.ignored_channel += 1
            return
        if msg.type in ("note_on", "note_off"):
            self.counters.notes_in += 1
        if self.options.passthrough and msg.type in PLAYED_TYPES:
            self.counters.passed_through += 1
            for scheduler in self.schedulers:
                scheduler.send_now(msg, tag="player")

    def panic(self) -> None:
        """Silence everything now: note-offs for sounding notes, All Notes Off on used channels."""
        for scheduler in self.schedulers:
            scheduler.cancel("answer", cut=True)
            scheduler.ledger.release_all()

    def close(self) -> None:
        """Stop the clock and the schedulers, release every sounding note, close the ports."""
        if self._closed:
            return
        self._closed = True
        if isinstance(self.clock, InternalClock):
            self.clock.close()
        if self.supervisor is not None:
            self.supervisor.stop()
        for scheduler in self.schedulers:
            try:
                scheduler.stop(release=True)
            except Exception:  # noqa: BLE001 - every output must still get its note-offs
                logger.exception("stopping the output scheduler failed")
                scheduler.ledger.release_all()
        for port in [*self.inputs, *self.outputs, self.clock_input, self.clock_output]:
            if port is not None and not port.closed:
                port.close()

    def __enter__(self) -> "Daemon":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
