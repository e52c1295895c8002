"""A private JACK server for integration tests, and small JACK MIDI clients to play and listen.

The server runs the dummy driver (no sound card needed): ``jackd --no-realtime -S -p 128 -n NAME
-d dummy -r 48000 -p 64`` (started by harness/jackd.py), under a name unique to this test run, and ``JACK_DEFAULT_SERVER`` points
every JACK client of this process and its children at it. In CI (``CI`` set) a missing jackd
is a failure; elsewhere the integration tests are skipped with the reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid

import mido
import pytest
import rtmidi

from harness.jackd import PERIOD, SAMPLE_RATE, Jackd, JackdError, jack_input, start_jackd

JackServer = Jackd


def start_jack_server() -> Jackd:
    """Start the private dummy-driver JACK server (harness/jackd.py) and wait until it runs.

    A missing or failing jackd fails the test in CI and skips it elsewhere."""
    try:
        return start_jackd(period=PERIOD, rate=SAMPLE_RATE)
    except JackdError as err:
        if os.environ.get("CI"):
            pytest.fail(f"JACK integration tests must run in CI: {err}")
        pytest.skip(str(err))


def stop_jack_server(server: Jackd) -> None:
    server.stop()


def in_own_process(call: str, timeout: float = 180.0) -> subprocess.CompletedProcess:
    """Run the Python statement ``call`` in a fresh interpreter (from the repository root);
    returns the finished process, stdout and stderr as text.

    For a test that starts, kills and restarts a JACK server of its own. libjack (jack2) keeps
    one set of process-wide state for all of a process's clients: the first client attaches it
    to its server's shared memory, and it is let go only when the last client closes. A test
    process that still holds clients on the suite's server while it opens clients on a second
    one is something the daemon never does (it serves one server) and libjack cannot do: it
    segfaulted there. A crash prints the Python stacks (faulthandler)."""
    import sys
    from pathlib import Path

    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", call], capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parents[1])


def unique_client_name(prefix: str = "test") -> str:
    """JACK client names must be unique on a server."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Listener:
    """A JACK MIDI input client that records (perf_counter seconds, message) for every message.

    It is the daemon's own input class (``live.midi_io.ports.MidiInput``), so it has no Python
    callback in JACK's process thread (see ``live.midi_io.jack``) and its stamps come from
    JACK's clock. ``source``: an output port to connect to; None exposes a virtual input.
    """

    def __init__(self, source: str | None = None) -> None:
        self.client = unique_client_name("listen")
        self.received: list[tuple[float, mido.Message]] = []
        self._lock = threading.Lock()
        self._input = jack_input(self.client, source)
        self.port_name = self._input.name if source is None else f"{self.client}:in"

    def stamped(self, type_: str | None = None) -> list[tuple[float, mido.Message]]:
        with self._lock:
            self.received.extend((t, m.copy(time=0)) for t, m in self._input.iter_stamped())
            return [(t, m) for t, m in self.received if type_ is None or m.type == type_]

    def messages(self, type_: str | None = None) -> list[mido.Message]:
        return [m for _, m in self.stamped(type_)]

    def wait_for(self, count: int, type_: str | None = None, timeout: float = 5.0) -> list[mido.Message]:
        """Wait until ``count`` messages (of ``type_``) arrived; returns them all."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            got = self.messages(type_)
            if len(got) >= count:
                return got
            time.sleep(0.005)
        return self.messages(type_)

    def close(self) -> None:
        self.stamped()  # keep what arrived before closing
        self._input.close()


class Player:
    """A JACK MIDI output client; ``send`` takes mido messages."""

    def __init__(self, destination: str | None = None) -> None:
        self.client = unique_client_name("play")
        self._rt = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=self.client)
        if destination is None:
            self._rt.open_virtual_port("out")
        else:
            self._rt.open_port(_index(self._rt.get_ports(), destination), "out")
        self.port_name = f"{self.client}:out"

    def send(self, message: mido.Message) -> float:
        """Send now; returns the perf_counter time just before sending."""
        stamp = time.perf_counter()
        self._rt.send_message(message.bytes())
        return stamp

    def close(self) -> None:
        self._rt.close_port()
        self._rt.delete()


def _index(names: list[str], wanted: str) -> int:
    if wanted in names:
        return names.index(wanted)
    raise AssertionError(f"no JACK MIDI port {wanted!r}; have {names}")


def listen(source: str | None = None) -> Listener:
    """A listener connected to output port ``source`` (or exposing a virtual input if None)."""
    return Listener(source)


def player(destination: str | None = None) -> Player:
    """A player connected to input port ``destination`` (or exposing a virtual output if None)."""
    return Player(destination)


def port_names(kind: str) -> list[str]:
    """JACK MIDI ports one can read from (kind "output") or write to (kind "input")."""
    probe = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name=unique_client_name("probe")) if kind == "output" else rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=unique_client_name("probe"))
    try:
        return probe.get_ports()
    finally:
        probe.delete()


def wait_for_port(name_part: str, kind: str = "input", timeout: float = 10.0) -> str:
    """Wait until a JACK MIDI port containing ``name_part`` exists and return its full name.

    kind "input": a port we can write to (someone's input); "output": one we can read from.
    """
    deadline = time.perf_counter() + timeout
    names: list[str] = []
    while time.perf_counter() < deadline:
        names = port_names(kind)
        for n in names:
            if name_part in n:
                return n
        time.sleep(0.05)
    raise AssertionError(f"no JACK MIDI {kind} port containing {name_part!r}; have {names}")


_children: list = []  # daemon processes started by tests, ended after each test (conftest.py)


def track(process):
    """Remember a child process so that it never outlives its test, whatever fails first."""
    _children.append(process)
    return process


def stop_child(process, timeout: float = 35.0) -> None:
    """End a child process that may hold JACK clients: SIGTERM, and SIGKILL only if it won't go.

    Never SIGKILL a running JACK client first: jackd then waits for the dead client's process
    cycle for ten times its client timeout (20 s with ``-t 2000``), and every other client of
    the server, the next tests' included, stalls with it. A child that hangs prints its
    threads' stacks first (see :func:`ended`)."""
    if process.poll() is None:
        process.terminate()
        try:
            ended(process, timeout)
        except AssertionError as err:
            print(err)  # shown with the failing test's captured output


def ended(process, timeout: float = 35.0) -> int:
    """Wait for a child that was told to stop and return its exit code.

    If it is still running after ``timeout`` seconds, it is asked for its threads' stacks
    (SIGUSR1: the daemon registers faulthandler for it), killed, and an AssertionError carries
    the stacks and the rest of its stderr: what held it up, rather than a bare timeout."""
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    process.send_signal(signal.SIGUSR1)
    time.sleep(1.0)
    process.kill()
    try:
        _, err = process.communicate(timeout=10)
    except (subprocess.TimeoutExpired, ValueError):  # ValueError: its pipes were read elsewhere
        err = None
    raise AssertionError(f"pid {process.pid} ({' '.join(map(str, process.args[2:]))}) did not exit within "
                         f"{timeout:.0f} s of being told to stop; it printed:\n{(err or '(not captured)')[-8000:]}")


def end_tracked() -> None:
    """Stop every tracked child still running (a test failed before it could stop it)."""
    while _children:
        stop_child(_children.pop())
