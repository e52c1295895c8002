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
from live.protocol import CONTINUOUS, MIN_TOP_P, MODES, PARAMETERS, SWITCHES, Command
from live.errors import ConfigFileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_MODE = "call-response"

# -- the CC map ------------------------------------------------------------------------------


DEFAULT_CONTROLS = {
    "temperature": 21,
    "density": 22,
    "answer_bars": 23,
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
}
"""The CC number of each parameter unless ``[controls]`` says otherwise (any channel). CC 21-28
are the eight knobs of many controllers' first bank; 29-32 suit pads or buttons; 33-34 (scale
lock, top-p) are the second bank's first two knobs."""


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
        self._by_cc = {cc: name for name, cc in self.controls.items()}
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
    "name", "mode", "model", "channel", "output_channel", "input_channel", "input_channels", "output_port",
    "silence", "min_call", "max_call", "response_quantize", "response_bars", "backing_chords",
    "steps_per_chord", "chord_channel", "chord_below", "pattern_file", "temperature", "density", "loop", "mutate",
    "velocity", "key", "scale_lock", "top_p",
}
DAEMON_KEYS = {
    "backend", "input_port", "output_port", "passthrough", "clock", "clock_port", "clock_out", "bpm",
    "max_note_seconds", "realtime_priority", "record", "seed", "log_level", "no_ui", "learn", "controls",
    "control_channel", "input_file", "output_file", "tail_bars", "agent",
}


def parse_silence(value: str | int, steps_per_beat: int = 4) -> int:
    """``--silence``: steps ("4", 4) or beats ("1beat", "2 beats", "1b"); returns steps."""
    if isinstance(value, int) and not isinstance(value, bool):
        steps = value
    else:
        text = str(value).strip().lower()
        for suffix in ("beats", "beat", "b"):
            if text.endswith(suffix):
                try:
                    steps = round(float(text[: -len(suffix)].strip()) * steps_per_beat)
                except ValueError:
                    raise ValueError(f"--silence: {value!r} is not a number of beats (e.g. 1beat)") from None
                break
        else:
            for suffix in ("steps", "step", "s"):
                if text.endswith(suffix):
                    text = text[: -len(suffix)].strip()
                    break
            try:
                steps = int(text)
            except ValueError:
                raise ValueError(f"--silence: {value!r} is not a number of steps (4) or beats (1beat)") from None
    if steps < 1:
        raise ValueError(f"--silence must be at least one step, not {value!r}")
    return steps


