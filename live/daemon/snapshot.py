"""The daemon's state as the panel sees it: one immutable :class:`~live.protocol.Snapshot`,
assembled on the loop thread (``Daemon.run`` refreshes it while someone is watching)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from live.protocol import Snapshot

if TYPE_CHECKING:
    from live.daemon.loop import Daemon


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
        backend=daemon.backend.name if daemon.backend is not None else "",
        inputs=tuple(p.name for p in daemon.inputs),
        outputs=tuple(p.name for p in daemon.outputs),
        clock_port=daemon.options.clock_port,
        recording=daemon.recorder.path if daemon.recorder.on else None,
        agents=session.agent_views() if session is not None else (),
        roll=session.roll_view() if session is not None else (),
        notes_in=daemon.counters.notes_in,
        notes_out=sum(s.ledger.notes_on for s in daemon.schedulers),
        late=sum(st.late for st in stats),
        worst_late_ms=max((st.worst_lateness for st in stats), default=0.0) * 1e3,
        dropped=sum(p.dropped for p in daemon.inputs),
        step_ms=max((a.step_seconds for a in session.agents), default=0.0) * 1e3 if session is not None else 0.0,
        log=tuple(session.messages) if session is not None else (),
        learning=learning,
    )
