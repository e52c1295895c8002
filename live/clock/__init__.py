"""Clock sources and what they drive: integer ticks inside (24 per quarter note, 6 per 16th
step), perf_counter seconds only at the edge.

- :class:`InternalClock`: the daemon as master, absolute deadlines, adjustable tempo.
- :class:`MidiClockIn`: follows incoming MIDI clock (0xF8, Start, Stop, Continue, SPP).
- :class:`ManualClock`: advanced by hand on simulated time, for tests and offline runs.
- :class:`MidiClockOut`: a listener that sends MIDI clock for any of them.
"""

from live.clock.base import (
    STEPS_PER_QUARTER,
    TICKS_PER_QUARTER,
    TICKS_PER_STEP,
    TRANSPORT_EVENTS,
    ClockListener,
    ClockSource,
    Position,
    TempoAnchor,
    TimeSignature,
    bpm_of,
    seconds_per_tick,
)
from live.clock.internal import InternalClock, LateStats
from live.clock.manual import ManualClock
from live.clock.midi_in import ClockInStats, FilterStats, MidiClockIn, TempoFilter
from live.clock.midi_out import MidiClockOut

__all__ = [
    "STEPS_PER_QUARTER",
    "TICKS_PER_QUARTER",
    "TICKS_PER_STEP",
    "TRANSPORT_EVENTS",
    "ClockInStats",
    "ClockListener",
    "ClockSource",
    "FilterStats",
    "InternalClock",
    "LateStats",
    "ManualClock",
    "MidiClockIn",
    "MidiClockOut",
    "Position",
    "TempoAnchor",
    "TempoFilter",
    "TimeSignature",
    "bpm_of",
    "seconds_per_tick",
]
