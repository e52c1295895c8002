"""Ableton Link: the daemon as one peer of a Link session (``--clock link``).

Link (https://ableton.github.io/link) keeps a shared tempo, a shared beat timeline and, with
start/stop sync, a shared transport among the apps on a network. :class:`LinkClock` is the
internal clock (its deadlines, its thread, its catching up) steered by the session:

- a follower thread reads the session's state every ``FOLLOW_SECONDS`` and re-anchors the tick
  line so that song position ``n`` falls at Link beat ``origin + n / 24``: the tempo and the
  beat phase are the session's, and bar lines (multiples of the quantum, one bar of the time
  signature) are the session's bar lines;
- with start/stop sync, the clock starts when the session starts playing (song position 0 on
  the session's next bar line) and stops when it stops; ``start()`` asks the session to play
  (every peer starts on the next bar), ``stop()`` asks it to stop;
- the tempo knob and ``set_bpm`` set the session's tempo: every peer follows.

Nothing runs in Link's own threads: the binding's callbacks are not used. Link's clock is read
beside ``perf_counter`` on every pass, so its offset (they are different clocks) is never stale.

Link is GPL-licensed, so it is an optional extra: ``pip install "magenta-live[link]"`` brings the
binding (``LinkPython-extern``, imported as ``link``).
"""

from __future__ import annotations

import math
import threading
import time as _time
from typing import Any

from live.clock.base import TICKS_PER_QUARTER, TempoAnchor, bpm_of, check_bpm, log, seconds_per_tick
from live.clock.internal import InternalClock
from live.errors import BackendError

FOLLOW_SECONDS = 0.01
"""How often the session's tempo and phase are read (seconds)."""
PHASE_TOLERANCE_TICKS = 0.02
"""A drift from the session's beat line larger than this (ticks; 0.02 tick is 0.4 ms at 120 BPM)
re-anchors the clock."""
INSTALL_HINT = 'Ableton Link needs its binding: pip install "magenta-live[link]" (LinkPython-extern; Link is GPL)'


def load_link() -> Any:
    """The Link binding module, or BackendError saying how to get it."""
    try:
        import link
    except ImportError as err:
        raise BackendError(INSTALL_HINT) from err
    if not hasattr(link, "Link"):
        raise BackendError(f"the module 'link' found is not Ableton Link's binding; {INSTALL_HINT}")
    return link


