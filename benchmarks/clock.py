"""Clock benchmarks: the internal clock's 0xF8 pulses as another JACK client hears them, and how
well MIDI clock in follows steady, jittery, ramping and jumping incoming clocks.

    .venv/bin/python -m benchmarks.clock [--quick]      # prints the Markdown section

``run(quick)`` returns the section. Everything real-time runs through a private JACK server
(``harness/jackd.py``: dummy driver, 48 kHz, 64-frame periods, ``--no-realtime``) and in
separate processes, each a JACK client of its own:

- **Clock out.** A child process runs ``InternalClock`` + ``MidiClockOut`` at 120 BPM into a
  python-rtmidi JACK output connected to a listener child (``harness.jackd.jack_input``), which
  stamps each pulse in ``time.perf_counter`` seconds (CLOCK_MONOTONIC, the same clock in every
  process) from JACK's clock for the cycle that delivered it. Each arrival is
  compared with its tick's absolute deadline ``t0 + n * 60 / (bpm * 24)`` from the master. Run
  idle, then with one busy-looping process per CPU beside it.
- **Clock in.** ``MidiClockIn`` on synthetic pulse times (several seeded runs per input), and on
  pulses a sender child plays through JACK at absolute deadlines (plus deliberate jitter), stamped
  by this process's JACK input; those stamps are fed to ``MidiClockIn`` in arrival order after the
  run (the filter's result depends only on the stamps and their order). Errors are measured
  against the sender's jitter-free grid; through JACK, the median offset (the transport latency)
  is reported and taken out of the phase error.

The benchmark process unpins itself from the CPU that ``benchmarks.run`` pins it to (and pins
itself back afterwards): real-time behaviour involves jackd and several processes, not one core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from harness.jackd import Jackd, collect, each_server, jack_input, jack_output, spin_load

TARGET_EXTRA = 0.001  # seconds beyond one JACK period allowed at the 99th percentile
LOCK_TARGET = 24  # pulses: one beat
# SCHED_FIFO priority asked for in the last clock-out condition: above every normal process, below
# jackd's own realtime threads (jackd -R defaults to 10), which must never wait for the clock's spin.
REALTIME_PRIORITY = 5

# -- inputs for clock in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """An incoming clock: ``hold`` pulses at ``bpm``, then ``ramp`` pulses moving linearly to
    ``bpm_end`` (a sudden jump if ``ramp`` is 0), then ``tail`` pulses at ``bpm_end``; Gaussian
    arrival jitter of ``jitter`` seconds."""

    name: str
    bpm: float
    hold: int
    jitter: float = 0.0
    bpm_end: float | None = None
    ramp: int = 0
    tail: int = 0

    def bpms(self) -> np.ndarray:
        """The tempo in force after each pulse (its following interval), one per pulse."""
        end = self.bpm if self.bpm_end is None else self.bpm_end
        parts = [np.full(self.hold, self.bpm), np.linspace(self.bpm, end, self.ramp), np.full(self.tail, end)]
        return np.concatenate(parts)

    def ideal(self, t0: float = 0.0) -> np.ndarray:
        """Jitter-free pulse times, seconds."""
        intervals = 60.0 / (self.bpms() * 24.0)
        return t0 + np.concatenate([[0.0], np.cumsum(intervals[:-1])])

    @property
    def change(self) -> int:
        """Index of the first pulse after a tempo jump, or 0 (lock is counted from there)."""
        return self.hold if (self.bpm_end is not None and self.ramp == 0) else 0


def scenarios(quick: bool) -> list[Scenario]:
    """The incoming clocks. The first ramp (5 BPM per bar) is also sent through JACK; in quick
    mode it is one bar long there (the same slope)."""
    beats = 4 if quick else 32
    return [
        Scenario("steady 97 BPM", 97.0, beats * 24),
        Scenario("97 BPM, jitter sd 0.5 ms", 97.0, beats * 24, jitter=0.0005),
        Scenario("97 BPM, jitter sd 2 ms", 97.0, beats * 24, jitter=0.002),
        Scenario("ramp 90 → 130 BPM over 8 bars, jitter 0.5 ms", 90.0, 96, 0.0005, 130.0, 8 * 96, 96),
        Scenario("steep ramp 90 → 130 BPM over 2 bars, jitter 0.5 ms", 90.0, 96, 0.0005, 130.0, 2 * 96, 96),
        Scenario("jump 120 → 97 BPM, jitter 0.5 ms", 120.0, 96, 0.0005, 97.0, 0, beats * 24),
    ]


def jack_scenarios(quick: bool) -> dict[int, Scenario]:
    """Which inputs also go through JACK (keyed by their row in ``scenarios``)."""
    chosen = scenarios(quick)
    ramp = Scenario("ramp 90 → 95 BPM over 1 bar, jitter 0.5 ms", 90.0, 24, 0.0005, 95.0, 96, 24) if quick else chosen[3]
    return {0: chosen[0], 1: chosen[1], 3: ramp}


@dataclass
class FollowResult:
    """How MidiClockIn followed one input. Times in seconds, tempi in BPM."""

    lock_pulses: int | None  # pulses from the start (or the jump) until locked; None: never
    tempo_errors: list[float] = field(default_factory=list)  # |bpm - true| after lock
    phase_errors: list[float] = field(default_factory=list)  # |predicted next - ideal next - offset|
    arrival_jitter: list[float] = field(default_factory=list)  # |arrival - ideal - offset|
    offset: float = 0.0  # median arrival - ideal (the transport latency through JACK)
    relocks: int = 0
    rejected: int = 0
    lost: int = 0  # pulses sent but not received
    filled: int = 0  # ticks MidiClockIn emitted for pulses it inferred lost


def follow(scenario: Scenario, arrivals: np.ndarray, ideal: np.ndarray) -> FollowResult:
    """Feed ``arrivals`` (Start first) to a fresh MidiClockIn and measure it against ``ideal``.

    Arrivals are matched to ideal pulses by nearest time after removing the first pulse's offset,
    so a pulse lost on the way shows as a gap rather than shifting every later comparison."""
    import mido

    from live.clock import MidiClockIn

    bpms = scenario.bpms()
    first_offset = arrivals[0] - ideal[0]
    index = np.clip(np.searchsorted(ideal + first_offset, arrivals - 0.5 * np.diff(ideal).min()), 0, len(ideal) - 1)
    offset = float(np.median(arrivals - ideal[index]))
    clock = MidiClockIn()
    clock.feed(float(arrivals[0]) - 0.005, mido.Message("start"))
    pulse = mido.Message("clock")
    lock_at = None
    change = scenario.change
    relocks_before = 0
    result = FollowResult(None, offset=offset, lost=len(ideal) - len(arrivals))
    for k, (t, i) in enumerate(zip(arrivals, index)):
        clock.feed(float(t), pulse)
        if i == change - 1:
            relocks_before = clock.stats.relocks
        if lock_at is None and i >= change and clock.locked and (change == 0 or clock.stats.relocks > relocks_before):
            lock_at = i
            result.lock_pulses = int(i - change + 1)
        if lock_at is not None:
            result.tempo_errors.append(abs(clock.bpm - bpms[i]))
            if i + 1 < len(ideal):
                result.phase_errors.append(abs(clock.time_of_tick(clock.next_tick) - ideal[i + 1] - offset))
        result.arrival_jitter.append(abs(t - ideal[i] - offset))
    stats = clock.stats
    result.relocks, result.rejected, result.filled = stats.relocks, stats.rejected, stats.filled
    return result


def synthetic(scenario: Scenario, runs: int) -> list[FollowResult]:
    results = []
    for seed in range(runs):
        ideal = scenario.ideal(100.0)
        arrivals = ideal + np.random.default_rng(seed).normal(0.0, scenario.jitter, len(ideal)) if scenario.jitter else ideal
        results.append(follow(scenario, arrivals, ideal))
    return results


# -- child processes -------------------------------------------------------------------------------


def child_listen(client: str, timeout: float) -> None:
    """A JACK input that stamps every message; stops at a Stop (0xFC) or after ``timeout``."""
    port = jack_input(client)
    print("ready", flush=True)
    got = collect(port, lambda data: data[0] == 0xFC, timeout)
    port.close()
    print(json.dumps([(stamp, data[0]) for stamp, data in got]), flush=True)


def child_master(destination: str, bpm: float, seconds: float, priority: int) -> None:
    """InternalClock + MidiClockOut at ``bpm`` for ``seconds`` into ``destination``; the clock
    thread asks for SCHED_FIFO at ``priority`` unless it is 0."""
    from live.clock import InternalClock, MidiClockOut

    out = jack_output(f"bench-master-{os.getpid()}", destination)
    clock = InternalClock(bpm, realtime_priority=priority or None)
    lateness = np.zeros(int(seconds * bpm * 24 / 60) + 100)

    class Sender(MidiClockOut):
        def on_tick(self, tick: int, time_: float) -> None:
            if tick < len(lateness):
                lateness[tick] = time.perf_counter() - time_  # how late the clock thread is
            super().on_tick(tick, time_)

    clock.add_listener(Sender(lambda message: out.send_message(message.bytes())))
    t0 = time.perf_counter() + 0.05
    clock.start(at=t0)
    time.sleep(0.05 + seconds)
    clock.stop()
    clock.close()
    time.sleep(0.1)
    out.close_port()
    out.delete()
    ticks = min(clock.stats.ticks, len(lateness))
    info = {"t0": t0, "spt": clock.anchor.spt, "stats": asdict(clock.stats), "realtime": clock.realtime,
            "lateness": lateness[:ticks].tolist()}
    print(json.dumps(info), flush=True)


def child_sender(destination: str, scenario_json: str, seed: int) -> None:
    """Start, then the scenario's pulses at absolute deadlines plus jitter, then Stop."""
    scenario = Scenario(**json.loads(scenario_json))
    out = jack_output(f"bench-sender-{os.getpid()}", destination)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter() + 0.05
    ideal = scenario.ideal(t0)
    due = ideal + (rng.normal(0.0, scenario.jitter, len(ideal)) if scenario.jitter else 0.0)
    out.send_message([0xFA])
    for t in due:
        pause = t - 0.002 - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        while time.perf_counter() < t:
            pass
        out.send_message([0xF8])
    time.sleep(0.01)
    out.send_message([0xFC])
    time.sleep(0.1)
    out.close_port()
    out.delete()
    print(json.dumps({"ideal": ideal.tolist()}), flush=True)


