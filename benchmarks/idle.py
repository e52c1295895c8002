"""An idle daemon's CPU: the clock running, one agent, nothing played (issue: next to a DAW on a
laptop, every percent is battery and DSP headroom).

    .venv/bin/python -m benchmarks.idle            # 3 rounds of 8 s per setting
    .venv/bin/python -m benchmarks.idle --quick    # 1 round of 3 s
    .venv/bin/python -m benchmarks.idle --update benchmarks/RESULTS.md

A Daemon in this process (its two JACK clients, the internal clock, the loop, one call-response
agent) on a private dummy-driver JACK server, at -p 64 (1.33 ms, what the tests use) and at
-p 256 (5.3 ms, a common DAW buffer). The loop reads JACK's input queues every 0.5 ms while the
player plays and every 4 ms once the daemon has been quiet for 5 s
(``live.daemon.loop.QUIET_POLL_SECONDS``), and while quiet it reads only the input queues between
its other chores (``Daemon._wait_quietly``). The rows before it are measured in the same run: 1 ms
always with the whole loop at every read (the daemon of 2026-12-05), and 4 ms with the whole loop
(2026-12-07 00:30); "8 ms" is measured beside them to show what a longer quiet wait would save.
The settings alternate, in the same run. Each thread's CPU time comes from
``/proc/self/task``: the Python threads (the loop, the clock, the output schedulers, the port
supervisor) are the daemon's own share; the others are libjack's (each rtmidi port is a JACK
client whose process thread wakes every period).
"""

from __future__ import annotations

import os
import statistics
import threading
import time

from benchmarks import section_main

HEADING = "## Idle daemon CPU"
PERIODS = (64, 256)
BEFORE_POLL_SECONDS = 0.001


def thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each thread of this process, by native thread id."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def wait_floor(seconds: float, wait: float) -> float:
    """% of a core that a thread costs which does nothing but wait on an Event ``wait`` seconds at
    a time (what every read of a polling loop costs before it does anything)."""
    event = threading.Event()
    cpu = []

    def waiter() -> None:
        start, end = time.thread_time(), time.perf_counter() + seconds
        while time.perf_counter() < end:
            event.wait(wait)
        cpu.append(time.thread_time() - start)

    thread = threading.Thread(target=waiter)
    thread.start()
    thread.join()
    return 100 * cpu[0] / seconds


def _shares(before: dict[int, float], after: dict[int, float], seconds: float) -> tuple[float, float]:
    """(% of a core for the Python threads, % for the others) between two thread_cpu() readings."""
    python = {t.native_id for t in threading.enumerate()}
    ours = sum(after[t] - before.get(t, 0.0) for t in after if t in python)
    theirs = sum(after[t] - before.get(t, 0.0) for t in after if t not in python)
    return 100 * ours / seconds, 100 * theirs / seconds


def run(quick: bool = False, log=print) -> str:
    from harness.jackd import start_jackd
    import live.daemon.loop as loop
    from live.config import agent_spec
    from live.daemon import Daemon, DaemonOptions

    rounds, seconds = (1, 3.0) if quick else (3, 8.0)
    quiet = loop.QUIET_POLL_SECONDS
    # (poll seconds when quiet, whether the quiet wait reads only the queues)
    settings = {"1 ms always, the whole loop (2026-12-05)": (BEFORE_POLL_SECONDS, False),
                f"{quiet * 1e3:g} ms when quiet, the whole loop (2026-12-07 00:30)": (quiet, False),
                f"{quiet * 1e3:g} ms when quiet, queues only (now)": (quiet, True),
                "8 ms when quiet, queues only (not used)": (0.008, True)}
    rows: dict[tuple[int, str], list[tuple[float, float]]] = {}
    saved = loop.QUIET_POLL_SECONDS, Daemon._wait_quietly
    whole_loop = lambda self, reads, until: self._wake.wait(loop.QUIET_POLL_SECONDS)  # noqa: E731 - one loop pass per read
    try:
        for period in PERIODS:
            with start_jackd(period=period) as server:
                daemon = Daemon(DaemonOptions(backend="jack", agents=[agent_spec({})], client_name=f"{server.name}-idle"))
                with daemon:
                    daemon.run(1.0)
                    for _ in range(rounds):
                        for name, (wait, queues_only) in settings.items():
                            loop.QUIET_POLL_SECONDS = wait
                            Daemon._wait_quietly = saved[1] if queues_only else whole_loop
                            before, start = thread_cpu(), time.perf_counter()
                            daemon.run(seconds)
                            ours, jack = _shares(before, thread_cpu(), time.perf_counter() - start)
                            rows.setdefault((period, name), []).append((ours, jack))
                            log(f"idle at -p {period}: {name}: ours {ours:.1f}%, libjack {jack:.1f}%")
    finally:
        loop.QUIET_POLL_SECONDS, Daemon._wait_quietly = saved
    floor = wait_floor(seconds, quiet)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        HEADING, "",
        f"`python -m benchmarks.idle{' --quick' if quick else ''}` on {when}, load average {load} at the end. "
        f"{rounds} round(s) of {seconds:g} s per setting, alternating; CPU time per wall second, per thread "
        "(/proc/self/task, 10 ms resolution): the daemon's own Python threads, and libjack's threads (the two "
        "rtmidi ports' JACK clients). Target: at most 3% of one core in all.", "",
        "| jackd period | loop's polling | daemon's own threads, % of a core: median (rounds) | libjack's threads | all |",
        "|---|---|---|---|---|",
    ]
    verdicts = []
    for (period, name), values in rows.items():
        ours = statistics.median(v[0] for v in values)
        jack = statistics.median(v[1] for v in values)
        total = statistics.median(v[0] + v[1] for v in values)
        lines.append(f"| -p {period} ({period / 48:.2f} ms) | {name} | {ours:.1f} ({', '.join(f'{v[0]:.1f}' for v in values)}) "
                     f"| {jack:.1f} | {total:.1f} |")
        if "now" in name:
            verdicts.append(f"-p {period}: **{'met' if total <= 3.0 else 'NOT met'}** ({total:.1f}%)")
    lines += ["", "Target (at most 3% in all): " + "; ".join(verdicts) + ".", "",
              "The price of the quiet polling: the first note after 5 s without input is read up to that "
              "long after it arrived (its time stamp stays exact, so calls and answers keep their timing; "
              "its harmony or passthrough leaves that much later); while the player plays the loop reads "
              "every 0.5 ms, the whole loop at every read, as before. 8 ms would save what the rows above show, "
              "for twice that wait on the first note; the daemon keeps 4 ms. What is left is mostly wake-ups: "
              "on this VM a thread's timed wait costs tens of microseconds of CPU however little it does, so 250 reads a "
              f"second cost {floor:.1f}% of a core (measured in this run: a thread that only waits {quiet * 1e3:g} ms at a "
              "time, nothing else); and libjack's: each rtmidi port is a JACK client whose process "
              "thread wakes every period (the more so at -p 64).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return section_main(__doc__, HEADING, run, "1 round of 3 s", argv)


if __name__ == "__main__":
    raise SystemExit(main())
