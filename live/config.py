"""Settings: the TOML file, the command line over it, the agents, and the CC map.

A TOML file (``--config FILE.toml``) takes the same keys as the long command-line options
(``bpm = 96``, ``input_port = ["Keystation"]``, ``mode = "improv"``...), an optional
``[controls]`` table mapping parameters to CC numbers, and optional ``[[agent]]`` tables, each
one agent with its own model, mode, input filter and output channel or port. Without
``[[agent]]`` tables there is one agent, made from the top-level agent keys. The command line
wins over the file: an agent option given on the command line applies to every agent.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields
from typing import Any

from live.engine.agent import AgentSpec, Params
from live.engine.key import parse_key
from live.protocol import CONTINUOUS, MODES, PARAMETERS, SWITCHES, Command
from live.errors import ConfigFileError, SettingError
from live.files import atomic_write
from live.midi_io.backends import BACKEND_CHOICES
from live.settings import NUMBERS, Flag, Number

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_MODE = "call-response"

# -- the CC map ------------------------------------------------------------------------------


DEFAULT_CONTROLS = {
    "temperature": 21,
    "density": 22,
    "response_bars": 23,
    "tempo": 24,
    "loop": 25,
    "mutate": 26,
    "mode": 27,
    "model": 28,
    "end_call": 29,
    "panic": 30,
    "start_stop": 31,
    "record": 32,
    "scale_lock": 33,
    "top_p": 34,
    "strays": 35,
    "morph_steps": 36,
}
"""The CC number of each parameter unless ``[controls]`` says otherwise (any channel). CC 21-28
are the eight knobs of many controllers' first bank; 29-32 suit pads or buttons; 33-34 (scale
lock, top-p) are the second bank's first two knobs, 35-36 (strays, morph steps) the next two."""
LEGACY_PARAMETERS = {"answer_bars": "response_bars"}
"""Older names a ``[controls]`` table may still use."""


@dataclass
class ControlMap:
    """CC number -> parameter, and the commands a CC value makes.

    Attributes:
        controls: parameter -> CC number (0..119).
        channel: only CCs on this channel (1..16) steer; None: any channel.
    """

    controls: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CONTROLS))
    channel: int | None = None

    def __post_init__(self) -> None:
        for name, cc in self.controls.items():
            if name not in PARAMETERS:
                raise ConfigFileError(f"[controls]: unknown parameter {name!r}; parameters: {', '.join(PARAMETERS)}")
            if isinstance(cc, bool) or not isinstance(cc, int) or not 0 <= cc <= 119:
                raise ConfigFileError(f"[controls]: {name} = {cc!r} is not a controller number 0..119")
        self._by_cc: dict[int, str] = {}
        for name, cc in self.controls.items():
            if cc in self._by_cc:
                raise ConfigFileError(f"[controls]: CC {cc} steers both {self._by_cc[cc]} and {name}: give each its own")
            self._by_cc[cc] = name
        self._pressed: set[int] = set()

    def parameter(self, cc: int) -> str | None:
        return self._by_cc.get(cc)

    def command(self, channel: int, cc: int, value: int) -> Command | None:
        """The command CC ``cc`` (channel 0..15) with ``value`` (0..127) makes, or None."""
        if self.channel is not None and channel != self.channel - 1:
            return None
        name = self._by_cc.get(cc)
        if name is None:
            return None
        if name in CONTINUOUS:
            low, high = CONTINUOUS[name]
            return Command(name, value=low + (high - low) * value / 127.0)
        if name in SWITCHES:
            return Command(name, value=1.0 if value >= 64 else 0.0)
        # a button acts once per press: on the rising edge
        if value >= 64:
            if cc in self._pressed:
                return None
            self._pressed.add(cc)
            return Command(name)
        self._pressed.discard(cc)
        return None

    def learn(self, parameter: str, cc: int) -> None:
        """Map ``parameter`` to ``cc`` (a control that maps something else is moved over)."""
        if parameter not in PARAMETERS:
            raise ValueError(f"unknown parameter {parameter!r}; parameters: {', '.join(PARAMETERS)}")
        self.controls = {p: c for p, c in self.controls.items() if c != cc}
        self.controls[parameter] = cc
        self.__post_init__()

    def to_toml(self) -> str:
        """The ``[controls]`` table for a TOML file."""
        lines = ["[controls]"] + [f"{name} = {cc}" for name, cc in self.controls.items()]
        return "\n".join(lines) + "\n"


# -- agents ----------------------------------------------------------------------------------

