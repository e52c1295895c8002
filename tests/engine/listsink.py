"""A sink that keeps what agents play in a list, and a driver that plays a session like the
offline runner does (player messages up to a tick, then the tick), for agent tests."""

from __future__ import annotations

from dataclasses import dataclass

import mido

from live.engine.agent import Agent, Out
from live.engine.session import Session


@dataclass
class Sent:
    tick: int
    seq: int
    agent: str
    msg: mido.Message


class ListSink:
    """Keeps every message played, in (tick, order of play). ``cancel`` does what the real sinks
    do: drops the agent's messages at or after ``tick`` (not sent yet: a cancel comes with a
    player's message, before that tick's messages leave) and ends its sounding notes there.
    It never adds a note-off of its own otherwise, so an agent that forgets one is caught."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.cancels: list[tuple[str, int]] = []
        self._seq = 0

    def play(self, agent: Agent, out: Out) -> None:
        self._seq += 1
        self.sent.append(Sent(out.tick, self._seq, agent.name, out.msg))

    def cancel(self, agent: Agent, tick: int) -> None:
        self.cancels.append((agent.name, tick))
        self.sent = [s for s in self.sent if s.agent != agent.name or s.tick < tick]
        for channel, note in sorted(sounding(self.of(agent.name))):
            self._seq += 1
            self.sent.append(Sent(tick, self._seq, agent.name, mido.Message("note_off", channel=channel, note=note)))

    def of(self, name: str) -> list[Sent]:
        """``name``'s messages in the order they leave: by tick, then as played."""
        return sorted((s for s in self.sent if s.agent == name), key=lambda s: (s.tick, s.seq))

    def note_ons(self, name: str) -> list[Sent]:
        return [s for s in self.of(name) if s.msg.type == "note_on" and s.msg.velocity > 0]


def sounding(sent: list[Sent]) -> set[tuple[int, int]]:
    """(channel, note) of the notes left sounding by ``sent`` (in sending order)."""
    on: set[tuple[int, int]] = set()
    for s in sent:
        key = (s.msg.channel, s.msg.note)
        if s.msg.type == "note_on" and s.msg.velocity > 0:
            on.add(key)
        elif s.msg.type in ("note_on", "note_off"):
            on.discard(key)
    return on


def pairing_errors(sent: list[Sent]) -> list[str]:
    """What is wrong with ``sent``'s notes: a note-on of a sounding note, a note-off of a silent
    one, a note left sounding at the end. Empty when every note-on has exactly one note-off."""
    on: dict[tuple[int, int], int] = {}
    errors = []
    for s in sent:
        key = (s.msg.channel, s.msg.note)
        if s.msg.type == "note_on" and s.msg.velocity > 0:
            if key in on:
                errors.append(f"tick {s.tick}: note-on {key} while it sounds since {on[key]}")
            on[key] = s.tick
        elif s.msg.type in ("note_on", "note_off") and on.pop(key, None) is None:
            errors.append(f"tick {s.tick}: note-off {key} of a note not sounding")
    errors += [f"{key} left sounding since tick {t}" for key, t in on.items()]
    return errors


def drive(session: Session, end: int, player: list[tuple[int, mido.Message]] = (), start: int = 0) -> None:
    """Ticks ``start``..``end - 1``, the player's messages delivered before their tick (as offline)."""
    pending = sorted(player, key=lambda item: item[0])
    i = 0
    for tick in range(start, end):
        while i < len(pending) and pending[i][0] <= tick:
            session.player(*pending[i])
            i += 1
        session.tick(tick)


def chord(tick: int, end: int, pitches: list[int], channel: int = 0) -> list[tuple[int, mido.Message]]:
    """The player holding ``pitches`` from ``tick`` to ``end``."""
    return [(tick, mido.Message("note_on", channel=channel, note=p, velocity=80)) for p in pitches] + [
        (end, mido.Message("note_off", channel=channel, note=p)) for p in pitches
    ]
