"""Output scheduling benchmark: when scheduled notes reach another JACK client, and passthrough.

    .venv/bin/python -m benchmarks.midi_scheduling [--quick]   # prints the Markdown section

``run(quick)`` returns the section. Everything goes through a private JACK server
(``harness/jackd.py``: dummy driver, 48 kHz, 64-frame periods) and separate processes, each a
JACK client of its own, so no measuring callback competes for the measured process's GIL:

- **Scheduling.** A child process opens a python-rtmidi JACK output connected to a listener
  child and hands an ``OutputScheduler`` (with its ``NoteLedger``) a run of notes at absolute
  deadlines: a note-on every 20 ms, its note-off 10 ms later (one message every 10 ms), all
  scheduled up front. The listener (the daemon's own input class, ``harness.jackd.jack_input``)
  stamps every arrival in ``time.perf_counter`` seconds (CLOCK_MONOTONIC, the same clock in
  every process) from JACK's clock for the cycle that delivered it. Conditions: idle;
  one busy-looping process per CPU beside it; a thread of the scheduler's own process computing
  in Python (the GIL), at Python's default switch interval and at 0.5 ms; and, where the
  machine allows a realtime jackd (``-R``), the loaded case with the scheduler thread at
  SCHED_FIFO.
- **Passthrough.** A child process runs the daemon (``live.daemon.Daemon``, JACK backend,
  ``passthrough=True``, its virtual ports); this process plays notes into the daemon's input
  and the listener child hears the daemon's output. Latency = arrival - the player's send time:
  two JACK hops plus the daemon's input-to-output path.

The benchmark process unpins itself from the CPU that ``benchmarks.run`` pins it to (and pins
itself back afterwards): real-time behaviour involves jackd and several processes, not one core.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.jackd import Jackd, collect, each_server, jack_input, jack_output, spin_load

TARGET_EXTRA = 0.001  # seconds beyond JACK's period quantization allowed at the 99th percentile
SPACING = 0.020  # seconds between note-ons; each note-off comes half-way
REALTIME_PRIORITY = 5  # SCHED_FIFO for the scheduler thread: above normal processes, below jackd -R (10)
BUSY_SWITCH_INTERVAL = 0.0005  # seconds: the lowered sys.setswitchinterval of one condition

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- messages --------------------------------------------------------------------------------------


def note_messages(count: int, spacing: float, t0: float) -> list[tuple[float, list[int]]]:
    """``count`` notes as (deadline seconds, MIDI bytes), in deadline order; every message differs.

    The note number cycles through four octaves and the velocity counts the cycles, so an arrival
    can be matched to its message even when JACK drops one."""
    out = []
    for i in range(count):
        note, velocity = 36 + i % 48, 1 + (i // 48) % 127
        start = t0 + i * spacing
        out.append((start, [0x90, note, velocity]))
        out.append((start + spacing / 2, [0x80, note, velocity]))
    return out


# -- child processes -------------------------------------------------------------------------------


def child_listen(client: str, source: str, timeout: float) -> None:
    """Stamp every message; ``source`` "-": a virtual input, else connect to that output port.

    Stops when a line (or EOF) arrives on stdin, or after ``timeout`` seconds; prints the stamps."""
    port = jack_input(client, None if source == "-" else source)
    print("ready", flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), done.set()), daemon=True).start()
    stamps = collect(port, done, timeout)
    port.close()
    print(json.dumps(stamps), flush=True)


def child_schedule(destination: str, count: int, spacing: float, busy: int, switch: float, priority: int) -> None:
    """Play ``count`` notes through an OutputScheduler into ``destination``; print what it saw.

    ``busy``: a thread of this process computes in Python meanwhile; ``switch`` > 0: the
    interpreter's switch interval (seconds); ``priority`` > 0: SCHED_FIFO for the scheduler."""
    import mido

    from live.midi_io.scheduler import OutputScheduler

    if switch > 0:
        sys.setswitchinterval(switch)
    out = jack_output(f"bench-sched-{os.getpid()}", destination)
    scheduler = OutputScheduler(lambda m: out.send_message(m.bytes()), history=2 * count + 16,
                                realtime_priority=priority or None)
    scheduler.start()
    stop_busy = threading.Event()
    if busy:
        def compute() -> None:
            x = 0
            while not stop_busy.is_set():
                for j in range(1000):
                    x += j

        threading.Thread(target=compute, daemon=True).start()
    t0 = time.perf_counter() + 0.1
    plan = note_messages(count, spacing, t0)
    for deadline, data in plan:
        scheduler.schedule(deadline, mido.Message.from_bytes(data))
    end = plan[-1][0] + 0.05
    while (left := end - time.perf_counter()) > 0:
        time.sleep(left)
    stop_busy.set()
    stats = scheduler.stats()
    scheduler.stop()
    time.sleep(0.1)
    out.close_port()
    out.delete()
    print(json.dumps({
        "plan": plan, "errors": list(stats.errors), "sent": stats.sent, "late": stats.late,
        "late_seconds": scheduler.late_seconds, "realtime": scheduler.realtime,
        "switch": sys.getswitchinterval(),
    }), flush=True)