def _python(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.clock", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=_ROOT,
    )


_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _last_json(proc: subprocess.Popen, timeout: float) -> Any:
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.strip() and line.strip() != "ready"]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child failed (exit {proc.returncode}): {err[-2000:]}")
    return json.loads(lines[-1])


def _wait_for_port(name: str, timeout: float = 10.0) -> None:
    import rtmidi

    probe = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=f"bench-probe-{os.getpid()}")
    try:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if name in probe.get_ports():
                return
            time.sleep(0.05)
    finally:
        probe.delete()
    raise RuntimeError(f"JACK port {name} did not appear")


# -- measurements ----------------------------------------------------------------------------------


@dataclass
class OutResult:
    """The internal clock's pulses as heard by a listener; times in seconds."""

    condition: str
    sent: int
    received: int
    errors: np.ndarray  # arrival - deadline, per received pulse
    intervals: np.ndarray  # interval - ideal interval, consecutive received pulses only
    lateness: np.ndarray  # when the clock thread sent each pulse - its deadline
    stats: dict[str, Any]


def measure_clock_out(server: Jackd, seconds: float, load: int, priority: int = 0, bpm: float = 120.0) -> OutResult:
    env = server.env()
    client = f"bench-listen-{os.getpid()}-{load}"
    listener = _python("--child", "listen", client, str(seconds + 10.0), env=env)
    spinners: list[subprocess.Popen] = []
    try:
        if listener.stdout.readline().strip() != "ready":
            raise RuntimeError(f"listener did not start: {listener.stderr.read()[-2000:]}")
        _wait_for_port(f"{client}:in")
        if load:
            spinners = spin_load(load, seconds + 2.0)
            time.sleep(0.3)
        master = _python("--child", "master", f"{client}:in", str(bpm), str(seconds), str(priority), env=env)
        info = _last_json(master, seconds + 30.0)
        stamps = _last_json(listener, 15.0)
    finally:
        for p in spinners + [listener]:
            if p.poll() is None:
                p.kill()
                p.wait()
    t0, spt = info["t0"], info["spt"]
    pulses = np.array([t for t, status in stamps if status == 0xF8])
    index = np.round((pulses - t0) / spt)
    errors = pulses - (t0 + index * spt)
    steps = np.diff(index)
    intervals = (np.diff(pulses) - spt)[steps == 1]
    condition = "idle" if not load else f"loaded ({load} busy process{'es' if load > 1 else ''})"
    if priority:
        condition += f", clock thread SCHED_FIFO {priority}" if info["realtime"] else ", SCHED_FIFO refused"
    lateness = np.array(info["lateness"])
    return OutResult(condition, info["stats"]["ticks"], len(pulses), errors, intervals, lateness, info["stats"])