class LinkClock(InternalClock):
    """The internal clock, following (and steering) an Ableton Link session (``follows_session``:
    the daemon records the session's tempo changes).

    Args:
        bpm: the tempo proposed to the session if it has no other peer yet.
        beats_per_bar, beat_unit: the time signature; the quantum is one bar, in quarter notes.
        start_stop_sync: follow and drive the session's transport (Link's start/stop sync).
        Other keyword arguments go to :class:`InternalClock`.
    """

    follows_session = True

    def __init__(self, bpm: float = 120.0, beats_per_bar: int = 4, *, beat_unit: int = 4,
                 start_stop_sync: bool = True, **kwargs: Any) -> None:
        super().__init__(bpm, beats_per_bar, beat_unit=beat_unit, **kwargs)
        module = load_link()
        self.quantum = beats_per_bar * 4.0 / beat_unit  # quarter notes per bar
        self._link = module.Link(float(check_bpm(bpm)))
        self._link.startStopSyncEnabled = bool(start_stop_sync)
        self._link.enabled = True
        self._origin = 0.0  # the Link beat of song position 0 (a bar line)
        self._was_playing = False
        self._transport = threading.Lock()  # start/stop from the daemon and from the session, one at a time
        self._leaving = False
        self.reanchors = 0
        self._stop_follow = threading.Event()
        self._follower = threading.Thread(target=self._follow, name="live-link-follow", daemon=True)
        self._follower.start()

    # -- the session --------------------------------------------------------------------------

    @property
    def peers(self) -> int:
        """Other apps in the Link session."""
        return int(self._link.numPeers())

    def _times(self) -> tuple[float, int]:
        """(perf_counter seconds, Link microseconds) read together."""
        before = _time.perf_counter()
        micros = self._link.clock().micros()
        return (before + _time.perf_counter()) / 2, micros

    def _perf_of(self, micros: int, now: tuple[float, int]) -> float:
        return now[0] + (micros - now[1]) / 1e6

    def session_beat(self, when: float | None = None) -> float:
        """The session's beat (quarter notes, phase-aligned to the quantum) at perf_counter time
        ``when`` (default now)."""
        now = self._times()
        micros = now[1] if when is None else round(now[1] + (when - now[0]) * 1e6)
        return float(self._link.captureAppSessionState().beatAtTime(micros, self.quantum))

    @property
    def session_bpm(self) -> float:
        return float(self._link.captureAppSessionState().tempo())

    # -- transport and tempo ------------------------------------------------------------------

    def start(self, at: float | None = None) -> None:
        """Start on the session's next bar line: if the session is not playing (or has no
        start/stop sync), ask it to play from there; every synced peer starts with us."""
        with self._transport:
            now = self._times()
            state = self._link.captureAppSessionState()
            if self._link.startStopSyncEnabled and not state.isPlaying():
                state.setIsPlayingAndRequestBeatAtTime(True, now[1], 0.0, self.quantum)
                self._link.commitAppSessionState(state)
                state = self._link.captureAppSessionState()
            self._start_at_bar(state, now)

    def resume(self, at: float | None = None) -> None:
        """Link has no "continue" from an arbitrary position: start again on the next bar line."""
        self.start(at)

    def _start_at_bar(self, state: Any, now: tuple[float, int]) -> None:
        begin = state.timeForIsPlaying() if state.isPlaying() else now[1]
        first = state.beatAtTime(max(begin, now[1]), self.quantum)
        origin = math.ceil(first / self.quantum - 1e-9) * self.quantum  # the next bar line
        self._origin = origin
        self._was_playing = bool(state.isPlaying())
        super().start(at=self._perf_of(state.timeAtBeat(origin, self.quantum), now))

    def stop(self) -> None:
        """Stop; with start/stop sync the session stops too (not when the daemon is only leaving:
        the rest of the band plays on)."""
        with self._transport:
            if self._link.startStopSyncEnabled and self._running and not self._leaving:
                state = self._link.captureAppSessionState()
                if state.isPlaying():
                    state.setIsPlaying(False, self._link.clock().micros())
                    self._link.commitAppSessionState(state)
                self._was_playing = False
            super().stop()

    def set_bpm(self, bpm: float) -> None:
        """Set the session's tempo (every peer follows) and ours."""
        check_bpm(bpm)
        state = self._link.captureAppSessionState()
        state.setTempo(float(bpm), self._link.clock().micros())
        self._link.commitAppSessionState(state)
        super().set_bpm(bpm)

    def close(self) -> None:
        """Stop following, leave the session (which plays on), and end the clock."""
        self._leaving = True
        self._stop_follow.set()
        if self._follower is not threading.current_thread():
            self._follower.join(timeout=2.0)
        super().close()
        self._link.enabled = False

    # -- following ---------------------------------------------------------------------------

    def _follow(self) -> None:
        while not self._stop_follow.wait(FOLLOW_SECONDS):
            try:
                self._follow_once()
            except Exception:  # noqa: BLE001 - the clock keeps its last tempo and phase
                log.exception("following the Link session failed; the clock keeps its tempo and phase")

    def _follow_once(self) -> None:
        now = self._times()
        state = self._link.captureAppSessionState()
        playing = bool(state.isPlaying())
        if self._link.startStopSyncEnabled and playing != self._was_playing:
            with self._transport:
                state = self._link.captureAppSessionState()
                playing = bool(state.isPlaying())
                if playing == self._was_playing:  # the daemon's own start or stop, just now
                    return
                self._was_playing = playing
                if playing and not self._running:
                    self._start_at_bar(state, now)
                elif not playing and self._running:
                    InternalClock.stop(self)
            return
        if not self._running:
            return
        tempo = float(state.tempo())
        spt = seconds_per_tick(tempo)
        wanted = (state.beatAtTime(now[1], self.quantum) - self._origin) * TICKS_PER_QUARTER
        with self._cond:
            anchor = self._anchor
            drift = anchor.tick_at(now[0]) - wanted
            if abs(drift) <= PHASE_TOLERANCE_TICKS and abs(anchor.spt - spt) <= spt * 1e-6:
                return
            self._anchor = TempoAnchor(now[0], wanted, spt)
            self._generation += 1
            self.reanchors += 1
            self._cond.notify_all()
        if abs(anchor.spt - spt) > spt * 1e-6:
            log.info("Link session tempo %.2f BPM (was %.2f)", tempo, bpm_of(anchor.spt))