def child_daemon(client: str, seconds: float, backend: str = "jack") -> None:
    """The daemon with passthrough on its virtual JACK ports, for ``seconds``."""
    from live.daemon import Daemon, DaemonOptions

    with Daemon(DaemonOptions(backend=backend, passthrough=True, client_name=client)) as daemon:
        signal.signal(signal.SIGTERM, lambda signum, frame: daemon.stop_from_signal(signum))  # close the ports on the way out
        print("ready", flush=True)
        daemon.run(seconds)
    print(json.dumps({"passed_through": daemon.counters.passed_through, "delays": list(daemon.passthrough_delays)}),
          flush=True)


def _python(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.midi_scheduling", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=_ROOT,
    )


def _last_json(proc: subprocess.Popen, timeout: float, say: str | None = None) -> Any:
    out, err = proc.communicate(say, timeout=timeout)
    lines = [line for line in out.splitlines() if line.strip() and line.strip() != "ready"]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child failed (exit {proc.returncode}): {err[-2000:]}")
    return json.loads(lines[-1])


def _ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"benchmark child did not start: {line} {proc.stderr.read()[-2000:]}")


def _wait_for_port(name: str, kind: str, timeout: float = 10.0) -> str:
    """Wait for a JACK MIDI port and return its full name: kind "input" (one we write to) or
    "output" (one we read). ``name`` is the full name, or "CLIENT*:PORT" for a port of a client
    whose name starts with CLIENT (rtmidi opens each port as a client of its own, and JACK
    renames a second client of the same name "NAME-01")."""
    import rtmidi

    prefix, star, port = name.partition("*:")

    def matches(full: str) -> bool:
        if not star:
            return full == name
        client, _, rest = full.partition(":")
        return client.startswith(prefix) and rest == port

    cls = rtmidi.MidiOut if kind == "input" else rtmidi.MidiIn
    probe = cls(rtapi=rtmidi.API_UNIX_JACK, name=f"bench-probe-{os.getpid()}")
    try:
        deadline = time.perf_counter() + timeout
        while True:
            have = probe.get_ports()
            found = [n for n in have if matches(n)]
            if found:
                return found[0]
            if time.perf_counter() > deadline:
                break
            time.sleep(0.05)
    finally:
        probe.delete()
    raise RuntimeError(f"JACK MIDI {kind} port {name} did not appear; have {have}")


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM, then SIGKILL only if a child won't go: a JACK client killed while open stalls the
    server for ten times its client timeout (harness/jackd.py), and the next measurement with it."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# -- measurements ----------------------------------------------------------------------------------


@dataclass
class Result:
    """One condition. Times in seconds, one entry per message that arrived (``sched``: per sent)."""

    server: str
    condition: str
    sent: int
    received: int
    sched: np.ndarray  # scheduler's own error: send time - deadline
    arrival: np.ndarray  # arrival at the listener - deadline (or - the player's send, passthrough)
    hop: np.ndarray  # arrival - send time (JACK's share); passthrough: one hop from the player to a listener directly
    late: int = 0
    own: np.ndarray | None = None  # passthrough: the daemon's own share (its input's stamp to its send)


def _match(stamps: list[tuple[float, list[int]]], keys: list[tuple[int, ...]]) -> dict[tuple[int, ...], float]:
    """Arrival time per message key (the first arrival of each)."""
    wanted = set(keys)
    arrived: dict[tuple[int, ...], float] = {}
    for t, data in stamps:
        key = tuple(data)
        if key in wanted and key not in arrived:
            arrived[key] = t
    return arrived


