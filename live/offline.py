"""Offline mode: ``magenta-live --input-file call.mid --output-file out.mid``.

The same session logic as the live daemon, on a simulated clock, as fast as it runs: the input
file's channel messages are delivered at their song positions (the file's beats become the
daemon's beats: 24 ticks per quarter note), every tick is given to the session, and what the
agents play is collected by an :class:`OfflineSink`, which does what the output scheduler and
the note ledger do live (messages in deadline order, a cancel cuts sounding notes, a re-struck
note is ended first, nothing is left sounding at the end). The output file has a track for the
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
from live.midi_file import read_input_file
from live.recording import Recording

log = logging.getLogger("live.offline")

DEFAULT_TAIL_BARS = 8


class OfflineSink:
    """Collects agents' messages like the live scheduler and ledger would send them.

    ``flush(tick)`` "sends" everything due by ``tick`` into the recording, in deadline order.
    """

    def __init__(self, recording: Recording, bpm: float) -> None:
        self.recording = recording
        self.seconds_per_tick = seconds_per_tick(bpm)
        self.now = 0
        self._heap: list[tuple[float, int, int, Agent, mido.Message]] = []
        self._seq = 0
        self._sounding: dict[tuple[int, int], Agent] = {}  # (channel, note) -> agent that sounds it

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
        for key, owner in list(self._sounding.items()):
            if owner is agent:
                self._send(float(tick), agent, mido.Message("note_off", channel=key[0], note=key[1], velocity=0))

    def flush(self, tick: int) -> None:
        """Send everything due at or before ``tick`` (plus the fractional positions before ``tick + 1``)."""
        self.now = tick
        while self._heap and self._heap[0][0] < tick + 1:
            position, _, _, agent, msg = heapq.heappop(self._heap)
            self._send(position, agent, msg)

    def _send(self, position: float, agent: Agent, msg: mido.Message) -> None:
        if msg.type in ("note_on", "note_off"):
            key = (msg.channel, msg.note)
            if msg.type == "note_on" and msg.velocity > 0:
                if key in self._sounding:  # re-struck: end it first, as the ledger does
                    self.recording.add(self._sounding[key].name, position, mido.Message("note_off", channel=key[0], note=key[1]))
                self._sounding[key] = agent
            elif self._sounding.pop(key, None) is None:
                return  # a note-off for a note that is not sounding
        self.recording.add(agent.name, position, msg)

    def finish(self, tick: int) -> None:
        """Drop what is still pending and end every sounding note at ``tick``."""
        self._heap.clear()
        for key, agent in list(self._sounding.items()):
            self._send(float(tick), agent, mido.Message("note_off", channel=key[0], note=key[1], velocity=0))


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
