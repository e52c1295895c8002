"""A Link peer and a LinkClock in one session, run inside a private network namespace (loopback
only): ``in_private_network()`` runs it and returns what the clock did. Shared by
tests/clock/test_link.py and benchmarks/link.py.

The peer starts the session, moves its tempo to 97 BPM, then (after ``measure`` seconds) the
clock's tempo knob moves it to 110 and the peer stops the session. Each tick the clock emitted
in the measured stretch is compared with the peer's beat line: ``phase_errors_ms`` is the signed
difference (positive: the clock's tick came late) in milliseconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import link

from live.clock.link import LinkClock


class Ticks:
    def __init__(self) -> None:
        self.ticks: list[tuple[int, float]] = []
        self.transport: list[tuple[str, int]] = []

    def on_tick(self, tick: int, when: float) -> None:
        self.ticks.append((tick, when))

    def on_transport(self, event: str, tick: int) -> None:
        self.transport.append((event, tick))


def main(measure: float = 4.0) -> None:
    peer = link.Link(120.0)
    peer.startStopSyncEnabled = True
    peer.enabled = True
    ticks = Ticks()
    clock = LinkClock(120.0, 4)
    clock.add_listener(ticks)
    out: dict = {}
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline and (clock.peers == 0 or peer.numPeers() == 0):
        time.sleep(0.02)
    out["peers"] = clock.peers

    def peer_state(change) -> None:
        state = peer.captureAppSessionState()
        change(state, peer.clock().micros())
        peer.commitAppSessionState(state)

    # the peer starts the session: the clock starts on the session's next bar line
    peer_state(lambda s, now: s.setIsPlayingAndRequestBeatAtTime(True, now, 0.0, 4.0))
    time.sleep(0.3)
    out["running_after_peer_start"] = clock.running
    # the peer moves the tempo to 97 BPM: followed within a bar
    changed = time.perf_counter()
    peer_state(lambda s, now: s.setTempo(97.0, now))
    time.sleep(60 / 97 * 4 + measure)  # one bar at 97 BPM, then the measured stretch
    after = [(n, t) for n, t in ticks.ticks if t >= changed + 60 / 97 * 4]
    out["bpm_after_a_bar"] = 60 / ((after[-1][1] - after[0][1]) / (after[-1][0] - after[0][0]) * 24) if len(after) > 1 else None
    # phase: every tick against the peer's beat line (ms; positive: the tick came late)
    errors, bar_phases = [], []
    for n, t in after:
        micros = clock._times()[1] + round((t - time.perf_counter()) * 1e6)
        beat = peer.captureAppSessionState().beatAtTime(micros, 4.0)
        # Link shares the phase within the quantum, not the beat count: each app's beats may
        # differ by whole bars, so the difference is taken modulo a bar
        off = (beat - (clock._origin + n / 24) + 2.0) % 4.0 - 2.0
        errors.append(off * 60 / 97 * 1e3)
        if n % 96 == 0:
            bar_phases.append(round(beat % 4.0, 3))
    out["phase_errors_ms"] = errors
    out["bar_phase_of_bar_ticks"] = bar_phases
    # our tempo knob moves the session
    clock.set_bpm(110.0)
    time.sleep(0.5)
    out["peer_bpm_after_knob"] = peer.captureAppSessionState().tempo()
    # the peer stops the session: the clock stops
    peer_state(lambda s, now: s.setIsPlaying(False, now))
    time.sleep(0.3)
    out["running_after_peer_stop"] = clock.running
    out["transport"] = [e for e, _ in ticks.transport]
    clock.close()
    peer.enabled = False
    print(json.dumps(out))


NAMESPACE = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec \"$0\" -m harness.link_session \"$1\""


def in_private_network(measure: float = 4.0) -> dict:
    """Run the session in a new network namespace (``unshare -n``, loopback only: Link never
    sees a real network); RuntimeError with the reason if it cannot."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is missing (util-linux, iproute2): it makes the private network")
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(["unshare", "-n", "sh", "-c", NAMESPACE, sys.executable, str(measure)], cwd=repo,
                          capture_output=True, text=True, timeout=120 + measure)
    if done.returncode != 0:
        raise RuntimeError(f"the Link session failed (exit {done.returncode}): {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)