def measure_scheduling(server: Jackd, label: str, count: int, load: int = 0, busy: bool = False,
                       switch: float = 0.0, priority: int = 0) -> Result:
    env = server.env()
    client = f"bench-ear-{os.getpid()}-{time.perf_counter_ns() % 10**9}"
    listener = _python("--child", "listen", client, "-", str(count * SPACING + 60), env=env)
    spinners: list[subprocess.Popen] = []
    try:
        _ready(listener)
        _wait_for_port(f"{client}:in", "input")
        if load:
            spinners = spin_load(load, count * SPACING + 5.0)
            time.sleep(0.3)
        sched = _python("--child", "schedule", f"{client}:in", str(count), str(SPACING), str(int(busy)), str(switch),
                        str(priority), env=env)
        info = _last_json(sched, count * SPACING + 60)
        time.sleep(0.05)
        stamps = _last_json(listener, 15.0, say="stop\n")
    finally:
        _stop(spinners + [listener])
    plan = [(d, tuple(b)) for d, b in info["plan"]]
    errors = info["errors"]
    arrived = _match(stamps, [k for _, k in plan])
    arrival, hop = [], []
    for (deadline, key), error in zip(plan, errors):
        if key in arrived:
            arrival.append(arrived[key] - deadline)
            hop.append(arrived[key] - deadline - error)
    condition = "idle"
    if load:
        condition = f"loaded ({load} busy process{'es' if load > 1 else ''})"
    if busy:
        condition = f"a Python thread computing in the same process, switch interval {info['switch'] * 1e3:g} ms"
    if priority:
        condition += f", scheduler SCHED_FIFO {priority}" if info["realtime"] else ", SCHED_FIFO refused"
    return Result(label, condition, len(plan), len(arrived), np.array(errors), np.array(arrival), np.array(hop),
                  info["late"])


def measure_passthrough(server: Jackd, label: str, count: int, load: int = 0, backend: str = "jack") -> Result:
    """The player sends each message twice at once: into the daemon (whose output a listener
    hears) and, from a client of its own, straight to a second listener: JACK's own hop, in the
    same run. The daemon reports its own share (input stamp to send) itself. ``backend``: the
    daemon's (``jack``: our binding; ``jack-rtmidi``: python-rtmidi's JACK API, polled)."""
    env = server.env()
    name = f"bench-daemon-{os.getpid()}-{time.perf_counter_ns() % 10**9}"
    seconds = count * SPACING + 5.0
    daemon = _python("--child", "daemon", name, str(seconds), backend, env=env)
    listener = direct = None
    spinners: list[subprocess.Popen] = []
    outs = []
    try:
        _ready(daemon)
        source = _wait_for_port(f"{name}*:magenta-live out", "output")
        destination = _wait_for_port(f"{name}*:magenta-live in", "input")
        listener = _python("--child", "listen", f"bench-ear-{os.getpid()}", source, str(seconds + 30), env=env)
        _ready(listener)
        ear = f"bench-direct-{os.getpid()}"
        direct = _python("--child", "listen", ear, "-", str(seconds + 30), env=env)
        _ready(direct)
        outs.append(jack_output(f"bench-player-{os.getpid()}", destination))
        outs.append(jack_output(f"bench-player-direct-{os.getpid()}", _wait_for_port(f"{ear}:in", "input")))
        if load:
            spinners = spin_load(load, count * SPACING + 3.0)
            time.sleep(0.3)
        plan = note_messages(count, SPACING, time.perf_counter() + 0.05)
        sends, direct_sends = [], []
        for deadline, data in plan:
            pause = deadline - 0.002 - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            while time.perf_counter() < deadline:
                pass
            sends.append(time.perf_counter())
            outs[0].send_message(data)
            direct_sends.append(time.perf_counter())
            outs[1].send_message(data)
        time.sleep(0.2)
        stamps = _last_json(listener, 15.0, say="stop\n")
        direct_stamps = _last_json(direct, 15.0, say="stop\n")
        daemon.send_signal(signal.SIGTERM)
        own = np.array(_last_json(daemon, 30.0)["delays"])
    except BaseException:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        try:
            sys.stderr.write(f"the daemon under test said:\n{daemon.communicate(timeout=30)[1][-3000:]}\n")
        except (subprocess.TimeoutExpired, ValueError, OSError):
            pass
        raise
    finally:
        for out in outs:
            out.close_port()
            out.delete()
        _stop(spinners + [p for p in (listener, direct) if p is not None] + [daemon])
    keys = [tuple(b) for _, b in plan]
    arrived = _match(stamps, keys)
    latency = np.array([arrived[k] - s for k, s in zip(keys, sends) if k in arrived])
    heard = _match(direct_stamps, keys)
    hop = np.array([heard[k] - s for k, s in zip(keys, direct_sends) if k in heard])
    condition = "idle" if not load else f"loaded ({load} busy process{'es' if load > 1 else ''})"
    condition += f", `{backend}`"
    return Result(label, condition, len(keys), len(arrived), np.array([]), latency, hop, own=own)


