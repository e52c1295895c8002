"""The real daemon with its panel, in a real terminal (tmux): what the screen shows, and that
keys act. A JACK client plays notes into the daemon; tmux send-keys presses keys;
capture-pane reads the screen."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import mido
import pytest

from tests.jack import player, wait_for_port

WIDTH, HEIGHT = 100, 40
WAIT_SECONDS = 60.0  # how long a screen may take to show something (model loading, a busy machine)


class Tmux:
    """A private tmux server (its own socket) running one command in a WIDTH x HEIGHT window."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        self.socket = f"magenta-live-test-{uuid.uuid4().hex[:8]}"
        env = {**env, "TERM": "xterm-256color"}
        self.tmux(
            "new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), "-s", "panel",
            "sh", "-c", " ".join(_quote(c) for c in command) + "; echo $? > exit-status; sleep 600",
            env=env, cwd=cwd,
        )

    def tmux(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=30,
                             check=False)
        assert out.returncode == 0, f"tmux {' '.join(args)}: {out.stderr}"
        return out.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "panel")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "panel", *keys)

    def wait_for(self, check: Callable[[str], object], what: str) -> str:
        """Poll the screen until ``check(screen)`` is true; fail (showing the screen) after WAIT_SECONDS."""
        deadline = time.perf_counter() + WAIT_SECONDS
        while True:
            screen = self.screen()
            if check(screen):
                return screen
            if time.perf_counter() > deadline:
                pytest.fail(f"the panel never showed {what}; the screen:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30, check=False)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def knob(screen: str, label: str, agent: int = 0) -> float | None:
    """The value after the knob bar ``label`` ("temp", "dens", "lock", "top-p") on the agent's row (None: not shown)."""
    values = re.findall(rf"{label} [█▏▎▍▌▋▊▉·]+ +(\d+\.\d\d)", screen)
    return float(values[agent]) if len(values) > agent else None


def position(screen: str) -> tuple[int, int, int] | None:
    """(bar, beat, step) from the header."""
    found = re.search(r"bar (\d+)\.(\d+)\.(\d+)", screen)
    return tuple(map(int, found.groups())) if found else None


def player_lane_has_notes(screen: str) -> bool:
    """Some note drawn between the player lane's title and the agents lane's."""
    lines = screen.splitlines()
    starts = {line.split()[1]: i for i, line in enumerate(lines) if line.startswith("── ")}
    return any("█" in line for line in lines[starts["player"] + 1:starts["agents"]])


@pytest.fixture
def tmux_available() -> None:
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux must be installed in CI (.ci/run installs it)")
        pytest.skip("tmux is not installed")


def test_the_panel_shows_the_daemon_and_keys_act(tmux_available, jack_server, melody_model_file, tmp_path):
    command = [sys.executable, "-m", "live.cli", "--backend", "jack", "--model", str(melody_model_file),
               "--bpm", "150", "--seed", "3", "--record", "take.mid"]
    env = {**jack_server.env(), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    term = Tmux(command, env, tmp_path)
    hand = None
    try:
        screen = term.wait_for(lambda s: "PLAYING" in s and "call-response" in s, "the running daemon")
        for shown in ("magenta-live", "150.0 BPM", "clock internal", "REC", "take.mid", "midi jack",
                      "magenta-live in", "magenta-live out", "attention_rnn", "── player", "── agents", "notes in 0",
                      "keys act on all agents"):
            assert shown in screen, f"{shown!r} not on the screen:\n{screen}"
        start = position(screen)
        term.wait_for(lambda s: (position(s) or start) > start, "the position moving on")

        # T raises the temperature shown by 0.1, d lowers the density by 0.1
        temperature, density = knob(screen, "temp"), knob(screen, "dens")
        assert temperature == 1.0 and density == 0.5, screen
        term.keys("T")
        term.wait_for(lambda s: knob(s, "temp") == pytest.approx(1.1), "the temperature raised to 1.10")
        term.keys("d")
        term.wait_for(lambda s: knob(s, "dens") == pytest.approx(0.4), "the density lowered to 0.40")
        # S raises the scale lock, o lowers top-p; no key is known before the player plays
        assert knob(screen, "lock") == 0.0 and knob(screen, "top-p") == 1.0 and "key ? (auto)" in screen, screen
        term.keys("S")
        term.wait_for(lambda s: knob(s, "lock") == pytest.approx(0.1), "the scale lock raised to 0.10")
        term.keys("o")
        term.wait_for(lambda s: knob(s, "top-p") == pytest.approx(0.95), "top-p lowered to 0.95")
        term.keys("?")
        term.wait_for(lambda s: "recording on / off" in s, "the help")
        term.keys("Escape")
        term.wait_for(lambda s: "recording on / off" not in s, "the help closed")

        # the player's notes: counted, and drawn in the player's lane
        hand = player(wait_for_port("magenta-live in", "input"))
        time.sleep(0.1)
        for pitch in (66, 70, 73, 71, 66):  # F#, A#, C#, B, F#: F# major
            hand.send(mido.Message("note_on", note=pitch, velocity=90))
            time.sleep(0.15)
            hand.send(mido.Message("note_off", note=pitch))
        term.wait_for(lambda s: re.search(r"notes in 10\b", s) and player_lane_has_notes(s), "the player's notes")
        term.wait_for(lambda s: "key F# (auto)" in s, "the key found from the player's notes")

        # space stops the transport
        term.keys("Space")
        term.wait_for(lambda s: "STOPPED" in s, "the transport stopped")

        # q quits cleanly: exit status 0 and the recording written
        term.keys("q")
        status = tmp_path / "exit-status"
        deadline = time.perf_counter() + WAIT_SECONDS
        while not status.exists() and time.perf_counter() < deadline:
            time.sleep(0.1)
        assert status.exists(), f"the daemon did not exit on q; the screen:\n{term.screen()}"
        assert status.read_text().strip() == "0", term.screen()
        assert mido.MidiFile(str(tmp_path / "take.mid")).tracks
    finally:
        if hand is not None:
            hand.close()
        term.close()
