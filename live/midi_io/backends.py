"""MIDI backends: which python-rtmidi API to use, and the ports it offers.

``--backend auto|alsa|jack|jack-rtmidi|coremidi|winmm``. ``auto`` takes the platform's own MIDI
system (ALSA on Linux, CoreMIDI on macOS, Windows MM on Windows) and falls back to JACK when that
one is not usable but a JACK server runs -- as in a container without ``/dev/snd``, like our CI.

On JACK, ports go through our own binding (``live.midi_io.jack``: few JACK clients, input that
wakes its reader instead of being polled) where it was built; ``jack-rtmidi`` asks for
python-rtmidi's JACK API instead (one client per port, polled input), which is also what ``jack``
falls back to without the binding.

Looking for a JACK server never starts one: python-rtmidi opens its JACK clients with
``JackNoStartServer``, so a missing server is an error we catch, not a new ``jackd``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import rtmidi

from live.errors import BackendError
from live.midi_io import jack as jack_binding
from live.midi_io.polling import QUEUE_SIZE

BACKEND_CHOICES = ("auto", "alsa", "jack", "jack-rtmidi", "coremidi", "winmm")

API_IDS: dict[str, int] = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}

ALSA_SEQUENCER_DEVICE = "/dev/snd/seq"
PROBE_CLIENT_NAME = "magenta-live-probe"
# A JACK server refuses a new client while its cycle is held up (a client that stopped
# answering, a machine overloaded for seconds: "Driver is not running", and rtmidi reports
# "JACK server not running?"). Such a refusal passes, so a client is asked for this many times,
# this far apart (seconds), before the refusal is an error.
CLIENT_TRIES = 3

# libjack keeps state that all of a process's clients share (jack2 counts its clients and
# frees that state when the last one closes): a client opening in one thread while another
# closes in a second thread can have it freed under it. That segfaulted a test process when
# the supervisor registered ports again on a restarted server while a port closed. In this
# process every client is made, opens or closes its port, and is deleted under this lock
# (reentrant: opening a port makes a listing client first).
CLIENT_LOCK = threading.RLock()
CLIENT_RETRY_SECONDS = 1.0

logger = logging.getLogger("live.midi_io")

WINDOWS_VIRTUAL_PORTS_MESSAGE = (
    "Windows MIDI (WinMM) cannot create virtual ports. Create a loopback port with loopMIDI "
    "(https://www.tobias-erichsen.de/software/loopmidi.html) or Windows MIDI Services, then "
    "connect to it with --input-port / --output-port."
)


@dataclass(frozen=True)
class Backend:
    """A resolved MIDI backend: its name (``"jack"``) and python-rtmidi API id; ``native``: JACK
    through our own binding (``live.midi_io.jack``) rather than python-rtmidi's."""

    name: str
    api: int
    native: bool = False

    @property
    def virtual_ports(self) -> bool:
        """Whether this backend can create ports that other programs connect to."""
        return self.name != "winmm"

    def require_virtual_ports(self) -> None:
        """Raise BackendError (naming loopMIDI) where virtual ports do not exist."""
        if not self.virtual_ports:
            raise BackendError(WINDOWS_VIRTUAL_PORTS_MESSAGE)


# Platform facts. Module-level functions so that tests can replace them.


def current_platform() -> str:
    """``sys.platform``: "linux", "darwin", "win32", ..."""
    return sys.platform


def compiled_backends() -> list[str]:
    """Backend names whose API this python-rtmidi was built with."""
    compiled = set(rtmidi.get_compiled_api())
    return [name for name, api in API_IDS.items() if api in compiled]


def alsa_sequencer_present() -> bool:
    """Whether the ALSA sequencer device exists (missing in most containers)."""
    return os.path.exists(ALSA_SEQUENCER_DEVICE)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for a moment: libjack prints its failed attempts there."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded, closed): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def jack_server_running() -> bool:
    """Whether a JACK server (``$JACK_DEFAULT_SERVER`` or "default") runs; never starts one.

    A server whose socket is there and answers but refuses the probe's client is asked again
    (CLIENT_TRIES times): a server just started, or one whose cycle is held up for a moment,
    refuses clients for a while ("JACK server not running?") and is running all the same."""
    if "jack" not in compiled_backends():
        return False
    tries = CLIENT_TRIES if jack_server_identity() is not None else 1
    with _quiet_stderr():
        try:
            probe = new_client(Backend("jack", rtmidi.API_UNIX_JACK), "input", PROBE_CLIENT_NAME, tries=tries)
        except BackendError:
            return False
        delete_client(probe)
    return True


