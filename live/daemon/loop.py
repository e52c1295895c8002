"""The daemon's life cycle and its loop: ports, clock, output scheduler, note ledger and the
agents wired together.

One thread (the one that calls ``run``) does all the musical work: it reads the input ports'
stamped queues and the clock's ticks (the clock's listener only queues them and wakes it), hands
them to the :class:`~live.engine.session.Session` in order, and applies commands (CC knobs, the
panel) from a queue. What the agents play goes to the output schedulers at the clock's absolute
deadlines. The clock and the schedulers run their own threads. Whatever way the daemon ends --
``stop()`` from a signal handler (SIGTERM, Ctrl-C), an error, or the end of ``run`` -- ``close()``
sends a note-off for every sounding note and All Notes Off on every channel used before the
ports close, and writes the recording.
"""

from __future__ import annotations

import faulthandler
import logging
import math
import queue
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import mido

from live.clock.base import ClockSource
from live.clock.internal import InternalClock
from live.clock.midi_in import MidiClockIn
from live.clock.midi_out import MidiClockOut
from live.config import ControlMap
from live.daemon import commands
from live.daemon.recorder import Recorder
from live.daemon.snapshot import LOG_LINES, Roll, make_snapshot
from live.engine.agent import Agent, AgentSpec, Out
from live.engine.session import Session
from live.files import check_writable
from live.midi_io import jack as jack_binding
from live.midi_io.backends import Backend, resolve_backend
from live.midi_io.ledger import NoteLedger, silencing_messages
from live.midi_io.names import CLIENT_NAME, INPUT_PORT_NAME, OUTPUT_PORT_NAME
from live.midi_io.polling import POLL_SECONDS
from live.midi_io.ports import MidiInput, MidiOutput
from live.midi_io.scheduler import OutputScheduler
from live.midi_io.stderr import LibraryOutput
from live.midi_io.supervisor import PortSupervisor
from live.midi_io.wake import Wake
from live.protocol import Command, Snapshot

logger = logging.getLogger(__name__)

