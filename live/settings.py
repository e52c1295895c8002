"""One schema for every setting's value: the command line, the TOML file and the knobs use it.

Each numeric setting is a :class:`Number` with its option name, range and whether it is an
integer; ``check`` takes what the TOML file or the code gives (int, float, str), ``argtype`` is
the command line's parser. Both refuse NaN and infinity, a boolean where a number belongs, and
anything out of range, with one line that names the option and what it accepts. Switches are
:class:`Flag` (a TOML boolean, never the string ``"no"``). A knob's CC spans its range in ``CONTINUOUS``
(``live.protocol``; the flag's range, or a narrower, playable part of it, as for tempo and
response bars), and a command's value is clamped into the flag's range.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

from live.errors import SettingError
from live.protocol import CONTINUOUS, MIN_TOP_P

__all__ = ["AGENT_NUMBERS", "DAEMON_NUMBERS", "NUMBERS", "Flag", "Number", "OneLineParser", "check_flag"]


def _text(x: float) -> str:
    return f"{x:g}" if not float(x).is_integer() or abs(x) < 1e15 else f"{x:.3g}"


@dataclass(frozen=True)
class Number:
    """A number setting: ``option`` (``--temperature``), in [``low``, ``high``], an integer if
    ``integer``; ``meaning`` says what the range means (shown in messages)."""

    option: str
    low: float
    high: float
    integer: bool = False
    meaning: str = ""

    @property
    def accepted(self) -> str:
        kind = "an integer" if self.integer else "a number"
        text = f"{kind} from {_text(self.low)} to {_text(self.high)}"
        return f"{text} ({self.meaning})" if self.meaning else text

    def check(self, value: Any) -> float | int:
        """``value`` (int, float or numeric text) as this setting's number; SettingError if not."""
        if isinstance(value, bool) or value is None:
            raise SettingError(f"{self.option}: {value!r} is not a number; accepted: {self.accepted}")
        try:
            number = float(value.strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError, OverflowError):
            raise SettingError(f"{self.option}: {value!r} is not a number; accepted: {self.accepted}") from None
        if not math.isfinite(number):
            raise SettingError(f"{self.option}: {value!r} is not a finite number; accepted: {self.accepted}")
        if self.integer:
            if not number.is_integer():
                raise SettingError(f"{self.option}: {value!r} is not a whole number; accepted: {self.accepted}")
            number = int(number)
        if not self.low <= number <= self.high:
            raise SettingError(f"{self.option}: {value!r} is out of range; accepted: {self.accepted}")
        return number

    def argtype(self, text: str) -> float | int:
        """The command line's ``type=``: argparse reports the message as the option's error."""
        try:
            return self.check(text)
        except SettingError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix(f"{self.option}: ")) from None

    def clamp(self, value: float) -> float:
        """``value`` pulled into the range (a knob's command; NaN is the caller's to refuse)."""
        return min(self.high, max(self.low, value))


@dataclass(frozen=True)
class Flag:
    """An on/off setting: a TOML boolean (``loop = true``); the command line's switch."""

    option: str

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise SettingError(f"{self.option}: {value!r} is not true or false")
        return value


def check_flag(option: str, value: Any) -> bool:
    return Flag(option).check(value)


def _knob(name: str, option: str, meaning: str = "") -> Number:
    low, high = CONTINUOUS[name]
    return Number(option, low, high, meaning=meaning)


AGENT_NUMBERS: dict[str, Number] = {
    "temperature": _knob("temperature", "--temperature", "lower: safer, higher: wilder"),
    "density": _knob("density", "--density", "0 sparse, 0.5 as the model plays, 1 busy"),
    "scale_lock": _knob("scale_lock", "--scale-lock", "0 free, 1 only the key's pitches"),
    "top_p": Number("--top-p", MIN_TOP_P, 1.0, meaning="1: sample from everything"),
    "strays": _knob("strays", "--strays", "MusicVAE vary: 0 the call re-voiced, 1 a free sample"),
    "morph_steps": Number("--morph-steps", *map(int, CONTINUOUS["morph_steps"]), integer=True,
                          meaning="MusicVAE morph: two-bar phrases"),
    "response_bars": Number("--response-bars", 0, 64, meaning="0: as long as the call"),
    "output_channel": Number("--output-channel", 1, 16, integer=True),
    "input_channel": Number("--input-channel", 1, 16, integer=True),
    "chord_channel": Number("--chord-channel", 1, 16, integer=True),
    "chord_below": Number("--chord-below", 0, 127, integer=True, meaning="a MIDI pitch"),
    "steps_per_chord": Number("--steps-per-chord", 1, 256, integer=True),
    "min_call": Number("min_call", 1, 1024, integer=True, meaning="16th steps"),
    "max_call": Number("max_call", 1, 1024, integer=True, meaning="16th steps"),
    "velocity": Number("velocity", 1, 127, integer=True),
}
"""The agent's numbers by TOML key (the command line's option is the key with dashes)."""

DAEMON_NUMBERS: dict[str, Number] = {
    "bpm": Number("--bpm", 20, 400, meaning="beats per minute"),
    "max_note_seconds": Number("--max-note-seconds", 0.05, 600, meaning="seconds"),
    "realtime_priority": Number("--realtime-priority", 1, 99, integer=True),
    "seed": Number("--seed", 0, 2**32 - 1, integer=True),
    "tail_bars": Number("--tail-bars", 0, 1024, integer=True, meaning="bars"),
    "control_channel": Number("control_channel", 1, 16, integer=True),
}
"""The daemon's numbers by TOML key."""

NUMBERS: dict[str, Number] = {**AGENT_NUMBERS, **DAEMON_NUMBERS}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose refusal is one line on stderr (no usage block), exit ``EXIT``."""

    EXIT = 1

    def error(self, message: str):  # type: ignore[override]
        self.exit(self.EXIT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