@dataclass
class Measurements:
    notes: list[str] = field(default_factory=list)
    scheduling: list[Result] = field(default_factory=list)
    passthrough: list[Result] = field(default_factory=list)
    period: float = 0.0
    count: int = 0


def measure(quick: bool, cpus: int) -> Measurements:
    """Every condition through a non-realtime jackd (as the tests and CI run it), then the loaded
    ones through a realtime jackd where the machine allows it."""
    m = Measurements(count=75 if quick else 500)
    for server, realtime, label in each_server(m.notes):
        m.period = server.period_seconds
        if not realtime:
            m.scheduling.append(measure_scheduling(server, label, m.count))
            m.scheduling.append(measure_scheduling(server, label, m.count, load=cpus))
            m.scheduling.append(measure_scheduling(server, label, m.count, busy=True))
            m.scheduling.append(measure_scheduling(server, label, m.count, busy=True, switch=BUSY_SWITCH_INTERVAL))
            m.passthrough.append(measure_passthrough(server, label, m.count, backend="jack-rtmidi"))
            m.passthrough.append(measure_passthrough(server, label, m.count))
            m.passthrough.append(measure_passthrough(server, label, m.count, load=cpus))
        else:
            m.scheduling.append(measure_scheduling(server, label, m.count, load=cpus))
            m.scheduling.append(measure_scheduling(server, label, m.count, load=cpus, priority=REALTIME_PRIORITY))
            m.passthrough.append(measure_passthrough(server, label, m.count, load=cpus))
    return m


# -- report ----------------------------------------------------------------------------------------


