"""Ableton Link: the daemon's clock against a peer in the same session (``--clock link``).

    .venv/bin/python -m benchmarks.link             # 20 s measured
    .venv/bin/python -m benchmarks.link --quick     # 4 s
    .venv/bin/python -m benchmarks.link --update benchmarks/RESULTS.md

The session runs in a private network namespace (``harness.link_session``: loopback only). A
Link peer starts the session and moves its tempo to 97 BPM; after one bar, every tick the clock
emits is compared with the peer's beat line (modulo a bar: Link shares the phase, not the beat
count). Positive errors: the clock's tick came late.
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks import section_main

HEADING = "## Ableton Link: phase against a peer"


def run(quick: bool = False, log=print) -> str:
    from harness.link_session import in_private_network

    seconds = 4.0 if quick else 20.0
    try:
        out = in_private_network(seconds)
    except (RuntimeError, OSError) as err:
        return f"{HEADING}\n\nNot measured: {err}\n"
    errors = np.array(out["phase_errors_ms"])
    size = np.abs(errors)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    log(f"link: {len(errors)} ticks, |error| p50 {np.median(size):.3f} ms, p99 {np.percentile(size, 99):.3f} ms")
    lines = [
        HEADING, "",
        f"`python -m benchmarks.link{' --quick' if quick else ''}` on {when}, load average {load}. A Link peer and "
        f"the daemon's LinkClock in one session (LinkPython-extern), in a private network namespace; the peer starts "
        f"the session and sets 97 BPM; {seconds:g} s of ticks measured after one bar. Target: the peer's tempo within one "
        "bar, every tick within 1 ms of the peer's beat line (p99).", "",
        "| ticks | clock's tempo after a bar (BPM) | phase error p50 / p99 / max (ms, abs) | mean (ms, signed) | bar lines shared | tempo knob moves the peer | peer's stop stops the clock |",
        "|---|---|---|---|---|---|---|",
        f"| {len(errors)} | {out['bpm_after_a_bar']:.3f} | {np.median(size):.3f} / {np.percentile(size, 99):.3f} / {size.max():.3f} | "
        f"{errors.mean():+.3f} | {'yes' if out['bar_phase_of_bar_ticks'] and all(abs(p) < 0.01 or abs(p - 4) < 0.01 for p in out['bar_phase_of_bar_ticks']) else 'no'} | "
        f"{'yes' if abs(out['peer_bpm_after_knob'] - 110) < 0.01 else 'no'} ({out['peer_bpm_after_knob']:.2f}) | "
        f"{'yes' if not out['running_after_peer_stop'] else 'no'} |",
        "",
        "The error is the clock's own: both peers read one Link clock in one process, so network "
        "latency plays no part; between machines Link adds its own estimate of each peer's clock offset.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return section_main(__doc__, HEADING, run, "4 s measured", argv)


if __name__ == "__main__":
    raise SystemExit(main())
