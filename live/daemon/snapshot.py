"""The daemon's state as the panel sees it: one immutable :class:`~live.protocol.Snapshot`,
assembled on the loop thread (``Daemon.run`` refreshes it while someone is watching)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import mido

from live.protocol import RollNote, Snapshot

if TYPE_CHECKING:
    from live.daemon.loop import Daemon


ROLL_NOTES = 512  # notes kept for the panel's piano roll
LOG_LINES = 50  # lines kept for the panel's log pane


class Roll:
    """The notes of the panel's piano roll: the player's (-1) and each agent's (its index), in
    ticks, the latest ``ROLL_NOTES`` of them."""

    def __init__(self) -> None:
        self.notes: deque[list] = deque(maxlen=ROLL_NOTES)  # [start, end or None, pitch, who]
        self._open: dict[tuple[int, int, int], list] = {}  # (who, channel, pitch) -> its entry

    def played(self, who: int, tick: int, msg: mido.Message) -> None:
        """``who`` played ``msg`` at ``tick`` (anything but a note is passed over)."""
        if msg.type not in ("note_on", "note_off"):
            return
        key = (who, msg.channel, msg.note)
        entry = self._open.pop(key, None)
        if entry is not None:
            entry[1] = tick
        if msg.type == "note_on" and msg.velocity > 0:
            entry = [tick, None, msg.note, who]
            self.notes.append(entry)
            self._open[key] = entry

    def cut(self, who: int, tick: int) -> None:
        """Everything ``who`` has sounding ends at ``tick`` (a cancel)."""
        for key in [k for k in self._open if k[0] == who]:
            self._open.pop(key)[1] = tick

    def view(self) -> tuple[RollNote, ...]:
        return tuple(RollNote(s, e, p, w) for s, e, p, w in self.notes)


def make_snapshot(daemon: Daemon) -> Snapshot:
    """The snapshot of ``daemon`` now (call on its loop thread)."""
    clock = daemon.clock
    tick = max(clock.tick, 0) if clock is not None else 0
    position = clock.position(tick) if clock is not None else (0, 0, 0)
    stats = [s.stats() for s in daemon.schedulers]
    session = daemon.session
    learning = None
    if daemon.learning is not None:
        learning = f"CC {daemon.learning}: pick the parameter it steers"
    elif daemon.options.learn:
        learning = "move a control to learn it"
    return Snapshot(
        tick=tick,
        bar=position[0] + 1,
        beat=position[1] + 1,
        step=position[2] + 1,
        bpm=float(clock.bpm or 0.0) if clock is not None else daemon.options.bpm,
        running=bool(clock is not None and clock.running),
        clock_source=daemon.options.clock,
        clock_locked=bool(clock is not None and clock.locked),
        clock_waiting=getattr(clock, "waiting_for", None),
        backend=daemon.backend.name if daemon.backend is not None else "",
        inputs=tuple(p.name for p in daemon.inputs),
        outputs=tuple(p.name for p in daemon.outputs),
        clock_port=daemon.options.clock_port,
        recording=daemon.recorder.path if daemon.recorder.on else None,
        agents=session.agent_views() if session is not None else (),
        roll=daemon.roll.view(),
        notes_in=daemon.counters.notes_in,
        notes_out=sum(s.ledger.notes_on for s in daemon.schedulers),
        late=sum(st.late for st in stats),
        worst_late_ms=max((st.worst_lateness for st in stats), default=0.0) * 1e3,
        dropped=daemon.dropped,
        step_ms=max((a.step_seconds for a in session.agents), default=0.0) * 1e3 if session is not None else 0.0,
        log=tuple(daemon.log_lines),
        learning=learning,
    )