AGENT_KEYS = {
    "name", "mode", "model", "output_channel", "input_channel", "output_port", "silence", "min_call", "max_call",
    "response_quantize", "response_bars", "backing_chords", "steps_per_chord", "chord_channel", "chord_below",
    "pattern_file", "temperature", "density", "loop", "mutate", "velocity", "key", "scale_lock", "top_p",
    "strays", "morph_steps",
}
"""An agent's keys: the command line's long options with underscores (``--output-channel``)."""
ALIASES = {"channel": "output_channel", "input_channels": "input_channel"}
"""Older names the TOML file may still use for an agent key."""
DAEMON_KEYS = {
    "backend", "input_port", "output_port", "passthrough", "clock", "clock_port", "clock_out", "bpm",
    "max_note_seconds", "realtime_priority", "record", "seed", "log_level", "no_ui", "learn", "controls",
    "control_channel", "input_file", "output_file", "tail_bars", "agent",
}
CHOICES = {
    "backend": BACKEND_CHOICES,
    "clock": ("internal", "midi", "link"),
    "log_level": ("debug", "info", "warning", "error"),
    "response_quantize": ("step", "beat", "bar"),
    "mode": MODES,
}
"""Settings whose value is one of a list (the command line's ``choices``)."""
FLAGS = ("passthrough", "no_ui", "learn", "loop", "mutate")
TEXTS = ("clock_port", "clock_out", "record", "input_file", "output_file", "name", "model", "pattern_file", "key")
OUTPUT_INDEX = Number("output_port", 0, 63, integer=True, meaning="in an [[agent]] table: the index of one of the daemon's outputs")
SILENCE = Number("--silence", 1, 1024, integer=True, meaning="16th steps; or beats: 1beat")


def parse_silence(value: str | int, steps_per_beat: int = 4) -> int:
    """``--silence``: steps ("4", 4) or beats ("1beat", "2 beats", "1b"); returns steps."""
    if isinstance(value, str):
        text = value.strip().lower()
        for suffix in ("beats", "beat", "b"):
            if text.endswith(suffix):
                beats = Number("--silence", 0.25, 256, meaning="beats").check(text[: -len(suffix)])
                return SILENCE.check(round(beats * steps_per_beat))
        for suffix in ("steps", "step", "s"):
            if text.endswith(suffix):
                value = text[: -len(suffix)]
                break
    return SILENCE.check(value)


def check(key: str, value: Any, where: str = "") -> Any:
    """``value`` of setting ``key`` checked against the schema (number, flag, choice, text or a
    list of them); SettingError naming the option (``where`` first: "agent 2: ") if it is wrong."""
    try:
        if key in NUMBERS:
            if isinstance(value, list) and key == "input_channel":
                return [NUMBERS[key].check(v) for v in value]
            return NUMBERS[key].check(value)
        if key in FLAGS:
            return Flag(f"--{key.replace('_', '-')}").check(value)
        if key in CHOICES:
            if value not in CHOICES[key]:
                raise SettingError(f"--{key.replace('_', '-')}: {value!r} is not one of {', '.join(CHOICES[key])}")
            return value
        if key in TEXTS:
            if not isinstance(value, str):
                raise SettingError(f"--{key.replace('_', '-')}: {value!r} is not text")
            return value
        if key in ("input_port", "output_port"):
            names = value if isinstance(value, list) else [value]
            if not all(isinstance(n, str) for n in names):
                raise SettingError(f"--{key.replace('_', '-')}: {value!r} is not a port name or a list of them")
            return names
    except SettingError as err:
        raise SettingError(f"{where}{err}") from None
    return value