def _heard_bpm(r: OutResult, bpm: float = 120.0) -> float:
    """The tempo the listener heard: the pulses' errors drift by the difference per pulse."""
    if len(r.errors) < 10:
        return float("nan")
    drift = np.polyfit(np.arange(len(r.errors)), r.errors, 1)[0]  # seconds per pulse
    return 60.0 / (24 * (60.0 / (bpm * 24) + drift))


def measure_clock_in_jack(server: Jackd, scenario: Scenario, seed: int) -> FollowResult:
    client = f"bench-clockin-{os.getpid()}-{seed}"
    duration = float(scenario.ideal()[-1])
    port = jack_input(client)
    got: list[tuple[float, list[int]]] = []
    listener = threading.Thread(target=lambda: got.extend(collect(port, lambda data: data[0] == 0xFC, duration + 35.0)))
    listener.start()
    try:
        _wait_for_port(f"{client}:in")
        sender = _python("--child", "sender", f"{client}:in", json.dumps(asdict(scenario)), str(seed), env=server.env())
        info = _last_json(sender, duration + 30.0)
        listener.join(5.0)
    finally:
        port.close()
    arrivals = np.array([t for t, data in got if data[0] == 0xF8])
    return follow(scenario, arrivals, np.array(info["ideal"]))


# -- report ----------------------------------------------------------------------------------------