CLOCK_TYPES = frozenset({"clock", "start", "stop", "continue", "songpos"})
# Channel messages a player makes, forwarded by --passthrough.
SILENCING_CONTROLS = {120: "All Sound Off", 121: "Reset All Controllers", 123: "All Notes Off"}
"""Channel-mode messages after which nothing the daemon plays may sound."""
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
        agents: the agents to play (none: the daemon only routes, as a MIDI thru box).
        controls: the CC map (None: the defaults of ``live.config``).
        record: write a multi-track MIDI file of the session here on exit (None: don't).
        seed: seeds the agents' sampling (None: different every run).
        learn: start in MIDI learn: move a control, then pick the parameter it steers.
        learn_file: where learned controls are saved (a TOML ``[controls]`` table).
        take_library_output: take file descriptor 2 from the MIDI libraries while the daemon
            runs (``live.midi_io.stderr``): their lines are counted and logged, not printed over
            the panel. For the process's owner (the command line).
        exit_on_hang: the process is the daemon's own (the command line): should a MIDI driver
            hang while its ports close, end the process (exit status 1). Otherwise (a daemon
            embedded in tests or a script) the hang is logged and the ports are left behind.
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
    agents: list[AgentSpec] = field(default_factory=list)
    controls: ControlMap | None = None
    record: str | None = None
    seed: int | None = None
    learn: bool = False
    learn_file: str | None = None
    exit_on_hang: bool = False
    take_library_output: bool = False


@dataclass
class Counters:
    """What the daemon counted since it opened (messages)."""

    notes_in: int = 0
    ignored_channel: int = 0
    ignored_system: int = 0
    clock_messages: int = 0
    passed_through: int = 0
    controls: int = 0


class _TickQueue:
    """The clock's listener: queue each tick and transport change, wake the daemon's loop."""

    def __init__(self, wake: Wake) -> None:
        self.items: deque[tuple[str, int, float]] = deque()
        self.wake = wake

    def on_tick(self, tick: int, time: float) -> None:
        self.items.append(("tick", tick, time))
        self.wake.set()

    def on_transport(self, event: str, tick: int) -> None:
        self.items.append((event, tick, 0.0))
        self.wake.set()


class _LiveSink:
    """Agents' messages to the output schedulers, at the clock's deadline for their tick."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def _scheduler(self, agent: Agent) -> OutputScheduler:
        schedulers = self.daemon.schedulers
        return schedulers[min(agent.spec.output_port, len(schedulers) - 1)]

    def play(self, agent: Agent, out: Out) -> None:
        self.daemon.roll.played(self.daemon.session.index_of(agent), out.tick, out.msg)
        scheduler = self._scheduler(agent)
        if out.now:
            scheduler.send_now(out.msg, tag=agent)
        else:
            scheduler.schedule(self.daemon.clock.time_of_tick(out.tick) + out.offset, out.msg, tag=agent)

    def cancel(self, agent: Agent, tick: int) -> None:
        self.daemon.roll.cut(self.daemon.session.index_of(agent), tick)
        self._scheduler(agent).cancel(agent, cut=True)


IDLE_WAIT_SECONDS = 0.01  # the loop's longest wait for input or a tick while a note sounds, or polling JACK (seconds)
QUIET_WAIT_SECONDS = 0.1  # the longest wait of a loop that its inputs wake, with nothing to do (seconds)
QUIET_AFTER_SECONDS = 5.0  # no input for this long and nothing sounding: the daemon is quiet
QUIET_POLL_SECONDS = 0.004  # how often a quiet daemon reads JACK's input queues (seconds; benchmarks/idle.py)
WARM_SECONDS = 0.02  # how often agents may keep their model warm (Agent.keep_warm), seconds
CLOCK_OUT_SPIN_SECONDS = 0.001  # the internal clock spins this long before a tick it sends out
SWITCH_INTERVAL_SECONDS = 0.0005  # what the daemon's process asks of sys.setswitchinterval (cli.py)
SNAPSHOT_SECONDS = 0.05  # the panel's view is refreshed 20 times a second
REPORT_SECONDS = 1.0  # how often unusual input is summed up in the log
PASSTHROUGH_DELAYS_KEPT = 4096  # the latest passthrough delays kept (benchmarks/midi_scheduling.py reads them)
PORT_CLOSE_SECONDS = 30.0
"""The longest closing the MIDI ports may take (see ``close``). jackd may wait for its graph's next
cycle up to ten client timeouts when a client deactivates and two more when it closes; a process
that exits with its clients still open stalls the server for every other client for ten timeouts
(and a dummy server under load has died of it in the suite), so the daemon waits that long first."""


class Daemon:
    """The running co-performer. ``open()``, then ``run()`` until ``stop()``, then ``close()``.

    Use it as a context manager: ``with Daemon(options) as daemon: daemon.run()``.
    ``snapshot()`` and ``send_command()`` may be called from any thread (the panel's).
    """

    def __init__(self, options: DaemonOptions) -> None:
        self.options = options
        self.counters = Counters()
        self.backend: Backend | None = None
        self.inputs: list[MidiInput] = []
        self._held: dict[Any, set[tuple[int, int]]] = {}  # input port -> (channel, note) the player holds there
        self.library_output = LibraryOutput()
        self._server_events: deque[str] = deque()
        self._last_input = 0.0  # perf_counter seconds of the last input read (see _poll_wait)  # "down" / "back" from the port supervisor's thread
        self.outputs: list[MidiOutput] = []
        self.schedulers: list[OutputScheduler] = []
        self.clock: ClockSource | None = None
        self.clock_input: MidiInput | None = None
        self.clock_output: MidiOutput | None = None
        self.supervisor: PortSupervisor | None = None
        self.session: Session | None = None
        self._loader: ThreadPoolExecutor | None = None  # loads the models a knob or key swaps in
        self.recorder = Recorder(options.record, options.beats_per_bar, self.say)
        self.roll = Roll()  # the panel's piano roll
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES)  # the panel's log pane
        self.controls = options.controls
        self.learning: int | None = None  # learn mode: the CC waiting for its parameter
        self._stop = threading.Event()
        self._stop_signal = 0  # set by stop_from_signal: a plain int, no lock
        self._wake = Wake()  # set by the ports, the clock, commands; JACK's process callback wakes it too
        self._ticks = _TickQueue(self._wake)
        self._commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._snapshot: Snapshot | None = None
        self._next_snapshot = 0.0
        self._next_warm = 0.0
        self._arrivals = 0  # jack_binding.arrivals() when the loop last took our binding's input itself
        self._polled_reads: list[MidiInput] = []  # inputs whose driver's queue the loop reads itself
        self._clock_to_start = False  # open() sets it for the internal clock; run() starts it
        self._snapshot_asked = -1e9  # when snapshot() was last called (perf_counter seconds)
        self._next_report = time.perf_counter() + REPORT_SECONDS
        self._reported: dict[str, int] = {}
        self._closed = False
        self.close_hung = False  # closing the ports hung (an embedded daemon logs it and goes on)
        self.loading: str | None = None  # what open() is doing (the panel shows it before the first snapshot)
        # --passthrough: seconds from each forwarded message's input stamp (JACK's time of its
        # arrival at our port) to its send returning: the daemon's own share of the latency.
        self.passthrough_delays: deque[float] = deque(maxlen=PASSTHROUGH_DELAYS_KEPT)
        self._channels = None if options.input_channels is None else {c - 1 for c in options.input_channels}

    # -- life cycle ---------------------------------------------------------------------------

    def open(self) -> Daemon:
        """Load the agents' models, open ports, schedulers and clock.

        Raises FileNotFoundError / ModelFileError for a model that won't load (before any port
        opens), PortNotFoundError / BackendError on bad ports.
        """
        o = self.options
        if o.record:
            check_writable(o.record, "--record")  # a take must not be lost at exit: refuse now
        if o.take_library_output:
            self.library_output.start()
        try:
            if o.agents:
                self.loading = "models: " + ", ".join(spec.model or f"the {spec.mode} default" for spec in o.agents)
            self._open_session()
            self.loading = "MIDI ports"
            self.backend = resolve_backend(o.backend)
            self.supervisor = PortSupervisor()
            for query in o.input_ports or [None]:
                port = MidiInput(query, backend=self.backend, client_name=o.client_name, port_name=INPUT_PORT_NAME, pump_thread=False)
                port.set_wakeup(self._wake)
                self.inputs.append(port)
            for query in o.output_ports or [None]:
                out = MidiOutput(query, backend=self.backend, client_name=o.client_name, port_name=OUTPUT_PORT_NAME)
                self.outputs.append(out)
                if not out.virtual:
                    # A daemon killed with SIGKILL could not end its notes: whatever still
                    # sounds on this synth from that run ends before this one plays.
                    for msg in silencing_messages():
                        out.send(msg)
                ledger = NoteLedger(out.send, o.max_note_seconds)
                ledger.observer = self._sent
                self.schedulers.append(
                    OutputScheduler(ledger, name=f"magenta-live output {out.name}", realtime_priority=o.realtime_priority)
                )
            for port in [*self.inputs, *self.outputs]:
                self.supervisor.watch(port)  # a virtual port too: a restarted JACK server needs it registered again
            self.supervisor.on_server = self._server_changed
            if self.recorder.path:
                self.recorder.start(o.bpm, self.agent_names())
            self._open_clock()
            for port in (self.clock_input, self.clock_output):
                if port is not None and port not in self.inputs:
                    self.supervisor.watch(port)
            for scheduler in self.schedulers:
                scheduler.start()
            self.supervisor.start()
        except BaseException:
            self.close()
            raise
        finally:
            self.loading = None
        for port in self.inputs:
            logger.info("listening on %s", port.name)
        for port in self.outputs:
            logger.info("playing to %s", port.name)
        if o.learn:
            self.say("MIDI learn: move a control, then pick the parameter it steers")
        return self

    def _open_session(self) -> None:
        if not self.options.agents:
            return
        self.controls = self.controls or ControlMap()
        o = self.options
        ticks_per_beat = 24
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader")
        self.session = Session(
            o.agents, _LiveSink(self), seed=o.seed, ticks_per_bar=o.beats_per_bar * ticks_per_beat,
            ticks_per_beat=ticks_per_beat, bpm=o.bpm, loader=self._loader.submit, on_say=self.log_lines.append,
        )
        for agent in self.session.agents:
            logger.info("agent %s: %s with %s on channel %d", agent.name, agent.spec.mode, agent.model.config_id, agent.channel + 1)

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
                self.clock_input = MidiInput(
                    o.clock_port, backend=self.backend, client_name=o.client_name, port_name="clock in", pump_thread=False
                )
                self.clock_input.set_wakeup(self._wake)
                self.supervisor.watch(self.clock_input)
        elif o.clock == "internal":
            # The clock's ticks only drive agents, which place every note at an absolute
            # deadline of its own, a step or more ahead, so a tick may come a fraction of a
            # millisecond late. Only clock pulses sent out are timed by the tick itself: then
            # the clock spins the last millisecond (holding the GIL; 5 % of a core at 120 BPM).
            spin = CLOCK_OUT_SPIN_SECONDS if o.clock_out else 0.0
            self.clock = InternalClock(o.bpm, o.beats_per_bar, spin=spin, realtime_priority=o.realtime_priority)
        elif o.clock == "link":
            from live.clock.link import LinkClock  # the optional extra (GPL): only when asked for

            self.clock = LinkClock(o.bpm, o.beats_per_bar, spin=CLOCK_OUT_SPIN_SECONDS if o.clock_out else 0.0,
                                   realtime_priority=o.realtime_priority)
        else:
            raise ValueError(f"--clock must be internal, midi or link, not {o.clock!r}")
        if o.clock_out:
            self.clock_output = MidiOutput(o.clock_out, backend=self.backend, client_name=o.client_name, port_name="clock out")
            self.supervisor.watch(self.clock_output)
            self.clock.add_listener(MidiClockOut(self.clock_output.send))
        if self.session is not None:
            self.clock.add_listener(self._ticks)
        # The internal clock starts when run() does: ticks that fell due before anyone handled
        # them would reach the agents late, and notes placed on them would go out late.
        self._clock_to_start = isinstance(self.clock, InternalClock)

    def stop(self) -> None:
        """Ask ``run`` to return, from any thread (not from a signal handler: see ``stop_from_signal``)."""
        self._stop.set()
        self._wake.set()

    def stop_from_signal(self, signum: int) -> None:
        """Ask ``run`` to return, from a signal handler: it only sets a flag, which the loop
        reads within QUIET_WAIT_SECONDS (and logs ``signum``). ``stop`` would take the lock of
        an Event, and Python runs a handler in the main thread between two bytecodes, perhaps
        while that same thread holds that same lock inside ``Event.wait``: the handler would
        wait for itself forever."""
        self._stop_signal = signum

    @property
    def stopping(self) -> bool:
        return self._stop_signal != 0 or self._stop.is_set()

    # -- the loop ---------------------------------------------------------------------------

    def run(self, seconds: float | None = None) -> None:
        """Read input, ticks and commands and act on them until ``stop()`` (or for ``seconds``)."""
        end = None if seconds is None else time.perf_counter() + seconds
        if self._clock_to_start:
            self._clock_to_start = False
            self.clock.start()
        reads = list(dict.fromkeys([*self.inputs, *([self.clock_input] if self.clock_input else [])]))
        polled = any(port.polled for port in reads)  # JACK: this loop reads the driver's queue itself
        self._polled_reads = [port for port in reads if port.polled]
        while not self.stopping:
            now = time.perf_counter()
            if end is not None and now >= end:
                break
            self._wake.clear()
            self._take_arrived_input(reads)
            for port in reads:
                if port.pump() or port.pending:  # (pending: read by _waiting)
                    self._last_input = now
                for stamp, msg in port.iter_stamped(limit=256):
                    self.handle(stamp, msg, port)
                if not port.up and self._held.get(port):
                    self._release_held(port, now)
            self._drain_ticks()
            self._drain_commands()
            while self._server_events:
                self._on_server(self._server_events.popleft())
            for scheduler in self.schedulers:
                scheduler.ledger.expire()
            if now >= self._next_warm and self.session is not None:
                self._next_warm = now + WARM_SECONDS
                self.session.keep_warm(self._waiting)  # gives way to input, ticks, commands
            if now >= self._next_snapshot and now - self._snapshot_asked < 1.0:  # someone is watching
                self._next_snapshot = now + SNAPSHOT_SECONDS
                self._snapshot = make_snapshot(self)
            if now >= self._next_report:
                self._next_report = now + REPORT_SECONDS
                self._report()
            if not any(port.pending for port in reads) and not self._ticks.items and not self._input_arrived():
                if not polled:  # input wakes the loop: sleep until the next chore
                    jack_binding.wait_for_input(self._wake, self._arrivals, self._chore_wait(now, end))
                elif (wait := self._poll_wait(now)) == QUIET_POLL_SECONDS:
                    self._wait_quietly(reads, min(self._next_warm, self._next_report, end or math.inf))
                else:
                    self._wake.wait(wait)
        self._take_arrived_input(reads)  # what came during the last sleep in the binding: no one else was told
        if self._stop_signal:
            logger.info("signal %d: stopping", self._stop_signal)

    def _take_arrived_input(self, reads: list[MidiInput]) -> None:
        """Move input that reached our JACK binding into the ports' queues, unless the input
        waker has done so (it waits for the GIL while this thread works; and while this thread
        sleeps in ``wait_for_input`` it is not told at all)."""
        if self._input_arrived():
            self._arrivals = jack_binding.arrivals()
            if not any(port.pending for port in reads):
                jack_binding.drain()

    def _input_arrived(self) -> bool:
        """Input reached our JACK binding since this loop last took it itself. Read from the
        binding's counter, not from the input waker thread: while this thread works (a
        rehearsal) the waker cannot hand input over before Python's switch interval makes this
        thread give up the GIL (0.5 ms); the loop then takes the input itself (``drain``)."""
        return jack_binding.arrivals() != self._arrivals

    def _waiting(self) -> bool:
        """Something waits for the loop: input, a tick, a command (``Session.keep_warm`` asks).
        Input polled from the driver's queue (python-rtmidi's JACK API) is read here too: nothing
        else would tell the loop, and a harmonizing agent's look-ahead takes milliseconds."""
        return self._wake.is_set() or self._input_arrived() or any([port.pump() for port in self._polled_reads])

    def handle(self, stamp: float, msg: mido.Message, port: Any = None) -> None:
        """Act on one input message received at ``stamp`` (perf_counter seconds)."""
        if msg.type in CLOCK_TYPES:
            if port is self.clock_input and isinstance(self.clock, MidiClockIn):
                self.counters.clock_messages += 1
                self.clock.feed(stamp, msg)
            elif msg.type == "stop":  # a DAW's Stop on a player's port: everything we play ends
                self.release_everything("MIDI Stop")
            else:
                self.counters.ignored_system += 1
            return
        if not hasattr(msg, "channel"):
            self.counters.ignored_system += 1  # sysex, active sensing, tune request...
            return
        if (msg.type == "program_change" and self.controls is not None and self.controls.channel is not None
                and msg.channel == self.controls.channel - 1):
            commands.program(self, msg)  # the control channel's Program Change picks a bundled model
            return
        if msg.type == "control_change" and msg.control in SILENCING_CONTROLS:
            # All Sound Off, Reset All Controllers, All Notes Off from the DAW or the controller:
            # the agents stop and every note the daemon holds ends; the player's keys on that
            # channel count as released; the message itself goes on to the outputs (passthrough)
            self.release_everything(SILENCING_CONTROLS[msg.control])
            held = self._held.get(port, set())
            for channel, note in sorted(k for k in held if k[0] == msg.channel):
                self.handle(stamp, mido.Message("note_off", channel=channel, note=note), port)
        elif msg.type == "control_change" and self.controls is not None and commands.control(self, msg):
            return
        if self._channels is not None and msg.channel not in self._channels:
            self.counters.ignored_channel += 1
            return
        if msg.type in ("note_on", "note_off"):
            self.counters.notes_in += 1
            if port is not None:
                held = self._held.setdefault(port, set())
                if msg.type == "note_on" and msg.velocity > 0:
                    held.add((msg.channel, msg.note))
                else:
                    held.discard((msg.channel, msg.note))
            if self.session is not None and self.clock is not None:
                tick = self.clock.tick_at(stamp)
                self.recorder.add("player", tick, msg)
                self.roll.played(-1, max(0, round(tick)), msg)
                self.session.player(max(0, round(tick)), msg)
        if self.options.passthrough and msg.type in PLAYED_TYPES:
            self.counters.passed_through += 1
            for scheduler in self.schedulers:
                scheduler.send_now(msg, tag="player")
            self.passthrough_delays.append(time.perf_counter() - stamp)

    def _server_changed(self, what: str) -> None:
        """The supervisor's news of the JACK server (its thread): handled by the loop."""
        self._server_events.append(what)
        self._wake.set()

    def _on_server(self, what: str) -> None:
        if what in ("down", "dropped"):
            for port in list(self._held):
                if self._held.get(port):
                    self._release_held(port, time.perf_counter())
            if what == "down":
                self.release_everything("the JACK server stopped")
                self.say("the JACK server stopped: waiting for it; the ports come back by themselves")
            else:
                self.release_everything("the JACK server dropped our client")
                self.say("the JACK server dropped our client (held up past its timeout): registering the ports again")
        else:
            for out in self.outputs:  # a synth that lived through it may still sound what it had
                for msg in silencing_messages():
                    out.send(msg)
            self.say("the JACK server is back: ports registered again, connections to named ports restored")

    def release_everything(self, why: str) -> None:
        """The agents stop (idle, plans dropped) and every note the daemon sounds gets its
        note-off, with All Notes Off on the channels used (``why`` is logged)."""
        if self.session is not None:
            self.session.stop(max(self.clock.tick, 0) if self.clock is not None else 0)
        for scheduler in self.schedulers:
            scheduler.cancel("answer", cut=True)
            scheduler.ledger.release_all()
        self.say(f"{why}: every note released")

    def _chore_wait(self, now: float, end: float | None) -> float:
        """How long a loop whose inputs wake it (our JACK binding, ALSA, CoreMIDI) may wait for
        them, a tick or a command (seconds): until its next chore is due -- the log's report, the
        panel's view while someone watches, a harmonizing agent's rehearsal, the end of ``run``
        -- and at most QUIET_WAIT_SECONDS (a signal's stop flag is read that often). While a note
        sounds, IDLE_WAIT_SECONDS (the ledger's longest-note guard)."""
        if any(s.ledger.sounding_count for s in self.schedulers):
            return IDLE_WAIT_SECONDS
        due = min(self._next_report, now + QUIET_WAIT_SECONDS, math.inf if end is None else end)
        if self.session is not None and self.session.warming:
            due = min(due, self._next_warm)
        if now - self._snapshot_asked < 1.0:
            due = min(due, self._next_snapshot)
        return max(0.0, due - now)

    def _poll_wait(self, now: float) -> float:
        """How long the loop waits before it reads JACK's queues again: POLL_SECONDS while the
        player plays (input in the last QUIET_AFTER_SECONDS) or a note sounds; QUIET_POLL_SECONDS
        when the daemon has been quiet that long (an idle daemon next to a DAW costs less; the
        first note after the quiet is read at most that late, its time stamp stays exact)."""
        if now - self._last_input < QUIET_AFTER_SECONDS or any(s.ledger.sounding_count for s in self.schedulers):
            return POLL_SECONDS
        return QUIET_POLL_SECONDS

    def _wait_quietly(self, reads: list, until: float) -> None:
        """A quiet daemon's wait (perf_counter seconds ``until``): read JACK's input queues every
        QUIET_POLL_SECONDS and nothing else, until input, a tick, a command, a stop or ``until``.
        On this VM a wake-up itself costs about 40 us of CPU, and the loop's other work doubled
        that (benchmarks/idle.py)."""
        while not self._wake.wait(QUIET_POLL_SECONDS) and not self._stop_signal:
            if any([port.pump() for port in reads]):  # every port read, so none waits an extra poll
                self._last_input = time.perf_counter()
                return
            if time.perf_counter() >= until:
                return

    def _release_held(self, port: Any, stamp: float) -> None:
        """A player's port vanished: the keys it held are let go (note-offs to the agents, the
        recording and the passthrough), so no call stays open and no note hangs."""
        held = sorted(self._held.pop(port, ()))
        self.say(f"{getattr(port, 'remote', None) or port.name} vanished: released {len(held)} held note(s)")
        for channel, note in held:
            self.handle(stamp, mido.Message("note_off", channel=channel, note=note), port)

    def _drain_ticks(self) -> None:
        items = self._ticks.items
        while items:
            kind, tick, _ = items.popleft()
            if kind == "tick":
                self.session.tick(tick)
            elif kind == "stop":
                self.session.stop(tick)
                self.say("transport stopped")
            elif kind in ("start", "position"):  # the song position jumps: start afresh
                self.session.stop(tick)
                self.say(f"transport {kind} at tick {tick}")
            elif kind == "continue":
                self.say("transport continue")
            elif kind == "join":
                self.say(f"MIDI clock: pulses without Start: joined the song already playing (tick {tick}); "
                         "bars count from here until a Song Position Pointer comes")
        followed = isinstance(self.clock, MidiClockIn) or getattr(self.clock, "follows_session", False)
        if self.recorder.on and followed and self.clock.locked:
            self.recorder.set_tempo(max(self.clock.tick, 0), round(self.clock.bpm, 1))
        if self.session is not None and self.clock is not None and abs(self.clock.bpm - self.session.bpm) > 0.05:
            self.session.set_tempo(self.clock.bpm)  # a followed clock (MIDI, Link) changed tempo

    @property
    def dropped(self) -> int:
        """Input messages lost in a flood: by our queues, and by the MIDI driver's own."""
        return sum(p.dropped for p in self.inputs) + self.library_output.dropped

    def _report(self) -> None:
        """One log line per kind of unusual input seen since the last report."""
        now = {
            "dropped (input queue full: a flood)": self.dropped,
            "malformed": sum(p.malformed for p in self.inputs),
            "system messages ignored (sysex, active sensing, clock on a note input)": self.counters.ignored_system,
            "messages on channels nobody hears": self.counters.ignored_channel,
        }
        for what, count in now.items():
            new = count - self._reported.get(what, 0)
            if new > 0 and "dropped" in what:
                self.say(f"input: {new} {what}", logging.WARNING)
            elif new > 0:
                logger.info("input: %d %s", new, what)
            self._reported[what] = count

    # -- commands -----------------------------------------------------------------------------

    def send_command(self, cmd: Command) -> None:
        """Queue a command for the daemon's loop (thread-safe; the panel and CC knobs use it)."""
        self._commands.put(cmd)
        self._wake.set()

    def _drain_commands(self) -> None:
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                commands.apply(self, cmd)
            except (LookupError, ValueError, OSError) as err:  # a bad model name, a file that won't load...
                self.say(f"{cmd.name}: {err}")

    # -- the panel's view ------------------------------------------------------------------------

    def agent_names(self) -> list[str]:
        """The agents' names (the recording's tracks)."""
        return [agent.name for agent in self.session.agents] if self.session is not None else []

    def _sent(self, msg: mido.Message, owner: Any) -> None:
        """The ledger's observer (an output thread): what an agent's notes really did, recorded."""
        if self.recorder.on and self.clock is not None:
            self.recorder.sent(msg, owner, self.clock.tick_at(time.perf_counter()))

    def say(self, text: str, level: int = logging.INFO) -> None:
        """A line for the panel's log pane (and the log, at ``level``)."""
        if self.session is not None:
            self.session.say(text, level)  # its log, and its on_say: the log pane
        else:
            logger.log(level, "%s", text)
            self.log_lines.append(text)

    def snapshot(self) -> Snapshot:
        """The latest view of the daemon (thread-safe; refreshed every SNAPSHOT_SECONDS)."""
        self._snapshot_asked = time.perf_counter()
        if self._snapshot is None:
            self._wake.set()  # the first one: have the loop make it now
            return Snapshot(loading=self.loading, log=tuple(self.log_lines))  # open() may still be loading
        return self._snapshot

    # -- endings --------------------------------------------------------------------------------

    def panic(self) -> None:
        """Silence everything now: agents idle; on every output a note-off for every note ever
        sounded there, All Sound Off and All Notes Off on all 16 channels."""
        if self.session is not None:
            self.session.stop(max(self.clock.tick, 0) if self.clock is not None else 0)
        for scheduler in self.schedulers:
            scheduler.cancel("answer", cut=True)
            scheduler.ledger.panic()

    def close(self) -> None:
        """Stop the clock and the schedulers, release every sounding note, write the recording,
        close the ports."""
        if self._closed:
            return
        self._closed = True
        if isinstance(self.clock, InternalClock):
            self.clock.close()
        if self.supervisor is not None:
            self.supervisor.stop()
        if self._loader is not None:
            self._loader.shutdown(wait=False, cancel_futures=True)
        for scheduler in self.schedulers:
            try:
                scheduler.stop(release=True)
            except Exception:  # noqa: BLE001 - every output must still get its note-offs
                logger.exception("stopping the output scheduler failed")
                scheduler.ledger.release_all()
        self.recorder.write()
        # Every note is off and the recording is written. A MIDI driver may hang while its
        # clients close (seen with JACK on an overloaded machine: jackd's "ClientCloseAux wait
        # error"); closing must never keep the process (or a test run) hostage.
        ports = [p for p in [*self.inputs, *self.outputs, self.clock_input, self.clock_output] if p is not None and not p.closed]
        if self.options.exit_on_hang:
            # The command line's own process: a watchdog thread that needs no GIL ends it after
            # PORT_CLOSE_SECONDS, with the stacks on stderr.
            try:
                faulthandler.dump_traceback_later(PORT_CLOSE_SECONDS, exit=True, file=sys.stderr)
            except (ValueError, OSError, AttributeError):  # no real stderr: no watchdog
                pass
            try:
                for port in ports:
                    port.close()
            finally:
                faulthandler.cancel_dump_traceback_later()
            self.library_output.stop()
            return
        closer = threading.Thread(target=lambda: [port.close() for port in ports], name="magenta-live close ports", daemon=True)
        closer.start()
        closer.join(PORT_CLOSE_SECONDS)
        if closer.is_alive():
            self.close_hung = True
            logger.error("closing the MIDI ports hung for %.0f s (the MIDI driver did not answer); left open", PORT_CLOSE_SECONDS)
        self.library_output.stop()

    def __enter__(self) -> Daemon:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