def _chords(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise SettingError(f"--backing-chords: {value!r} is not chord symbols (\"C G Am F\" or a list of them)")
    return [str(c) for c in value] or None


def _output_index(value: Any, outputs: list[str], where: str) -> int:
    """An agent's ``output_port``: an index into the daemon's outputs, or one of their names."""
    if isinstance(value, str) and not value.strip().isdigit():
        if value in outputs:
            return outputs.index(value)
        raise SettingError(f"{where}output_port: {value!r} is none of the daemon's outputs ({', '.join(outputs) or 'none named'})")
    try:
        index = OUTPUT_INDEX.check(value)
    except SettingError as err:
        raise SettingError(f"{where}{err}") from None
    if index >= max(1, len(outputs)):
        raise SettingError(f"{where}output_port: {index} is out of range: the daemon has {max(1, len(outputs))} output(s), counted from 0")
    return index


def agent_spec(settings: dict[str, Any], index: int = 0, outputs: list[str] | None = None, where: str = "") -> AgentSpec:
    """An AgentSpec from agent keys (TOML names), every value checked against the schema.

    ``outputs`` are the daemon's output port names (an agent's ``output_port`` may name one);
    ``where`` starts every message (``"agent 2: "``). Unknown keys are an error.
    """
    settings = dict(settings)
    for old, new in ALIASES.items():
        if old in settings:
            if new in settings:
                raise SettingError(f"{where}{old} and {new} are the same setting: give one")
            settings[new] = settings.pop(old)
    unknown = set(settings) - AGENT_KEYS
    if unknown:
        raise SettingError(f"{where}unknown key(s) {', '.join(sorted(unknown))}; agent keys: {', '.join(sorted(AGENT_KEYS))}")
    given = {k: check(k, v, where) for k, v in settings.items() if v is not None and k not in ("output_port", "silence", "backing_chords")}
    mode = given.get("mode") or DEFAULT_MODE
    channel = given.get("output_channel", 10 if mode == "drums" else min(16, index + 1))
    params = Params()
    for name in ("temperature", "density", "scale_lock", "top_p", "strays", "morph_steps", "loop", "mutate", "velocity"):
        if name in given:
            setattr(params, name, given[name])
    if "response_bars" in given:
        params.response_bars = float(given["response_bars"]) or None
    inputs = given.get("input_channel")
    if inputs is None and mode == "drums":
        inputs = [10]
    elif isinstance(inputs, int):
        inputs = [inputs]
    min_call, max_call = given.get("min_call", 2), given.get("max_call", 128)
    if min_call > max_call:
        raise SettingError(f"{where}min_call ({min_call}) is longer than max_call ({max_call})")
    try:
        silence = parse_silence(settings["silence"]) if settings.get("silence") is not None else 4
        key = parse_key(given.get("key") or "auto")
    except SettingError as err:
        raise SettingError(f"{where}{err}") from None
    return AgentSpec(
        name=given.get("name") or (mode if index == 0 else f"{mode}-{index + 1}"),
        mode=mode,
        model=given.get("model"),
        output_channel=channel,
        input_channels=inputs,
        output_port=_output_index(settings["output_port"], outputs or [], where) if settings.get("output_port") is not None else 0,
        silence=silence,
        min_call=min_call,
        max_call=max_call,
        response_quantize=given.get("response_quantize", "beat"),
        backing_chords=_chords(settings.get("backing_chords")),
        steps_per_chord=given.get("steps_per_chord", 16),
        chord_channel=given.get("chord_channel"),
        chord_below=given.get("chord_below"),
        pattern_file=given.get("pattern_file"),
        key=key,
        params=params,
    )


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """The TOML file as a dict; ConfigFileError says what is wrong with a bad one."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such config file: {os.fspath(path)}") from None
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigFileError(f"{os.fspath(path)}: not a valid TOML file ({err})") from err
    data = {key.replace("-", "_"): value for key, value in data.items()}
    unknown = set(data) - DAEMON_KEYS - AGENT_KEYS - set(ALIASES)
    if unknown:
        raise ConfigFileError(
            f"{os.fspath(path)}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"keys: {', '.join(sorted(DAEMON_KEYS | AGENT_KEYS))}"
        )
    return data


def merge(file_settings: dict[str, Any], cli_settings: dict[str, Any]) -> tuple[dict[str, Any], list[AgentSpec], ControlMap]:
    """Daemon settings, agents and CC map from the file's settings and the command line's
    (only options the user gave; the command line wins). Every value is checked against the
    schema: SettingError names the option and what it accepts."""
    settings = {**file_settings, **{k: v for k, v in cli_settings.items() if v is not None}}
    daemon = {
        k: check(k, v) for k, v in settings.items() if k in DAEMON_KEYS and k not in ("agent", "controls") and v is not None
    }
    outputs = daemon.get("output_port") or []
    # the command line's --output-port names the daemon's ports; it never replaces a table's index
    cli_agent = {k: v for k, v in cli_settings.items() if k in AGENT_KEYS and k != "output_port" and v is not None}
    tables = file_settings.get("agent")
    if tables:
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise ConfigFileError("[[agent]] must be an array of tables")
        specs = [agent_spec({**table, **cli_agent}, i, outputs, f"agent {i + 1}: ") for i, table in enumerate(tables)]
    else:
        # the top level's output_port names the daemon's ports: the one agent plays to the first
        top = {k: v for k, v in settings.items() if (k in AGENT_KEYS or k in ALIASES) and k != "output_port"}
        specs = [agent_spec(top, 0, outputs)]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigFileError(f"agent names must differ: {names}")
    controls = dict(DEFAULT_CONTROLS)
    given = file_settings.get("controls") or {}
    if not isinstance(given, dict):
        raise ConfigFileError("[controls] must be a table of parameter = CC number")
    controls.update({LEGACY_PARAMETERS.get(k, k): v for k, v in given.items()})
    control_map = ControlMap(controls, daemon.get("control_channel"))
    return daemon, specs, control_map


def spec_fields() -> list[str]:
    """AgentSpec's field names (for docs and the panel)."""
    return [f.name for f in fields(AgentSpec)]


def save_controls(path: str | os.PathLike, controls: ControlMap) -> None:
    """Write ``controls`` as the ``[controls]`` table of the TOML file ``path`` (created if it
    does not exist), atomically. The rest of the file stays as written: comments, order, and
    the table's own header line (``[controls] # my knobs``)."""
    import tomlkit  # only MIDI learn writes TOML

    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            document = tomlkit.parse(f.read())
    except FileNotFoundError:
        document = tomlkit.document()
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.ParseError) as err:
        raise ConfigFileError(f"{path}: cannot keep the learned controls there: {err}") from err
    table = document.get("controls")
    if not isinstance(table, dict):
        table = tomlkit.table()
        document["controls"] = table
    for name in [n for n in table if n not in controls.controls]:
        del table[name]
    for name, cc in controls.controls.items():
        table[name] = cc
    atomic_write(path, tomlkit.dumps(document))
