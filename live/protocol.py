"""What the daemon and the panel say to each other: commands one way, snapshots the other.

The panel (``live/ui``) imports this module and nothing else of the project: it sends
:class:`Command` objects and reads :class:`Snapshot` objects, plain immutable values that are
safe to hand between threads. The command line and the TOML file use the same names (modes,
knob parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

from live.clock.base import TICKS_PER_QUARTER

__all__ = [
    "AGENT_PARAMETERS", "BUTTONS", "COMMANDS", "CONTINUOUS", "MIN_TOP_P", "MODES", "PARAMETERS", "SESSION_COMMANDS", "SWITCHES",
    "TICKS_PER_QUARTER", "AgentView", "Command", "RollNote", "Snapshot",
]

MODES = ("call-response", "continue", "improv", "harmonize", "drums", "duet", "vary", "morph")
"""Every mode an agent can play (``--mode``), in the order the mode control steps through them."""

MIN_TOP_P = 0.05
"""The smallest top-p (nucleus) a knob or flag may set."""

CONTINUOUS = {
    # parameter: (low, high) a CC's 0..127 is spread over
    "temperature": (0.1, 2.0),
    "density": (0.0, 1.0),
    "response_bars": (0.0, 8.0),  # 0: as long as the call
    "tempo": (40.0, 240.0),
    "scale_lock": (0.0, 1.0),
    "top_p": (MIN_TOP_P, 1.0),
    "strays": (0.0, 1.0),  # MusicVAE vary: 0 the call re-voiced, 1 a free sample
    "morph_steps": (1.0, 16.0),  # MusicVAE morph: phrases from the last call to the latest
}
SWITCHES = ("loop", "mutate")  # value >= 64 on, < 64 off
BUTTONS = ("mode", "model", "end_call", "panic", "start_stop", "record")  # acts when pressed (value >= 64)
PARAMETERS = (*CONTINUOUS, *SWITCHES, *BUTTONS)
"""What a MIDI CC (or MIDI learn) can steer."""

AGENT_PARAMETERS = ("temperature", "density", "scale_lock", "top_p", "strays", "morph_steps", "response_bars", "loop", "mutate")
"""What each agent's knobs set (``Params``)."""
SESSION_COMMANDS = (*AGENT_PARAMETERS, "end_call", "mode", "model")
"""Commands the session applies to its agents; the rest are the daemon's own."""
COMMANDS = (*SESSION_COMMANDS, "tempo", "panic", "start_stop", "record", "quit", "learn")
"""Every command name."""


@dataclass(frozen=True)
class Command:
    """Something a knob, a key or the panel asks for.

    Attributes:
        name: temperature | density | scale_lock | top_p | response_bars | loop | mutate | end_call |
            mode | model | tempo | panic | start_stop | record.
        value: an absolute value (temperature 0.1-2.0, density 0-1, scale lock 0-1, top-p
            0.05-1, answer bars, BPM; out-of-range values are clamped; for loop
            and mutate 1/0; for mode and model a name), or None.
        delta: a relative change instead of ``value`` (keys: t/T, d/D), or None; for mode and
            model any delta means "the next one".
        agent: the agent's index; None: every agent.
    """

    name: str
    value: float | str | None = None
    delta: float | None = None
    agent: int | None = None

    def __post_init__(self) -> None:
        if self.name not in COMMANDS:
            raise ValueError(f"unknown command {self.name!r}; commands: {', '.join(COMMANDS)}")


@dataclass(frozen=True)
class AgentView:
    """One agent, as the panel shows it."""

    name: str
    mode: str
    model: str
    state: str
    temperature: float
    density: float
    channel: int  # 1..16
    loop: bool
    mutate: bool
    response_bars: float | None
    notes_played: int
    step_ms: float
    key: str = ""  # the key in use ("F#m"), "" while unknown or for key-free models
    key_fixed: bool = False  # True: given with --key; False: found from the player
    scale_lock: float = 0.0
    top_p: float = 1.0
    strays: float | None = None  # MusicVAE agents only
    morph: str = ""  # morph agents: "2/4" while the walk goes on


@dataclass(frozen=True)
class RollNote:
    """A note for the piano roll: ticks, pitch, and who played it (-1: the player)."""

    start: int
    end: int | None  # None: still sounding
    pitch: int
    who: int


@dataclass(frozen=True)
class Snapshot:
    """The daemon's state at one moment, for the panel (immutable; safe to read from any thread)."""

    tick: int = 0
    bar: int = 0
    beat: int = 0
    step: int = 0
    bpm: float = 120.0
    running: bool = False
    clock_source: str = "internal"
    clock_locked: bool = True
    backend: str = ""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    clock_port: str | None = None
    recording: str | None = None
    agents: tuple[AgentView, ...] = ()
    roll: tuple[RollNote, ...] = ()
    notes_in: int = 0
    notes_out: int = 0
    late: int = 0
    worst_late_ms: float = 0.0
    dropped: int = 0
    clock_waiting: str | None = None  # what a MIDI clock waits for before it runs ("Start or Continue"...)
    step_ms: float = 0.0
    log: tuple[str, ...] = ()
    learning: str | None = None
    loading: str | None = None  # what the daemon loads or opens before it can play (its models, its ports)
