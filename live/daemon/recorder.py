"""The session's recording (``--record``, the record control): the player's notes as they came
in and each agent's notes as the note ledger really sent them, one track each, written when the
recording stops or the daemon closes."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

import mido

from live.errors import OutputPathError
from live.files import check_writable
from live.recording import Recording

logger = logging.getLogger("live.daemon")


def fallback_folders() -> list[str]:
    """Where a take goes when its own destination fails: the user's home, then the temp folder."""
    return [os.path.expanduser("~"), tempfile.gettempdir()]


class Recorder:
    """Starts, stops and writes the recording.

    Attributes:
        path: where the recording is written (None until one is asked for).
        recording: the recording under way, or None.
    """

    def __init__(self, path: str | None, beats_per_bar: int, say: Callable[[str], None]) -> None:
        self.path = path
        self.beats_per_bar = beats_per_bar
        self.say = say
        self.recording: Recording | None = None
        self.failed: str | None = None  # what went wrong writing a take, if anything did
        self.takes = 0  # takes written: the next one gets its own file (take.mid, take-2.mid, ...)

    @property
    def on(self) -> bool:
        return self.recording is not None

    def start(self, bpm: float, tracks: Iterable[str]) -> None:
        """Start recording at ``bpm``, with a track for the player and one per name in ``tracks``.

        The destination is checked first: OutputPathError (one line) if it cannot be written."""
        check_writable(self.path, "--record")
        self.recording = Recording(bpm, (self.beats_per_bar, 4))
        self.recording.add_track("player")
        for name in tracks:
            self.recording.add_track(name)
        self.say(f"recording to {self.path}")

    def toggle(self, bpm: float, tracks: Iterable[str]) -> None:
        """The record control: start (into a new time-stamped file if none was named), or stop and write."""
        if self.recording is None:
            if not self.path:
                self.path = time.strftime("magenta-live-%Y%m%d-%H%M%S.mid")
            elif self.takes:
                stem, ext = os.path.splitext(self.path)
                self.path = f"{stem.rsplit('-', 1)[0] if self.takes > 1 else stem}-{self.takes + 1}{ext or '.mid'}"
            try:
                self.start(bpm, tracks)
            except OutputPathError as err:
                self.say(f"not recording: {err}")
        else:
            self.write()
            self.recording = None

    def write(self) -> None:
        """Write what was recorded so far to ``path``. If that fails (the disk filled, the folder
        went away), the take goes to a fallback file whose name is said and logged, and
        ``failed`` says what happened (the command line then exits with status 1)."""
        if self.recording is None or not self.path:
            return
        try:
            self.recording.write(self.path)
            self.takes += 1
            self.say(f"recording written to {self.path}")
            return
        except OSError as err:
            reason = str(err)
        for folder in fallback_folders():
            rescue = os.path.join(folder, time.strftime("magenta-live-rescued-%Y%m%d-%H%M%S.mid"))
            try:
                self.recording.write(rescue)
            except OSError:
                continue
            self.failed = f"could not write the recording ({reason}); the take is saved in {rescue}"
            break
        else:
            self.failed = f"could not write the recording ({reason}), nor a copy in {', '.join(fallback_folders())}: the take is lost"
        logger.error("%s", self.failed)
        self.say(self.failed)

    def add(self, track: str, tick: float, msg: mido.Message) -> None:
        """``msg`` on ``track`` at song position ``tick`` (ticks), if recording."""
        recording = self.recording
        if recording is not None:
            recording.add(track, max(tick, 0.0), msg)

    def set_tempo(self, tick: int, bpm: float) -> None:
        if self.recording is not None:
            self.recording.set_tempo(tick, bpm)

    def sent(self, msg: mido.Message, owner: Any, tick: float) -> None:
        """The note ledger sent ``msg`` for ``owner`` (an agent) at song position ``tick``
        (called on an output thread): the agent's track gets it; the player's are recorded as they come in."""
        if owner is None or owner == "player":
            return
        self.add(getattr(owner, "name", str(owner)), tick, msg)
