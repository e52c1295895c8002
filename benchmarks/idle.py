"""An idle daemon's CPU: the clock running, one agent, nothing played (issue: next to a DAW on a
laptop, every percent is battery and DSP headroom).

    .venv/bin/python -m benchmarks.idle            # 3 rounds of 8 s per setting
    .venv/bin/python -m benchmarks.idle --quick    # 1 round of 3 s
    .venv/bin/python -m benchmarks.idle --update benchmarks/RESULTS.md

A Daemon in this process (its two JACK clients, the internal clock, the loop, one call-response
agent) on a private dummy-driver JACK server at -p 64 (1.33 ms). The loop reads JACK's input
queues every 1 ms while the player plays and every 4 ms once the daemon has been quiet for 5 s
(``live.daemon.loop.QUIET_POLL_SECONDS``); "before" forces 1 ms always. The settings alternate,
in the same run, and the process's own CPU time (user + system, every thread) is divided by
the wall time.
"""

from __future__ import annotations

import os
import statistics
import time

from benchmarks import section_main

HEADING = "## Idle daemon CPU"


def run(quick: bool = False, log=print) -> str:
    from harness.jackd import start_jackd
    import live.daemon.loop as loop
    from live.config import agent_spec
    from live.daemon import Daemon, DaemonOptions

    rounds, seconds = (1, 3.0) if quick else (3, 8.0)
    settings = {"1 ms always (before)": loop.POLL_SECONDS, "4 ms when quiet (now)": loop.QUIET_POLL_SECONDS}
    shares: dict[str, list[float]] = {name: [] for name in settings}
    saved = loop.QUIET_POLL_SECONDS
    with start_jackd() as server:
        daemon = Daemon(DaemonOptions(backend="jack", agents=[agent_spec({})], client_name=f"{server.name}-idle"))
        try:
            with daemon:
                daemon.run(1.0)
                for _ in range(rounds):
                    for name, wait in settings.items():
                        loop.QUIET_POLL_SECONDS = wait
                        before, start = os.times(), time.perf_counter()
                        daemon.run(seconds)
                        after = os.times()
                        share = 100 * (after.user + after.system - before.user - before.system) / (time.perf_counter() - start)
                        shares[name].append(share)
                        log(f"idle: {name}: {share:.1f}%")
        finally:
            loop.QUIET_POLL_SECONDS = saved
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        HEADING, "",
        f"`python -m benchmarks.idle{' --quick' if quick else ''}` on {when}, load average {load} at the end. "
        f"{rounds} round(s) of {seconds:g} s per setting, alternating; the whole process's CPU time (every thread: "
        "the loop, the clock, the two JACK clients' process threads) per wall second. Target: at most 3% of one core.", "",
        "| setting | CPU, % of one core: median (rounds) |", "|---|---|",
    ]
    for name, values in shares.items():
        lines.append(f"| {name} | {statistics.median(values):.1f} ({', '.join(f'{v:.1f}' for v in values)}) |")
    now = statistics.median(shares["4 ms when quiet (now)"])
    lines += ["", f"Target (at most 3%): **{'met' if now <= 3.0 else 'NOT met'}** ({now:.1f}%).", "", "What is left is mostly JACK's: each rtmidi port is a JACK client of its own whose process "
              "thread wakes every period (about 1.2% of a core each at -p 64 here), and the internal clock (0.5%).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return section_main(__doc__, HEADING, run, "1 round of 3 s", argv)


if __name__ == "__main__":
    raise SystemExit(main())
