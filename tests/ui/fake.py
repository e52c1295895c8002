"""A stand-in daemon for panel tests: snapshots built by hand, commands recorded."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

from live.protocol import AgentView, Command, RollNote, Snapshot


def agent(name: str = "melody", **kw) -> AgentView:
    values = {"mode": "call-response", "model": "attention_rnn", "state": "listening", "temperature": 1.0,
              "density": 0.5, "channel": 1, "loop": False, "mutate": False, "response_bars": None, "notes_played": 0,
              "step_ms": 1.5}
    values.update(kw)
    return AgentView(name, **values)


def snapshot(**kw) -> Snapshot:
    values = {
        "tick": 400, "bar": 5, "beat": 1, "step": 3, "bpm": 112.0, "running": True, "backend": "jack",
        "inputs": ("magenta-live in",), "outputs": ("magenta-live out",),
        "agents": (agent(), agent("drums", mode="drums", model="drum_kit_rnn", state="playing", channel=10)),
        "roll": (RollNote(330, 360, 64, -1), RollNote(370, None, 72, 0)),
        "notes_in": 12, "notes_out": 30, "late": 0, "worst_late_ms": 0.4, "dropped": 0, "step_ms": 1.25,
        "log": ("melody: call-response with attention_rnn",),
    }
    values.update(kw)
    return Snapshot(**values)


class FakeDaemon:
    """``snapshot()`` returns ``snap``; ``send_command`` records; ``run`` waits for ``stop``
    (or runs ``body`` instead, when given)."""

    def __init__(self, snap: Snapshot | None = None, body: Callable[[FakeDaemon], None] | None = None) -> None:
        self.snap = snap or snapshot()
        self.commands: list[Command] = []
        self.body = body
        self.stopped = threading.Event()
        self.ran = threading.Event()
        self.snapshots = 0

    def snapshot(self) -> Snapshot:
        self.snapshots += 1
        return self.snap

    def send_command(self, command: Command) -> None:
        self.commands.append(command)
        if command.name == "temperature" and command.delta:
            agents = tuple(
                replace(a, temperature=round(a.temperature + command.delta, 2))
                if command.agent in (None, i) else a
                for i, a in enumerate(self.snap.agents)
            )
            self.snap = replace(self.snap, agents=agents)

    def run(self) -> None:
        self.ran.set()
        if self.body is not None:
            self.body(self)
        else:
            self.stopped.wait()

    def stop(self) -> None:
        self.stopped.set()
