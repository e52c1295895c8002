"""A private JACK server for the real-time benchmarks (no pytest; tests/jack.py has the test one).

``start_jackd()`` runs ``jackd --no-realtime -S -n NAME -d dummy -r RATE -p PERIOD`` (or
``-R`` for realtime scheduling; ``-S``, synchronous mode, because in the default asynchronous
mode jackd drops a period's MIDI events whenever a client overruns a cycle) under a name
unique to this process, waits until ``jack_wait -c`` reports it running, and points
``JACK_DEFAULT_SERVER`` (and ``JACK_NO_START_SERVER``) of this process at it, so every JACK
client opened afterwards, here or in a child given ``env()``, uses it. The dummy driver needs
no sound card; without realtime priority its period timing is at the mercy of the scheduler.

    with start_jackd() as server:
        ...  # open rtmidi clients with rtapi=rtmidi.API_UNIX_JACK
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import mido

SAMPLE_RATE = 48000
PERIOD = 64  # frames: 64 / 48000 s = 1.33 ms
# jackd's --port-max. With its default a dummy server maps about 107 MB of /dev/shm, so two of
# them (the test session's and a benchmark's) overflow a container's small /dev/shm and the
# second dies of SIGBUS; at 128 ports it maps about 40 MB. Tests and benchmarks use a handful.
PORT_MAX = 128
# jackd's client timeout (-t, ms; default 500): how long the server waits for a client's
# process cycle before it drops the client. Raised so that a client thread starved on a loaded
# machine is not dropped. Its cost: when a process exits with a JACK client still open (killed,
# or never closed), the server waits for the dead client for ten times this (20 s) and every
# other client stalls meanwhile. So tests end daemons with SIGTERM (tests/jack.py stop_child)
# and every helper process closes its clients before it exits.
CLIENT_TIMEOUT_MS = 2000
# How long ``stop`` waits for jackd to exit before SIGKILL (seconds): longer than such a stall.
# A killed jackd keeps its slot in JACK's registry of 8 servers (see reclaim_dead_servers).
STOP_SECONDS = 10 * CLIENT_TIMEOUT_MS / 1000 + 5


class JackdError(RuntimeError):
    """jackd is missing or did not start."""


@dataclass
class Jackd:
    """A running private JACK server."""

    name: str
    process: subprocess.Popen
    rate: int
    period: int
    _saved_environ: dict[str, str | None]
    realtime: bool = False
    log: BinaryIO | None = None  # jackd's stdout and stderr, kept while it runs

    def log_size(self) -> int:
        """How many bytes jackd has logged so far: a mark for :meth:`log_since`."""
        if self.log is None or self.log.closed:
            return 0
        self.log.seek(0, os.SEEK_END)
        return self.log.tell()

    def log_since(self, mark: int = 0) -> str:
        """What jackd logged after ``mark`` (a :meth:`log_size`): its errors, xruns and
        dropped clients, which explain a stalled or refused JACK client."""
        if self.log is None or self.log.closed:
            return ""
        self.log.seek(mark)
        return _readable(self.log.read())

    @property
    def command(self) -> str:
        """The jackd command line, for reports."""
        mode = "-R" if self.realtime else "--no-realtime"
        return f"jackd {mode} -S -p {PORT_MAX} -t {CLIENT_TIMEOUT_MS} -d dummy -r {self.rate} -p {self.period}"

    @property
    def period_seconds(self) -> float:
        """One JACK period in seconds: MIDI events are quantized to it."""
        return self.period / self.rate

    def realtime_threads(self) -> int:
        """How many of jackd's threads run under a realtime policy (Linux /proc; 0 if unknown)."""
        count = 0
        try:
            tasks = os.listdir(f"/proc/{self.process.pid}/task")
        except OSError:
            return 0
        for tid in tasks:
            try:
                with open(f"/proc/{self.process.pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if len(fields) > 38 and fields[38] != "0":  # field 41 of stat: the scheduling policy
                count += 1
        return count

    def env(self) -> dict[str, str]:
        """The environment for a child process that must use this server."""
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def stop(self, restore_environment: bool = True) -> None:
        """Stop the server and restore the JACK variables of this process's environment (or keep
        them: see ``restart``)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.log is not None:
            self.log.close()
        if not restore_environment:
            return
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def restart(self) -> Jackd:
        """This server again, under its name, once it died (or stop it first); returns the new
        one, whose ``stop`` restores what this one's would have. This process's JACK variables
        stay on the name meanwhile: restored, they would name the server from before this one
        (say the test session's), and a daemon here would take that one for its own come back."""
        saved = self._saved_environ
        self.stop(restore_environment=False)
        fresh = start_jackd(self.period, self.rate, realtime=self.realtime, name=self.name)
        fresh._saved_environ = saved
        return fresh

    def __enter__(self) -> Jackd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def missing() -> str | None:
    """Why a JACK server cannot be started here, or None if it can."""
    for tool in ("jackd", "jack_wait"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install -y --no-install-recommends jackd2)"
    return None


MAX_SERVERS_TRIES = 10  # JACK allows 8 servers per machine; other test sessions may hold them a while


def start_jackd(period: int = PERIOD, rate: int = SAMPLE_RATE, timeout: float = 10.0, realtime: bool = False,
                name: str | None = None) -> Jackd:
    """Start a private dummy-driver JACK server and wait until it runs; JackdError if it can't.

    ``realtime``: run jackd with realtime scheduling (``-R``, needs CAP_SYS_NICE or an rtprio
    limit) instead of ``--no-realtime``. ``name``: the server's name (default: one unique to
    this process; give an old server's name to restart it). JACK runs at most 8 servers on a machine: while that
    many run (other test sessions), it tries again every second for a while."""
    for attempt in range(MAX_SERVERS_TRIES):
        reclaim_dead_servers()
        try:
            return _start_jackd(period, rate, timeout, realtime, name)
        except JackdError as err:
            if "Too many servers" not in str(err) or attempt == MAX_SERVERS_TRIES - 1:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def jackd_pids() -> list[int]:
    """The process ids of every jackd running on this machine (Linux /proc)."""
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "jackd":
                        pids.append(int(pid))
            except OSError:
                continue
    return pids


REGISTRY = "/dev/shm/jack-shm-registry"
# jack2's registry header (common/shm.h): magic, protocol, type, size, hdr_len, entry_len, then
# MAX_SERVERS slots of (pid_t pid, char name[JACK_SERVER_NAME_SIZE + 1]), padded to 4 bytes.
_REGISTRY_HEADER = struct.Struct("<IHxxiiii")
_REGISTRY_MAGIC = 0x4A41434B  # "JACK"
_MAX_SERVERS = 8
_SERVER_SLOT = 4 + 260


def slot_offset(slot: int) -> int:
    """Where server slot ``slot`` (0 to 7) starts in JACK's registry file (bytes)."""
    return _REGISTRY_HEADER.size + slot * _SERVER_SLOT


def registry_slots(registry: bytes | mmap.mmap) -> list[tuple[int, int, bytes]]:
    """(slot, pid, name) of every taken server slot in the registry's bytes."""
    slots = []
    for slot in range(_MAX_SERVERS):
        (pid,) = struct.unpack_from("<i", registry, slot_offset(slot))
        if pid:
            slots.append((slot, pid, bytes(registry[slot_offset(slot) + 4:slot_offset(slot) + _SERVER_SLOT]).split(b"\0")[0]))
    return slots


def reclaim_dead_servers() -> int:
    """Free the slots that dead servers hold in JACK's registry of 8; returns how many were freed.

    jack2 keeps its servers in /dev/shm/jack-shm-registry and frees a slot when its server exits
    cleanly, or when a server of the same name starts again. A killed jackd (the restart tests
    kill theirs) keeps its slot, and since every test server has a fresh name, a suite that kills
    8 of them meets "Too many servers already active" (the CI failure of 2026-12-07). A slot whose
    process is gone is stale whatever its name, so it is cleared here before each start. A
    registry of another layout is left alone, or removed when no jackd runs at all.
    """
    from live.midi_io.backends import process_running

    try:
        with open(REGISTRY, "r+b") as f:
            registry = mmap.mmap(f.fileno(), 0)
    except (OSError, ValueError):
        return 0
    freed = 0
    with registry:
        magic, _, _, _, hdr_len, _ = _REGISTRY_HEADER.unpack_from(registry, 0)
        if magic != _REGISTRY_MAGIC or hdr_len != slot_offset(_MAX_SERVERS):
            if not jackd_pids():
                with contextlib.suppress(OSError):
                    os.unlink(REGISTRY)
            return 0
        for slot, pid, _ in registry_slots(registry):
            if pid > 0 and not process_running(pid):
                registry[slot_offset(slot):slot_offset(slot) + _SERVER_SLOT] = bytes(_SERVER_SLOT)
                freed += 1
    return freed


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the forked child before jackd runs: SIGTERM it when the thread that started it dies.

    A test runner or benchmark that crashes (a segfault in a native library) cannot stop its
    server; without this the orphaned jackd runs on, holding a slot of JACK's eight, and the
    suites after it meet a stale server."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _start_jackd(period: int, rate: int, timeout: float, realtime: bool, name: str | None = None) -> Jackd:
    reason = missing()
    if reason:
        raise JackdError(reason)
    name = name or f"mlbench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    log = tempfile.TemporaryFile()  # jackd's output: quoted if it fails to start, and by log_since
    process = subprocess.Popen(
        ["jackd", "-R" if realtime else "--no-realtime", "-S", "-p", str(PORT_MAX), "-t", str(CLIENT_TIMEOUT_MS), "-n", name,
         "-d", "dummy", "-r", str(rate), "-p", str(period)],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    # JACK_NO_START_SERVER: otherwise jack_wait itself may start a server of that name.
    probe_env = {**os.environ, "JACK_NO_START_SERVER": "1"}
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and process.poll() is None:
        status = subprocess.run(["jack_wait", "-s", name, "-c"], capture_output=True, text=True, env=probe_env, check=False)
        if status.stdout.strip() == "running":
            saved = {key: os.environ.get(key) for key in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
            os.environ["JACK_DEFAULT_SERVER"] = name
            os.environ["JACK_NO_START_SERVER"] = "1"
            return Jackd(name, process, rate, period, saved, realtime, log)
        time.sleep(0.1)
    if process.poll() is None:
        process.kill()
        process.wait(5)
    log.seek(0)
    tail = _readable(log.read()).splitlines()[-5:]
    log.close()
    raise JackdError(
        f"jackd did not start within {timeout:.0f} s (server {name}, exit code {process.returncode}"
        f"{'; a negative code is the signal that killed it' if process.returncode < 0 else ''}); "
        f"its last output: {' | '.join(tail) or '(none)'}; /dev/shm free: {_shm_free()}"
    )


def _readable(output: bytes) -> str:
    """jackd's output without its copyright banner."""
    banner = ("Copyright", "WARRANTY", "free software", "COPYING")
    lines = output.decode(errors="replace").strip().splitlines()
    return "\n".join(line for line in lines if not any(word in line for word in banner))


def _shm_free() -> str:
    """Free space in /dev/shm, where jackd maps its segments (a full one kills it with SIGBUS)."""
    try:
        stat = os.statvfs("/dev/shm")
    except OSError:
        return "unknown"
    return f"{stat.f_bavail * stat.f_frsize / 2**20:.0f} MiB of {stat.f_blocks * stat.f_frsize / 2**20:.0f} MiB"


def jack_output(client: str, destination: str):
    """A python-rtmidi JACK output client named ``client``, connected to the input ``destination``."""
    import rtmidi

    out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=client)
    ports = out.get_ports()
    if destination not in ports:
        raise SystemExit(f"no JACK MIDI input {destination!r}; have {ports}")
    out.open_port(ports.index(destination), "out")
    time.sleep(0.2)  # let JACK finish the connection before the first message
    return out


def jack_input(client: str, source: str | None = None):
    """The daemon's own input class (``live.midi_io.ports.MidiInput``) as a JACK client named
    ``client``: a virtual input "in" (``source`` None) or connected to the output ``source``.
    Its stamps come from JACK's clock, with no Python callback in JACK's process thread (see
    ``live.midi_io.jack``): what a listener measures is the sender's timing, not its own GIL."""
    from live.midi_io.ports import MidiInput

    return MidiInput(source, backend="jack", client_name=client, port_name="in")


def collect(port, until, timeout: float) -> list[tuple[float, list[int]]]:
    """(perf_counter seconds, bytes) of every message ``port`` receives until ``until(bytes)``
    is true for one of them, or ``until`` (a threading.Event) is set, or ``timeout`` seconds."""
    got: list[tuple[float, list[int]]] = []
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        for stamp, msg in port.iter_stamped():
            got.append((stamp, msg.bytes()))
            if callable(until) and until(got[-1][1]):
                return got
        if not callable(until) and until.is_set():
            got.extend((stamp, msg.bytes()) for stamp, msg in port.iter_stamped())
            return got
        port.wait(0.05)
    return got


def spin_load(count: int, seconds: float) -> list[subprocess.Popen]:
    """``count`` processes busy-looping in Python for ``seconds``: the "loaded" condition."""
    code = f"import time\nend = time.perf_counter() + {seconds}\nwhile time.perf_counter() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]


def each_server(notes: list[str]) -> Iterator[tuple[Jackd, bool, str]]:
    """Yield (running server, realtime?, row label) for a non-realtime jackd, then a realtime one.

    A server that won't start, or a ``-R`` server that got no realtime thread, is explained in
    ``notes`` (Markdown sentences for the report); each server's command line is noted too. The
    server is stopped when the caller moves on to the next one.
    """
    for realtime in (False, True):
        try:
            server = start_jackd(realtime=realtime)
        except JackdError as err:
            notes.append(f"`jackd {'-R' if realtime else '--no-realtime'}` not measured: {err}.")
            continue
        with server:
            time.sleep(0.3)
            label = "realtime" if realtime else "no realtime"
            if realtime and not server.realtime_threads():
                notes.append("`jackd -R` got no realtime thread (not permitted here): its rows ran without realtime.")
                label = "-R, realtime refused"
            notes.append(f"{label}: `{server.command}`")
            yield server, realtime, label


class NamedJackClient:
    """A JACK client with a chosen name and one virtual port: "out" (a player) or "in" (it
    records what arrives). The supervisor tests make one go away and come back by name.

    "in" is the daemon's own input class: a Python callback in JACK's process thread would
    hold up this whole process's JACK calls (see ``live.midi_io.polling``). For a test that
    restarts the JACK server, ``RemotePlayer`` has them in a process of their own."""

    def __init__(self, client: str, kind: str) -> None:
        self.received: list[mido.Message] = []
        self.ear = jack_input(client) if kind == "in" else None
        self.rt = None
        if kind == "out":
            import rtmidi

            self.rt = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=client)
            self.rt.open_virtual_port(kind)
        self.port_name = f"{client}:{kind}"

    def messages(self) -> list[mido.Message]:
        self.received.extend(m.copy(time=0) for _, m in self.ear.iter_stamped())
        return list(self.received)

    def send(self, message: mido.Message) -> None:
        self.rt.send_message(message.bytes())

    def flood(self, bursts: int, burst: int = 1000, pause: float = 0.05) -> int:
        """Send ``bursts`` bursts of ``burst`` note-ons (channel 2), ``pause`` seconds apart, as fast
        as python-rtmidi takes them: more than a receiver's queues hold if it does not read
        meanwhile. Returns how many were sent."""
        import mido

        for _ in range(bursts):
            for i in range(burst):
                self.send(mido.Message("note_on", channel=1, note=i % 128, velocity=1 + i % 100))
            time.sleep(pause)
        return bursts * burst

    def close(self) -> None:
        if self.ear is not None:
            self.ear.close()
            self.ear = None
        if self.rt is not None:  # a deleted rtmidi client must never be touched again
            self.rt.close_port()
            self.rt.delete()
            self.rt = None


class RemotePlayer:
    """A player's keys ("NAME-keys:out") and a synth ("NAME-synth:in") in a process of their own
    (``harness.player``), as another program's ports would be: for tests that restart the JACK
    server, whose death leaves libjack's state in every process to that process to sort out (a
    daemon under test closes every client of its libjack then; see ``live.midi_io._jackmidi``).
    Started on the current server (``JACK_DEFAULT_SERVER``); ``abandon`` it when the server dies."""

    def __init__(self, name: str, timeout: float = 60.0) -> None:
        import pathlib

        self.keys_port, self.synth_port = f"{name}-keys:out", f"{name}-synth:in"
        self.received: list[mido.Message] = []
        # _die_with_parent: a test process that dies must not leave the player holding its stderr
        # pipe open (a parent reading that pipe to its end would wait for ever)
        self.process = subprocess.Popen([sys.executable, "-m", "harness.player", name], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, cwd=pathlib.Path(__file__).resolve().parents[1],
                                        preexec_fn=_die_with_parent)
        self._timeout = timeout
        self._expect("ready")

    def _expect(self, word: str) -> str:
        line = self._line()
        if line.strip() != word:
            raise RuntimeError(f"the player process said {line!r}, not {word!r} (exit {self.process.poll()})")
        return line

    def _line(self) -> str:
        import select

        ready, _, _ = select.select([self.process.stdout], [], [], self._timeout)
        if not ready:
            raise RuntimeError(f"the player process said nothing for {self._timeout} s")
        return self.process.stdout.readline()

    def _say(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def send(self, message: mido.Message) -> None:
        self._say("send " + " ".join(str(b) for b in message.bytes()))
        self._expect("ok")

    def messages(self) -> list[mido.Message]:
        """Everything the synth received so far (``received`` may be cleared between calls)."""
        import json

        import mido

        self._say("heard")
        self.received.extend(mido.Message.from_bytes(b) for b in json.loads(self._line()))
        return list(self.received)

    def abandon(self) -> None:
        """The server died: the process goes, and its dead clients with it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def close(self) -> None:
        """Close both clients on a running server, and let the process end."""
        if self.process.poll() is None:
            try:
                self._say("quit")
                self._expect("bye")
                self.process.wait(10)
            except (OSError, RuntimeError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(10)
