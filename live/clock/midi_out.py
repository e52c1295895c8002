"""MIDI clock out: make the daemon the master (``--clock-out PORT``).

:class:`MidiClockOut` is a clock listener: register it on a clock (normally the
:class:`~live.clock.internal.InternalClock`) and it sends a Clock message (0xF8) for every tick
and Start, Stop, Continue and Song Position Pointer for the transport events. The internal clock
calls ``on_tick`` at the tick's deadline, so the pulse is sent at once, in the clock's thread;
``send`` must therefore be quick (a port's send, which hands the bytes to the driver).
"""

from __future__ import annotations

from typing import Callable

import mido

from live.clock.base import TICKS_PER_STEP

# Built once: nothing is allocated per tick.
CLOCK = mido.Message("clock")
START = mido.Message("start")
STOP = mido.Message("stop")
CONTINUE = mido.Message("continue")
MAX_SONG_POSITION = 16383  # 14 bits of 16ths


class MidiClockOut:
    """Sends MIDI clock for the ticks and transport events of the clock it listens to.

    Args:
        send: called with each mido message to send (a port's ``send``).
        song_position: also send a Song Position Pointer for "position" events (a locate), so a
            slave follows jumps; the position is rounded down to a 16th (SPP's resolution).

    Attributes:
        sent: messages sent so far.
    """

    def __init__(self, send: Callable[[mido.Message], object], *, song_position: bool = True) -> None:
        self._send = send
        self._song_position = song_position
        self.sent = 0

    def on_tick(self, tick: int, time: float) -> None:
        self._send(CLOCK)
        self.sent += 1

    def on_transport(self, event: str, tick: int) -> None:
        if event == "start":
            message = START
        elif event == "stop":
            message = STOP
        elif event in ("continue", "join"):  # joined a song already playing: downstream continues
            message = CONTINUE
        elif event == "position" and self._song_position:
            message = mido.Message("songpos", pos=min(tick // TICKS_PER_STEP, MAX_SONG_POSITION))
        else:
            return
        self._send(message)
        self.sent += 1
