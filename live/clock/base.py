"""What every clock source shares: tick units, the listener protocol, bar/beat arithmetic.

Time inside magenta-live is an integer tick count: 24 ticks per quarter note (MIDI clock's
resolution), 6 ticks per 16th-note step. A *clock source* produces ticks; what it drives (the
engine, the output scheduler, a MIDI clock sender) registers as a *listener*. Seconds appear only
here, at the edge: every tick comes with the ``time.perf_counter`` time at which it is due (or was
received), and :meth:`ClockSource.time_of_tick` predicts when a future tick will be, so that
messages can be scheduled at absolute deadlines.

Listeners are called on the clock's own thread (for :class:`~live.clock.internal.InternalClock`)
or on the thread that feeds the clock (for :class:`~live.clock.midi_in.MidiClockIn`). **A listener
must not block the clock**: it should note the tick, hand work to another thread (a queue, an
event) and return within a few tens of microseconds. A listener that raises is logged and
counted in :attr:`ClockSource.listener_errors`; the clock keeps running (except the
:class:`~live.clock.manual.ManualClock`, where errors propagate to the test that advanced it).
"""

from __future__ import annotations

import logging
import threading
from typing import NamedTuple, Protocol, runtime_checkable

TICKS_PER_QUARTER = 24
"""MIDI clock resolution: 24 pulses (ticks) per quarter note."""
TICKS_PER_STEP = 6
"""One 16th-note step is 6 ticks."""
STEPS_PER_QUARTER = TICKS_PER_QUARTER // TICKS_PER_STEP

TRANSPORT_EVENTS = ("start", "stop", "continue", "position")
"""The transport events a listener can receive in :meth:`ClockListener.on_transport`."""

log = logging.getLogger("live.clock")


@runtime_checkable
class ClockListener(Protocol):
    """Something a clock drives. Both methods must return quickly (see the module docstring)."""

    def on_tick(self, tick: int, time: float) -> None:
        """Tick ``tick`` (song position in ticks since the start) is due now.

        ``time`` is the perf_counter time in seconds at which the tick was due (internal and
        manual clocks) or was received (MIDI clock in).
        """

    def on_transport(self, event: str, tick: int) -> None:
        """A transport change. ``event`` is one of :data:`TRANSPORT_EVENTS`.

        ``tick`` is the song position (in ticks) the next tick will carry: 0 for "start", the
        position where the clock halted for "stop", where it resumes for "continue", and the new
        position for "position" (a locate or a MIDI Song Position Pointer).
        """


class Position(NamedTuple):
    """A musical position, all zero-based: bar, beat within the bar, 16th step within the beat."""

    bar: int
    beat: int
    step: int


def seconds_per_tick(bpm: float) -> float:
    """Seconds between ticks at ``bpm`` quarter notes per minute."""
    return 60.0 / (bpm * TICKS_PER_QUARTER)


def bpm_of(seconds_per_tick_: float) -> float:
    """Quarter notes per minute for a tick interval in seconds."""
    return 60.0 / (seconds_per_tick_ * TICKS_PER_QUARTER)


def check_bpm(bpm: float) -> float:
    """``bpm`` as a float, or ValueError if it is not a usable tempo (1 to 1000 BPM)."""
    value = float(bpm)
    if not 1.0 <= value <= 1000.0:
        raise ValueError(f"tempo must be between 1 and 1000 BPM, got {bpm!r}")
    return value


class TimeSignature(NamedTuple):
    """``beats_per_bar`` beats of a ``beat_unit`` note (4/4, 3/4, 6/8, ...)."""

    beats_per_bar: int = 4
    beat_unit: int = 4

    @property
    def ticks_per_beat(self) -> int:
        """Ticks per beat: 24 for a quarter-note beat, 12 for an eighth."""
        return 4 * TICKS_PER_QUARTER // self.beat_unit

    @property
    def ticks_per_bar(self) -> int:
        return self.beats_per_bar * self.ticks_per_beat

    @classmethod
    def checked(cls, beats_per_bar: int, beat_unit: int = 4) -> "TimeSignature":
        if isinstance(beats_per_bar, bool) or not isinstance(beats_per_bar, int) or not 1 <= beats_per_bar <= 64:
            raise ValueError(f"beats per bar must be an integer from 1 to 64, got {beats_per_bar!r}")
        if beat_unit not in (1, 2, 4, 8, 16):
            raise ValueError(f"beat unit must be 1, 2, 4, 8 or 16 (a note value), got {beat_unit!r}")
        return cls(beats_per_bar, beat_unit)


class TempoAnchor(NamedTuple):
    """Tick times as a straight line from an absolute anchor: tick ``n`` is due at
    ``t0 + (n - n0) * spt`` seconds (perf_counter). ``n0`` may be fractional: after a tempo change
    the anchor is the (fractional) song position at the moment of the change, so the phase is kept.
    Nothing is ever computed as "previous tick + interval", so rounding never accumulates.
    """

    t0: float  # seconds
    n0: float  # ticks
    spt: float  # seconds per tick

    def time_of(self, tick: float) -> float:
        """perf_counter seconds at which ``tick`` is due."""
        return self.t0 + (tick - self.n0) * self.spt

    def tick_at(self, time: float) -> float:
        """The fractional song position (ticks) at perf_counter time ``time``."""
        return self.n0 + (time - self.t0) / self.spt

    def retempo(self, now: float, spt: float) -> "TempoAnchor":
        """The same phase at ``now``, a new tick interval from then on."""
        return TempoAnchor(now, self.tick_at(now), spt)

    def due_at(self, tick: int, time: float) -> "TempoAnchor":
        """The same tempo, re-anchored so that ``tick`` is due at ``time``."""
        return TempoAnchor(time, float(tick), self.spt)