def _ms(x: float) -> str:
    return f"{x * 1e3:.2f}"


def _p99(values) -> float:
    return float(np.percentile(np.asarray(values, float), 99)) if len(values) else float("nan")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def _follow_row(name: str, source: str, results: list[FollowResult]) -> list[str]:
    locks = [r.lock_pulses for r in results]
    lock = "never" if any(x is None for x in locks) else f"{max(locks)}"
    tempo = [e for r in results for e in r.tempo_errors]
    phase = [e for r in results for e in r.phase_errors]
    jitter = [e for r in results for e in r.arrival_jitter]
    offset = np.median([r.offset for r in results])
    return [
        name, source, lock,
        f"{_p99(tempo):.2f}", f"{max(tempo) if tempo else float('nan'):.2f}",
        _ms(_p99(phase)), _ms(_p99(jitter)), _ms(offset),
        str(sum(r.relocks for r in results)), str(sum(r.rejected for r in results)), str(sum(r.lost for r in results)),
        str(sum(r.filled for r in results)),
    ]


@dataclass
class Measurements:
    notes: list[str] = field(default_factory=list)
    outs: list[tuple[str, OutResult]] = field(default_factory=list)  # (server, result)
    jack_in: dict[int, list[tuple[str, Scenario, FollowResult]]] = field(default_factory=dict)
    seconds: float = 0.0
    period: float = 0.0


def measure_jack(quick: bool, cpus: int) -> Measurements:
    """Clock out and clock in through a non-realtime jackd (as the tests and CI run it), then
    through a realtime one (``-R``) where the machine allows it (quick mode: clock out only)."""
    m = Measurements(seconds=1.5 if quick else 10.0)
    for server, realtime, label in each_server(m.notes):
        m.period = server.period_seconds
        conditions = [(0, 0), (cpus, 0)] + ([(cpus, REALTIME_PRIORITY)] if realtime else [])
        for load, priority in conditions:
            m.outs.append((label, measure_clock_out(server, m.seconds, load, priority)))
        if not realtime:  # a client of ours that ran and ended must leave the server as it was
            subprocess.run([sys.executable, "-m", "live.cli", "ports", "--backend", "jack"], env=server.env(),
                           capture_output=True, check=False, timeout=60)
            after = measure_clock_out(server, m.seconds, 0)
            after.condition = "idle, after `magenta-live ports` ran and ended"
            m.outs.append((label, after))
        if not (quick and realtime):
            for i, scenario in jack_scenarios(quick).items():
                m.jack_in.setdefault(i, []).append((label, scenario, measure_clock_in_jack(server, scenario, seed=i)))
    return m