def _ms(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x * 1e3:.2f}"


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _max(values: np.ndarray) -> float:
    return float(np.max(values)) if len(values) else float("nan")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def report(m: Measurements, cpus: int, load_before: float, load_after: float) -> str:
    out = ["## Output scheduling", "", f"`python -m benchmarks.midi_scheduling` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", ""]
    out += [
        "Private JACK servers (dummy driver, no sound card): " + "; ".join(m.notes) + ". "
        f"One JACK period = 64/48000 s = {_ms(m.period)} ms: JACK delivers MIDI at period boundaries, so every "
        "hop from one client to another adds between 0 and one period (plus the receiving callback's wake-up). "
        f"Processes unpinned ({cpus} CPUs); load average {load_before:.2f} before, {load_after:.2f} after (the machine "
        "may be shared). Times are `time.perf_counter` (CLOCK_MONOTONIC, the same in every process).",
        "",
        "### Scheduled notes heard by another JACK client",
        "",
    ]
    if not m.scheduling:
        return "\n".join(out + ["Not measured (no JACK server could be started).", ""])
    limit = m.period + TARGET_EXTRA
    out += [
        (f"`OutputScheduler` (default `spin_seconds` 2 ms, `hold_seconds` 0.2 ms) in one process, {m.count} notes "
        f"({2 * m.count} messages, one every {SPACING / 2 * 1e3:g} ms) scheduled up front at absolute deadlines; the "
        "listener in another process. *scheduler error* = when the scheduler thread sent a message − its deadline "
        "(measured right before the send); *late* = sent more than 1 ms after the deadline; *arrival error* = "
        "arrival at the listener − the deadline (end to end); *JACK hop* = arrival − send. "
        f"*loaded*: {cpus} processes busy-looping beside it."),
        "",
    ]
    rows = []
    for r in m.scheduling:
        rows.append([
            r.server, r.condition, f"{r.received}/{r.sent}", _ms(_pct(r.sched, 50)), _ms(_pct(r.sched, 99)),
            _ms(_max(r.sched)), str(r.late), _ms(_pct(r.arrival, 50)), _ms(_pct(r.arrival, 99)), _ms(_max(r.arrival)),
            _ms(_pct(r.hop, 50)), _ms(_max(r.hop)),
        ])
    out += _table(
        ["jackd", "condition", "received/sent", "scheduler error median ms", "p99 ms", "max ms", "late",
         "arrival error median ms", "p99 ms", "max ms", "JACK hop median ms", "max ms"],
        rows,
    )
    verdicts = []
    for r in m.scheduling:
        ok_sched = _pct(r.sched, 99) < TARGET_EXTRA
        ok_end = _pct(r.arrival, 99) < limit
        verdicts.append(f"{r.server}, {r.condition}: scheduler **{'met' if ok_sched else 'NOT met'}**, "
                        f"end to end **{'met' if ok_end else 'NOT met'}**")
    out += [
        "",
        ("Target: scheduling error p99 under 1 ms beyond JACK's period quantization, i.e. *scheduler error* p99 under "
         f"1 ms and *arrival error* p99 under one period + 1 ms = {_ms(limit)} ms: ") + "; ".join(verdicts) + ".",
        "",
        ("A thread computing in Python holds the GIL until the interpreter's switch interval (5 ms by default) asks "
        "it to let go, so the woken scheduler thread can wait that long; the daemon should lower the interval "
         f"(`sys.setswitchinterval({BUSY_SWITCH_INTERVAL:g})`) or keep such work out of its process."),
        "",
    ]
    if m.passthrough:
        out += [
            "### Passthrough latency",
            "",
            (f"The daemon (`live.daemon.Daemon`, JACK backend, `passthrough=True`, its virtual ports, the internal "
            f"clock running) in one process; a player (this process) sends {2 * m.count} messages, one every "
            f"{SPACING / 2 * 1e3:g} ms, into its input; a listener in a third process hears its output. *latency* = "
            "arrival − the player's send time: two JACK hops (each 0 to one period) plus the daemon's own path "
            "(`jack`, our binding: its input wakes the loop; `jack-rtmidi`, python-rtmidi's JACK API and the daemon "
            "before 2026-12-07: the loop reads JACK's input queue every half millisecond while the player plays; "
            "then ledger and output). On JACK neither the "
            "daemon nor the listener runs Python in JACK's process thread (`live/midi_io/jack.py`): with a "
            "non-realtime jackd, JACK's own client threads then compete with every other thread for the CPU, "
            "and under full load its cycles, and the MIDI they carry, fall behind; a realtime jackd (`-R`) keeps "
            "them on time."),
            "",
        ]
        rows = [[r.server, r.condition, f"{r.received}/{r.sent}", _ms(_pct(r.arrival, 50)), _ms(_pct(r.arrival, 99)),
                 _ms(_max(r.arrival)), _ms(_pct(r.hop, 50)), _ms(_pct(r.hop, 99)),
                 _ms(_pct(r.own, 50)), _ms(_pct(r.own, 99)), _ms(_max(r.own))] for r in m.passthrough]
        out += _table(["jackd", "condition", "received/sent", "latency median ms", "p99 ms", "max ms",
                       "JACK hop alone median ms", "p99 ms", "daemon's own share median ms", "p99 ms", "max ms"], rows)
        verdicts = [f"{r.server}, {r.condition}: **{'met' if _pct(r.own, 99) < 1e-3 else 'NOT met'}** "
                    f"({_ms(_pct(r.own, 99))} ms)" for r in m.passthrough]
        out += ["", ("*JACK hop alone*: the same messages sent at the same moment from another client of the player "
                     "straight to a second listener, in the same run. *Daemon's own share*: from the JACK time stamp "
                     "of a message at the daemon's input to its send returning (measured in the daemon, "
                     "`Daemon.passthrough_delays`): the wait for the loop to read it, the ledger and the send; the "
                     "rest of the latency is the two hops. Target: its p99 under 1 ms: " + "; ".join(verdicts) + "."), ""]
    return "\n".join(out)


def run(quick: bool) -> str:
    """Run every output-scheduling measurement and return the Markdown section."""
    cpus = os.cpu_count() or 1
    saved_affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if saved_affinity is not None:
        try:
            os.sched_setaffinity(0, range(cpus))
        except OSError:
            pass
    load_before = os.getloadavg()[0]
    try:
        m = measure(quick, cpus)
    finally:
        if saved_affinity is not None:
            os.sched_setaffinity(0, saved_affinity)
    return report(m, cpus, load_before, os.getloadavg()[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "listen":
            child_listen(rest[0], rest[1], float(rest[2]))
        elif kind == "schedule":
            child_schedule(rest[0], int(rest[1]), float(rest[2]), int(rest[3]), float(rest[4]), int(rest[5]))
        elif kind == "daemon":
            child_daemon(rest[0], float(rest[1]), *rest[2:])
        else:
            raise SystemExit(f"unknown child {kind}")
        return
    print(run(args.quick))


if __name__ == "__main__":
    main()