class ClockSource:
    """Base of every clock: listeners, transport state, time signature and position helpers.

    Subclasses set ``_running`` and ``_next_tick`` and call :meth:`_emit_tick` /
    :meth:`_emit_transport`; they implement :attr:`bpm` and :meth:`time_of_tick`.

    Attributes:
        listener_errors: how many times a listener raised (the error is logged).
    """

    propagate_listener_errors = False

    def __init__(self, beats_per_bar: int = 4, beat_unit: int = 4) -> None:
        self._signature = TimeSignature.checked(beats_per_bar, beat_unit)
        self._listeners: tuple[ClockListener, ...] = ()
        self._listeners_lock = threading.Lock()
        self._running = False
        self._next_tick = 0
        self.listener_errors = 0

    # -- listeners ---------------------------------------------------------------------------

    def add_listener(self, listener: ClockListener) -> None:
        """Drive ``listener`` (it gets on_tick and on_transport; see :class:`ClockListener`)."""
        if not isinstance(listener, ClockListener):
            raise TypeError(f"a clock listener needs on_tick(tick, time) and on_transport(event, tick); got {listener!r}")
        with self._listeners_lock:
            if listener not in self._listeners:
                self._listeners = self._listeners + (listener,)

    def remove_listener(self, listener: ClockListener) -> None:
        """Stop driving ``listener`` (no error if it was not registered)."""
        with self._listeners_lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

    @property
    def listeners(self) -> tuple[ClockListener, ...]:
        return self._listeners

    def _emit_tick(self, tick: int, time: float) -> None:
        for listener in self._listeners:  # a snapshot: adding/removing swaps the tuple
            try:
                listener.on_tick(tick, time)
            except Exception as err:  # noqa: BLE001 - a listener's bug must not stop the clock
                self._listener_failed(listener, "on_tick", err)

    def _emit_transport(self, event: str, tick: int) -> None:
        for listener in self._listeners:
            try:
                listener.on_transport(event, tick)
            except Exception as err:  # noqa: BLE001
                self._listener_failed(listener, f"on_transport({event!r})", err)

    def _listener_failed(self, listener: ClockListener, what: str, err: Exception) -> None:
        if self.propagate_listener_errors:
            raise err
        self.listener_errors += 1
        log.error("clock listener %r failed in %s; the clock goes on", listener, what, exc_info=err)

    # -- state -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between start/continue and stop: ticks are being emitted."""
        return self._running

    @property
    def next_tick(self) -> int:
        """The song position (ticks) the next emitted tick will carry."""
        return self._next_tick

    @property
    def tick(self) -> int:
        """The song position of the last tick emitted: always ``next_tick - 1`` (-1 right after a start)."""
        return self._next_tick - 1

    @property
    def bpm(self) -> float:
        """The tempo in quarter notes per minute (the set tempo, or the current estimate)."""
        raise NotImplementedError

    @property
    def seconds_per_tick(self) -> float:
        return seconds_per_tick(self.bpm)

    @property
    def locked(self) -> bool:
        """True when tick times are trustworthy; always True for internal and manual clocks."""
        return True

    def time_of_tick(self, tick: int) -> float:
        """The perf_counter time (seconds) at which ``tick`` is (or was) due.

        Always a finite number. While the clock is stopped, the prediction assumes it resumes
        now (or, for MIDI clock in, at the next incoming pulse), so it moves with time.
        """
        raise NotImplementedError

    def tick_at(self, time: float) -> float:
        """The fractional song position (ticks) at perf_counter ``time`` (seconds), by the same
        line :meth:`time_of_tick` predicts: where a player's message stamped ``time`` falls."""
        last = max(self.tick, 0)
        return last + (time - self.time_of_tick(last)) / self.seconds_per_tick

    # -- time signature ------------------------------------------------------------------------

    @property
    def time_signature(self) -> TimeSignature:
        return self._signature

    @time_signature.setter
    def time_signature(self, value: tuple[int, int]) -> None:
        self._signature = TimeSignature.checked(*value)

    @property
    def beats_per_bar(self) -> int:
        return self._signature.beats_per_bar

    @property
    def ticks_per_beat(self) -> int:
        return self._signature.ticks_per_beat

    @property
    def ticks_per_bar(self) -> int:
        return self._signature.ticks_per_bar

    def position(self, tick: int | None = None) -> Position:
        """Bar, beat and 16th step (all zero-based) of ``tick`` (default: the last emitted tick,
        or 0 before any). Bars are counted from tick 0 in the current time signature."""
        if tick is None:
            tick = max(self.tick, 0)
        if tick < 0:
            raise ValueError(f"song position must be >= 0 ticks, got {tick}")
        bar, in_bar = divmod(tick, self.ticks_per_bar)
        beat, in_beat = divmod(in_bar, self.ticks_per_beat)
        return Position(bar, beat, in_beat // TICKS_PER_STEP)

    def tick_of(self, bar: int, beat: int = 0, step: int = 0) -> int:
        """The song position in ticks of a zero-based bar, beat and 16th step."""
        return bar * self.ticks_per_bar + beat * self.ticks_per_beat + step * TICKS_PER_STEP

    def is_step(self, tick: int) -> bool:
        """True if ``tick`` starts a 16th-note step."""
        return tick % TICKS_PER_STEP == 0


def check_tick(tick: int) -> int:
    """``tick`` if it is a non-negative integer song position, else ValueError."""
    if isinstance(tick, bool) or not isinstance(tick, int) or tick < 0:
        raise ValueError(f"song position must be an integer >= 0 ticks, got {tick!r}")
    return tick