def run(quick: bool) -> str:
    """Run every clock measurement and return the Markdown section (``## Clock``)."""
    cpus = os.cpu_count() or 1
    saved_affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if saved_affinity is not None:
        try:
            os.sched_setaffinity(0, range(cpus))
        except OSError:
            pass
    load_before = os.getloadavg()
    try:
        m = measure_jack(quick, cpus)
    finally:
        if saved_affinity is not None:
            os.sched_setaffinity(0, saved_affinity)
    load_after = os.getloadavg()
    out = ["## Clock", "", f"`python -m benchmarks.clock` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", ""]
    out += [
        "Private JACK servers (dummy driver, no sound card): " + "; ".join(m.notes) + ". "
        f"One period = {_ms(m.period)} ms; MIDI events are delivered at period boundaries. "
        f"Processes unpinned ({cpus} CPUs); load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        "(the machine may be shared). Times are `time.perf_counter` (CLOCK_MONOTONIC, the same in every process).",
        "",
        "### Internal clock out: 0xF8 pulses heard by another JACK client",
        "",
    ]
    if m.outs:
        limit = m.period + TARGET_EXTRA
        out += [
            f"120 BPM for {m.seconds:g} s per row, `InternalClock` + `MidiClockOut` in one process, the listener in "
            "another. *sent late* = when the clock thread sent a pulse − the tick's absolute deadline (the clock's own "
            "scheduling error); *error* = arrival at the listener − the deadline (end to end, through JACK); *jitter* = "
            "error − its median (the constant latency); *interval error* = interval between consecutive pulses − 1/48 s. "
            f"*loaded*: {cpus} processes busy-looping beside it.",
            "",
        ]
        rows = []
        for server, r in m.outs:
            rows.append([
                server, r.condition, f"{r.received}/{r.sent}", f"{_heard_bpm(r):.2f}", _ms(_p99(r.lateness)), _ms(float(np.max(r.lateness))),
                _ms(float(np.median(r.errors))), _ms(_p99(np.abs(r.errors))), _ms(_p99(np.abs(r.errors - np.median(r.errors)))),
                _ms(_p99(np.abs(r.intervals))), _ms(float(np.max(np.abs(r.intervals)))),
            ])
        out += _table(
            ["jackd", "condition", "received/sent", "tempo heard (BPM)", "sent late p99 ms", "sent late max ms", "median error ms",
             "p99 abs(error) ms", "p99 abs(jitter) ms", "p99 abs(interval error) ms", "max abs(interval error) ms"],
            rows,
        )
        verdicts = []
        for server, r in m.outs:
            ok_clock = _p99(r.lateness) < TARGET_EXTRA
            ok_end = _p99(np.abs(r.errors)) < limit
            verdicts.append(f"{server}, {r.condition}: clock **{'met' if ok_clock else 'NOT met'}**, "
                            f"end to end **{'met' if ok_end else 'NOT met'}**")
        out += [
            "",
            f"Target: scheduling error p99 under 1 ms beyond JACK's period quantization, i.e. *sent late* p99 under "
            f"1 ms (the clock) and p99 abs(error) under one period + 1 ms = {_ms(limit)} ms (end to end): "
            + "; ".join(verdicts) + ".",
        ]
    else:
        out += ["Not measured (no JACK server could be started)."]
    runs = 5 if quick else 20
    out += [
        "",
        "### Clock in: lock, tempo and phase error",
        "",
        f"`MidiClockIn` with its default `TempoFilter`. Synthetic rows: {runs} seeded runs each. JACK rows: one run "
        "through the server, sent by another process at absolute deadlines plus the stated jitter, stamped by this "
        "process's JACK input callback. *lock* = pulses until `locked` (the worst run; after a jump, counted from the "
        "jump). After lock, against the jitter-free grid: *tempo* = abs(estimated − true BPM); *phase* = "
        "abs(`time_of_tick(next)` − the next pulse's ideal time − offset); *arrival jitter* = abs(arrival − ideal − "
        "offset), for comparison; *offset* = median arrival − ideal (JACK's latency). *rejected*: pulses left out of "
        "the estimate as outliers; *lost*: pulses that never arrived; *filled*: pulses the filter inferred lost and "
        "emitted as ticks, so the song position stayed right.",
        "",
    ]
    rows = []
    slow: list[str] = []  # rows whose worst lock took longer than the target
    for i, scenario in enumerate(scenarios(quick)):
        groups = [(scenario.name, "synthetic", synthetic(scenario, runs))]
        groups += [(sent.name, f"JACK, {server}", [result]) for server, sent, result in m.jack_in.get(i, [])]
        for name, source, results in groups:
            rows.append(_follow_row(name, source, results))
            locks = [r.lock_pulses for r in results]
            if any(x is None or x > LOCK_TARGET for x in locks):
                worst = "never" if any(x is None for x in locks) else str(max(locks))
                slow.append(f"{name} ({source}): {worst}")
    out += _table(
        ["input", "source", "lock (pulses)", "tempo p99 BPM", "tempo max BPM", "phase p99 ms", "arrival jitter p99 ms",
         "offset ms", "relocks", "rejected", "lost", "filled"],
        rows,
    )
    verdict = "**met** for every input" if not slow else "**NOT met** for " + "; ".join(slow) + " pulses; met for the rest"
    out += ["", f"Target lock within one beat ({LOCK_TARGET} pulses): {verdict}."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "listen":
            child_listen(rest[0], float(rest[1]))
        elif kind == "master":
            child_master(rest[0], float(rest[1]), float(rest[2]), int(rest[3]))
        elif kind == "sender":
            child_sender(rest[0], rest[1], int(rest[2]))
        else:
            raise SystemExit(f"unknown child {kind}")
        return
    print(run(args.quick))


if __name__ == "__main__":
    main()