def _chords(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split()
    return [str(c) for c in value] or None


def _channels(value: Any) -> list[int] | None:
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 16:
            raise ValueError(f"a MIDI channel is 1..16, not {v!r}")
    return list(values)


def _in_range(option: str, value: Any, low: float, high: float, accepted: str) -> float:
    """``value`` as a float in [low, high]; ConfigFileError naming the accepted values if not."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigFileError(f"{option}: {value!r} is not a number; accepted: {accepted}") from None
    if isinstance(value, bool) or not low <= number <= high:
        raise ConfigFileError(f"{option}: {value!r} is out of range; accepted: {accepted}")
    return number


def agent_spec(settings: dict[str, Any], index: int = 0) -> AgentSpec:
    """An AgentSpec from agent keys (TOML names; unknown keys are an error)."""
    unknown = set(settings) - AGENT_KEYS
    if unknown:
        raise ConfigFileError(f"agent {index + 1}: unknown key(s) {', '.join(sorted(unknown))}; agent keys: {', '.join(sorted(AGENT_KEYS))}")
    mode = settings.get("mode") or DEFAULT_MODE
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    channel = settings.get("channel", settings.get("output_channel"))
    if channel is None:
        channel = 10 if mode == "drums" else index + 1
    _channels(channel)
    params = Params()
    if settings.get("temperature") is not None:
        params.set_temperature(float(settings["temperature"]))
    if settings.get("density") is not None:
        params.set_density(float(settings["density"]))
    if settings.get("scale_lock") is not None:
        params.scale_lock = _in_range("--scale-lock", settings["scale_lock"], 0.0, 1.0, "0 (free) to 1 (only the key's pitches)")
    if settings.get("top_p") is not None:
        params.top_p = _in_range("--top-p", settings["top_p"], MIN_TOP_P, 1.0, f"{MIN_TOP_P} to 1 (1: sample from everything)")
    if settings.get("response_bars") is not None:
        params.answer_bars = float(settings["response_bars"]) or None
    params.loop = bool(settings.get("loop", False))
    params.mutate = bool(settings.get("mutate", False))
    if settings.get("velocity") is not None:
        params.velocity = max(1, min(127, int(settings["velocity"])))
    quantize = settings.get("response_quantize") or "beat"
    if quantize not in ("step", "beat", "bar"):
        raise ValueError(f"--response-quantize must be step, beat or bar, not {quantize!r}")
    inputs = settings.get("input_channels", settings.get("input_channel"))
    if inputs is None and mode == "drums":
        inputs = [10]
    return AgentSpec(
        name=str(settings.get("name") or (mode if index == 0 else f"{mode}-{index + 1}")),
        mode=mode,
        model=settings.get("model"),
        channel=int(channel),
        input_channels=_channels(inputs),
        output_port=int(settings.get("output_port", 0)),
        silence_steps=parse_silence(settings.get("silence", "1beat")),
        min_call_steps=int(settings.get("min_call", 2)),
        max_call_steps=int(settings.get("max_call", 128)),
        response_quantize=quantize,
        backing_chords=_chords(settings.get("backing_chords")),
        steps_per_chord=int(settings.get("steps_per_chord", 16)),
        chord_channel=settings.get("chord_channel"),
        chord_below=settings.get("chord_below"),
        pattern_file=settings.get("pattern_file"),
        key=parse_key(str(settings.get("key") or "auto")),
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
    unknown = set(data) - DAEMON_KEYS - AGENT_KEYS
    if unknown:
        raise ConfigFileError(
            f"{os.fspath(path)}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"keys: {', '.join(sorted(DAEMON_KEYS | AGENT_KEYS))}"
        )
    return data


def merge(file_settings: dict[str, Any], cli_settings: dict[str, Any]) -> tuple[dict[str, Any], list[AgentSpec], ControlMap]:
    """Daemon settings, agents and CC map from the file's settings and the command line's
    (only options the user gave; the command line wins)."""
    settings = {**file_settings, **{k: v for k, v in cli_settings.items() if v is not None}}
    cli_agent = {k: v for k, v in cli_settings.items() if k in AGENT_KEYS and v is not None}
    tables = file_settings.get("agent")
    if tables:
        if not isinstance(tables, list):
            raise ConfigFileError("[[agent]] must be an array of tables")
        specs = [agent_spec({**table, **cli_agent}, i) for i, table in enumerate(tables)]
    else:
        specs = [agent_spec({k: v for k, v in settings.items() if k in AGENT_KEYS})]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigFileError(f"agent names must differ: {names}")
    controls = dict(DEFAULT_CONTROLS)
    given = file_settings.get("controls") or {}
    if not isinstance(given, dict):
        raise ConfigFileError("[controls] must be a table of parameter = CC number")
    controls.update(given)
    control_map = ControlMap(controls, settings.get("control_channel"))
    daemon = {k: v for k, v in settings.items() if k in DAEMON_KEYS and k not in ("agent", "controls")}
    return daemon, specs, control_map


def spec_fields() -> list[str]:
    """AgentSpec's field names (for docs and the panel)."""
    return [f.name for f in fields(AgentSpec)]


def save_controls(path: str | os.PathLike, controls: ControlMap) -> None:
    """Write ``controls`` as the ``[controls]`` table of the TOML file ``path``, keeping its
    other lines (a file that does not exist is created), atomically."""
    path = os.fspath(path)
    lines: list[str] = []
    if os.path.exists(path):
        with open(path) as f:
            skipping = False
            for line in f:
                stripped = line.strip()
                if stripped.startswith("["):
                    skipping = stripped == "[controls]"
                if not skipping:
                    lines.append(line if line.endswith("\n") else line + "\n")
    text = "".join(lines).rstrip("\n")
    text = (text + "\n\n" if text else "") + controls.to_toml()
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