def jack_server_identity() -> tuple[int, int] | None:
    """Who the JACK server (``$JACK_DEFAULT_SERVER`` or "default") is now, cheaply, without
    a client: (its socket's inode, the jackd process id or 0 if it is not visible here); None
    when no server of that name runs. A server that restarted has another identity: its clients
    from before are dead, and every port must be registered again.

    Reads ``/dev/shm/jack_NAME_UID_0`` (jackd2's request socket) and ``/proc``; on a system
    without them it says nothing useful, and the supervisor only watches remote ports."""
    name = os.environ.get("JACK_DEFAULT_SERVER") or "default"
    path = f"/dev/shm/jack_{name}_{os.getuid()}_0"
    try:
        inode = os.stat(path).st_ino
    except (OSError, AttributeError):
        return None
    cached = _JACKD_PIDS.get(name)
    if cached and process_running(cached):
        pid: int | None = cached
    else:
        pid = _JACKD_PIDS[name] = _jackd_pid(name)
    if pid is None:  # the socket of a jackd that died (killed: it could not remove it)
        return None
    if pid == 0:  # no jackd in sight: is one behind the socket?
        return (inode, 0) if _socket_answers(path) else None
    if _ANSWERED.get(name) != (inode, pid):
        # A jackd just started under a killed one's name: until it has replaced the socket, the
        # file is the dead server's. Taking (old inode, new pid) for the server would read as a
        # second restart once the new socket appears (a spurious "stopped" that dropped every port).
        if not _socket_answers(path):
            return None
        _ANSWERED[name] = (inode, pid)
    return inode, pid


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed jackd its parent has not
    reaped yet still has a /proc entry; Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def _socket_answers(path: str) -> bool:
    """Whether a process accepts connections on the Unix socket ``path`` (a killed jackd
    leaves its socket file behind, and connecting to it is refused)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


_JACKD_PIDS: dict[str, int | None] = {}  # server name -> the jackd last found serving it
_ANSWERED: dict[str, tuple[int, int]] = {}  # server name -> the last identity whose socket answered


def _jackd_pid(name: str) -> int | None:
    """The process id of the jackd serving ``name`` (0: jackd is not visible from here)."""
    seen_any = False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for pid in entries:
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if not args or not os.path.basename(args[0].decode(errors="replace")).startswith("jackd"):
            continue
        seen_any = True
        words = [a.decode(errors="replace") for a in args]
        served = next((words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-n", "--name")), "default")
        if served == name:
            return int(pid)
    return None if seen_any else 0


# Resolution.


def _explain_unusable(name: str) -> str | None:
    """Why backend ``name`` cannot be used here, or None when it can."""
    if name not in compiled_backends():
        return f"{name}: python-rtmidi was built without it (built with: {', '.join(compiled_backends()) or 'none'})"
    if name == "alsa" and not alsa_sequencer_present():
        return f"alsa: {ALSA_SEQUENCER_DEVICE} does not exist (snd-seq module not loaded, or a container without the sound devices)"
    if name == "jack" and not jack_server_running():
        server = os.environ.get("JACK_DEFAULT_SERVER", "default")
        return f"jack: no JACK server named {server!r} is running (start one, e.g. jackd -d dummy, or pick another backend)"
    return None


def _backend(name: str) -> Backend:
    """The Backend for ``name``: JACK through our own binding where it was built."""
    return Backend(name, API_IDS[name], native=name == "jack" and jack_binding.available())


def _native_backend(platform: str) -> str | None:
    if platform.startswith("linux"):
        return "alsa"
    if platform == "darwin":
        return "coremidi"
    if platform in ("win32", "cygwin"):
        return "winmm"
    return None


def resolve_backend(choice: str | Backend = "auto") -> Backend:
    """Turn ``--backend`` into a usable Backend, or raise BackendError listing what was tried.

    ``auto``: the platform's own backend if usable, else JACK if a server runs.
    """
    if isinstance(choice, Backend):
        return choice
    name = choice.strip().lower()
    if name not in BACKEND_CHOICES:
        raise BackendError(f"unknown MIDI backend {choice!r}; choose one of {', '.join(BACKEND_CHOICES)}")
    if name == "jack-rtmidi":
        problem = _explain_unusable("jack")
        if problem is not None:
            raise BackendError(f"MIDI backend {name} is not usable here: {problem}")
        return Backend("jack", API_IDS["jack"])
    if name != "auto":
        problem = _explain_unusable(name)
        if problem is not None:
            raise BackendError(f"MIDI backend {name} is not usable here: {problem}")
        return _backend(name)
    candidates = []
    native = _native_backend(current_platform())
    if native is not None:
        candidates.append(native)
    if "jack" not in candidates:
        candidates.append("jack")
    tried = []
    for candidate in candidates:
        problem = _explain_unusable(candidate)
        if problem is None:
            return _backend(candidate)
        tried.append(problem)
    raise BackendError(
        f"no usable MIDI backend on {current_platform()}; tried:\n  " + "\n  ".join(tried)
    )


# Port listing.


def new_client(backend: Backend, kind: str, client_name: str, tries: int = CLIENT_TRIES, port_name: str | None = None):
    """A python-rtmidi client of ``backend``: kind "input" (a MidiIn) or "output" (a MidiOut),
    asked for up to ``tries`` times, CLIENT_RETRY_SECONDS apart (1: once; for a caller that
    retries on its own schedule). With our JACK binding (``backend.native``), a
    ``live.midi_io.jack.JackMidiClient`` with the same interface, for which ``port_name`` (the
    port it will open) is reserved at once (see there).

    With rtmidi on JACK every client is a JACK client; JACK gives a second client of the same
    name a suffix ("magenta-live-01"). Our binding puts ports on a shared JACK client instead.
    """
    for attempt in range(1, tries + 1):
        try:
            with CLIENT_LOCK:
                if backend.native:
                    return jack_binding.JackMidiClient(kind, client_name, port_name)
                if kind == "input":
                    return rtmidi.MidiIn(rtapi=backend.api, name=client_name, queue_size_limit=QUEUE_SIZE)
                return rtmidi.MidiOut(rtapi=backend.api, name=client_name)
        except rtmidi.RtMidiError as err:
            if attempt >= tries:
                times = "" if tries == 1 else f" {tries} times"
                raise BackendError(f"the {backend.name} MIDI backend refused a client{times}: {err}") from err
            logger.warning("the %s MIDI backend refused a client (%s); asking again in %g s",
                           backend.name, err, CLIENT_RETRY_SECONDS)
            time.sleep(CLIENT_RETRY_SECONDS)
    raise AssertionError("unreachable")


def delete_client(client: rtmidi.MidiIn | rtmidi.MidiOut) -> None:
    """Close ``client``'s port and let the client go (under CLIENT_LOCK)."""
    with CLIENT_LOCK:
        client.close_port()
        client.delete()


def port_names(backend: Backend | str, kind: str, client_name: str = PROBE_CLIENT_NAME) -> list[str]:
    """Names of the ports one can connect to: kind "input" = ports we can read from (other
    programs' outputs), kind "output" = ports we can write to (their inputs)."""
    backend = resolve_backend(backend)
    client = new_client(backend, kind, client_name)
    try:
        return client.get_ports()
    except rtmidi.RtMidiError as err:
        raise BackendError(f"the {backend.name} MIDI backend could not list {kind} ports: {err}") from err
    finally:
        delete_client(client)


def list_ports(backend: Backend | str = "auto") -> tuple[list[str], list[str]]:
    """(inputs, outputs): ports magenta-live can read from, and ports it can write to."""
    backend = resolve_backend(backend)
    return port_names(backend, "input"), port_names(backend, "output")
