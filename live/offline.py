"""Offline mode: ``magenta-live --input-file call.mid --output-file out.mid``.

The same session logic as the live daemon, on a simulated clock, as fast as it runs: the input
file's channel messages are delivered at their song positions (the file's beats become the
daemon's beats: 24 ticks per quarter note), every tick is given to the session, and what the
agents play is collected by an :class:`OfflineSink`, which orders messages by deadline as the
output scheduler does live and sends them through the real note ledger (a cancel cuts sounding
notes, a re-struck note is ended first, nothing is left sounding at the end). The output file has a track for the
player and one per agent. Same seed and same input give the same file, byte for byte.
"""

from __future__ import annotations

import heapq
import logging
import os

import mido

from live.clock.base import TICKS_PER_QUARTER, seconds_per_tick
from live.engine.agent import Agent, AgentSpec, AgentState, Out
from live.engine.session import Session
from live.errors import MidiFileError
from live.midi_file import read_input_file
from live.midi_io.ledger import NoteLedger
from live.recording import Recording
from live.settings import DAEMON_NUMBERS

log = logging.getLogger("live.offline")

DEFAULT_TAIL_BARS = 8


class OfflineSink:
    """Sends agents' messages through the real note ledger on a simulated clock, into a recording.

    Messages wait in deadline order (their tick plus offset, as positions in ticks);
    ``flush(tick)`` sends everything due by ``tick`` through a :class:`NoteLedger`, whose observer
    writes each message it really sent into the recording at its position: a re-struck note is
    ended first, a cancel ends the agent's sounding notes, and ``finish`` releases every note, as
    live.
    """

    def __init__(self, recording: Recording, bpm: float) -> None:
        self.recording = recording
        self.seconds_per_tick = seconds_per_tick(bpm)
        self.now = 0
        self._heap: list[tuple[float, int, int, Agent, mido.Message]] = []
        self._seq = 0
        self._at = 0.0  # the song position (ticks) of what the ledger is sending
        self.ledger = NoteLedger(_nowhere, None, now=lambda: self._at * self.seconds_per_tick)
        self.ledger.observer = self._record

    @property
    def pending(self) -> int:
        """Messages not yet sent."""
        return len(self._heap)

    def _position(self, out: Out) -> float:
        return out.tick + out.offset / self.seconds_per_tick

    def play(self, agent: Agent, out: Out) -> None:
        position = float(self.now) if out.now else max(self._position(out), float(self.now))
        self._seq += 1
        heapq.heappush(self._heap, (position, self._seq, 0, agent, out.msg))

    def cancel(self, agent: Agent, tick: int) -> None:
        self._heap = [item for item in self._heap if item[3] is not agent]
        heapq.heapify(self._heap)
        self._at = float(tick)
        self.ledger.release(owner=agent)

    def flush(self, tick: int) -> None:
        """Send everything due at or before ``tick`` (plus the fractional positions before ``tick + 1``)."""
        self.now = tick
        while self._heap and self._heap[0][0] < tick + 1:
            position, _, _, agent, msg = heapq.heappop(self._heap)
            self._at = position
            self.ledger.send(msg, agent)

    def _record(self, msg: mido.Message, owner: object) -> None:
        if isinstance(owner, Agent):  # All Notes Off (no owner) is not an agent's note
            self.recording.add(owner.name, self._at, msg)

    def finish(self, tick: int) -> None:
        """Drop what is still pending and end every sounding note at ``tick``."""
        self._heap.clear()
        self._at = float(tick)
        self.ledger.release_all()


def _nowhere(msg: mido.Message) -> None:
    """The offline "port": the recording is written by the ledger's observer."""


def run_offline(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    specs: list[AgentSpec],
    seed: int | None = 0,
    bpm: float | None = None,
    tail_bars: int = DEFAULT_TAIL_BARS,
) -> Recording:
    """Play ``input_path`` to the agents of ``specs`` and write what everyone played to ``output_path``.

    Runs until the input has ended and every agent is idle again, or ``tail_bars`` bars after
    the input's end for agents that never stop by themselves (continue, accompaniment).
    ``bpm``: the tempo for the output file (default: the input file's). Returns the recording.
    """
    source = read_input_file(input_path)
    BPM = DAEMON_NUMBERS["bpm"]
    if not bpm and not BPM.low <= source.bpm <= BPM.high:
        raise MidiFileError(f"{os.fspath(input_path)}: its tempo, {source.bpm:.4g} BPM, is outside {BPM.low:g}..{BPM.high:g}; "
                            "give --bpm to play it at another tempo")
    bpm = bpm or source.bpm
    num, den = source.time_signature
    ticks_per_beat = 4 * TICKS_PER_QUARTER // den
    ticks_per_bar = num * ticks_per_beat
    recording = Recording(bpm, source.time_signature)
    recording.add_track("player")
    sink = OfflineSink(recording, bpm)
    session = Session(specs, sink, seed=seed, ticks_per_bar=ticks_per_bar, ticks_per_beat=ticks_per_beat, bpm=bpm)
    for spec in specs:
        recording.add_track(spec.name)
    pending = list(source.messages)
    last = source.end + tail_bars * ticks_per_bar
    tick, i = 0, 0
    while tick <= last:
        sink.now = tick  # before the player's messages: harmony they trigger (Out.now) goes out at this tick
        while i < len(pending) and pending[i][0] <= tick:
            at, msg = pending[i]
            recording.add("player", at, msg)
            session.player(at, msg)
            i += 1
        session.tick(tick)
        sink.flush(tick)
        if i >= len(pending) and tick > source.end and all(a.state == AgentState.IDLE for a in session.agents) and not sink.pending:
            break
        tick += 1
    session.stop(tick)
    sink.finish(tick)
    recording.write(output_path)
    return recording
