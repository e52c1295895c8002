"""The daemon: ports, clock, output scheduler, note ledger and the agents wired together.

``loop`` holds :class:`Daemon` (its life cycle and the loop that reads input, ticks and
commands), ``commands`` carries out commands, ``snapshot`` assembles the panel's view,
``recorder`` keeps the recording. See docs/DAEMON.md and docs/ARCHITECTURE.md.
"""

from live.daemon.loop import (
    CLOCK_OUT_SPIN_SECONDS,
    IDLE_WAIT_SECONDS,
    PORT_CLOSE_SECONDS,
    REPORT_SECONDS,
    SNAPSHOT_SECONDS,
    SWITCH_INTERVAL_SECONDS,
    WARM_SECONDS,
    Counters,
    Daemon,
    DaemonOptions,
)

__all__ = [
    "CLOCK_OUT_SPIN_SECONDS", "IDLE_WAIT_SECONDS", "PORT_CLOSE_SECONDS", "REPORT_SECONDS", "SNAPSHOT_SECONDS",
    "SWITCH_INTERVAL_SECONDS", "WARM_SECONDS", "Counters", "Daemon", "DaemonOptions",
]
