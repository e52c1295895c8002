"""An agent: one model playing one mode on one output, driven by integer ticks.

The agent is pure logic, the same live and offline. It is told what the player did (``note``)
and that time passed (``tick``), and it answers by handing :class:`Out` messages to its
:class:`Sink`: the daemon's sink schedules them on an output port at the clock's deadline for
their tick, the offline sink writes them to a MIDI file. Nothing here reads a clock or sleeps.

Step-grid families (melody, improv, polyphony, drums) quantize the player to the model's step:
a message at tick ``t`` belongs to the step whose start is nearest (ties go to the later step).
A step's input is complete half a step after it starts; at that tick (``step_due``) the agent
feeds the step to its stream and decides what it plays on the *next* step, which is scheduled
at that step's first tick: half a step of look-ahead (62 ms at 120 BPM), so an answer's first
note leaves exactly on its grid point.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

import mido
import numpy as np

from live.clock.base import TICKS_PER_QUARTER, seconds_per_tick
from live.engine.key import Key
from live.protocol import CONTINUOUS, MIN_TOP_P
from live.models.cells import State
from live.models.configs import get_config
from live.models.model import Model

log = logging.getLogger("live.engine")

MIN_TEMPERATURE, MAX_TEMPERATURE = 0.1, 2.0
MAX_MORPH_STEPS = int(CONTINUOUS["morph_steps"][1])


class AgentState(str, Enum):
    """What an agent is doing. A str, so that it compares equal to (and prints as) its name."""

    IDLE = "idle"  # nothing to do until the player plays
    LISTENING = "listening"  # the player's call is coming in (improv: waiting for a chord)
    WAITING = "waiting"  # the call has ended; the answer starts on the next grid point
    ANSWERING = "answering"  # playing its answer
    PLAYING = "playing"  # an accompanist playing along

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Out:
    """A message an agent plays.

    Attributes:
        tick: song position (ticks) at which it is due.
        msg: the MIDI message (its channel is the agent's output channel).
        offset: seconds after ``tick`` (Performance RNN's 10 ms grid); 0.0 on the step grid.
        now: send at once, ignoring ``tick`` (harmony for a note that just arrived).
    """

    tick: int
    msg: mido.Message
    offset: float = 0.0
    now: bool = False


class Sink(Protocol):
    """Where an agent's messages go (the daemon's scheduler or an offline recording)."""

    def play(self, agent: Agent, out: Out) -> None:
        """Deliver ``out`` at its tick (or at once if ``out.now``)."""

    def cancel(self, agent: Agent, tick: int) -> None:
        """Drop ``agent``'s messages not yet sent and end its sounding notes at ``tick``."""


@dataclass
class Params:
    """What the knobs steer, per agent.

    Attributes:
        temperature: sampling temperature, 0.1 to 2.0.
        density: 0.0 (sparse) to 1.0 (busy); 0.5 leaves the model alone (see ``density_bias``).
        response_bars: answer length in bars; None: as long as the call.
        loop: repeat the last answer until the player plays again.
        mutate: answer the last answer until the player plays again.
        velocity: velocity of the agent's notes where the model has none (1 to 127).
        scale_lock: 0.0 (the model is free) to 1.0 (only pitches of the key in use, and in
            improv the chord's tones, can be drawn); between, an out-of-scale pitch keeps
            ``1 - scale_lock`` of its probability. Every family with pitches (not drums).
        top_p: nucleus sampling, 0.05 to 1.0: only the likeliest classes whose probabilities add
            up to ``top_p`` can be drawn (1.0: all of them).
        strays: MusicVAE (vary): 0.0 (the call re-voiced) to 1.0 (a free sample).
        morph_steps: MusicVAE (morph): two-bar phrases from the last call to the latest, 1 to 16.
    """

    temperature: float = 1.0
    density: float = 0.5
    response_bars: float | None = None
    loop: bool = False
    mutate: bool = False
    velocity: int = 90
    scale_lock: float = 0.0
    top_p: float = 1.0
    strays: float = 0.5
    morph_steps: int = 4

    def set_strays(self, value: float) -> None:
        self.strays = float(min(1.0, max(0.0, value)))

    def set_morph_steps(self, value: float) -> None:
        self.morph_steps = int(min(MAX_MORPH_STEPS, max(1, round(value))))

    def set_temperature(self, value: float) -> None:
        self.temperature = float(min(MAX_TEMPERATURE, max(MIN_TEMPERATURE, value)))

    def set_density(self, value: float) -> None:
        self.density = float(min(1.0, max(0.0, value)))

    def set_scale_lock(self, value: float) -> None:
        self.scale_lock = float(min(1.0, max(0.0, value)))

    def set_top_p(self, value: float) -> None:
        self.top_p = float(min(1.0, max(MIN_TOP_P, value)))


DENSITY_BIAS_RANGE = 4.0
"""Logit bias at density 0 (added to the "quiet" classes) and 1 (subtracted): see density_bias."""


def density_bias(quiet_labels: np.ndarray, num_classes: int, density: float) -> np.ndarray | None:
    """Logit bias [num_classes] steering how many notes a model plays, or None at density 0.5.

    The "quiet" classes of a family (melody: no event and note-off; drums: the empty step;
    polyphony: the end of a step; performance: time shifts) get
    ``(0.5 - density) * 2 * DENSITY_BIAS_RANGE`` added to their logits: at density 0 they are
    e^4 (55x) likelier than the model says, at density 1 that much less likely.
    """
    if abs(density - 0.5) < 1e-9:
        return None
    bias = np.zeros(num_classes, np.float32)
    bias[quiet_labels] = (0.5 - density) * 2.0 * DENSITY_BIAS_RANGE
    return bias


@dataclass
class AgentSpec:
    """How an agent is set up (from the command line or one ``[[agent]]`` table of the TOML file).

    Attributes:
        name: shown in the panel and used as the recording's track name.
        mode: call-response | continue | improv | harmonize | drums | duet.
        model: a bundled model name or a path; None: the mode's bundled default.
        output_channel: output MIDI channel 1..16 (drums default to 10).
        input_channels: channels whose notes this agent hears (None: all).
        output_port: index into the daemon's output ports (0: the first).
        silence: call-response: 16th steps of silence that end a call.
        min_call / max_call: call-response (16th steps): shorter calls are ignored; a call this
            long ends by itself.
        response_quantize: call-response: the answer starts on the next "step", "beat" or "bar".
        backing_chords: improv: chord symbols looped, each ``steps_per_chord`` steps; None:
            chords recognized from the notes the player holds (see ``chord_channel`` and
            ``chord_below``).
        chord_channel: improv: only notes on this channel (1..16) make the chord.
        chord_below: improv: only notes below this MIDI pitch make the chord.
        pattern_file: drums: a MIDI file whose drum notes prime the model.
        key: the player's key (``--key``); None: found from what the player plays (auto).
        params: the knob-controlled parameters.
    """

    name: str = "agent"
    mode: str = "call-response"
    model: str | None = None
    output_channel: int = 1
    input_channels: list[int] | None = None
    output_port: int = 0
    silence: int = 4
    min_call: int = 2
    max_call: int = 128
    response_quantize: str = "beat"
    backing_chords: list[str] | None = None
    steps_per_chord: int = 16
    chord_channel: int | None = None
    chord_below: int | None = None
    pattern_file: str | None = None
    key: Key | None = None
    params: Params = field(default_factory=Params)


class Agent:
    """Base of every mode. Subclasses implement ``note`` and ``tick``.

    Attributes:
        spec: the set-up; ``spec.params`` are the live knob values.
        model: the loaded Model.
        rng: the agent's own seeded generator (same seed, same performance).
        state: the agent's AgentState (shown in the panel).
        notes_played: note-ons this agent has played.
    """

    mode = "?"

    def __init__(
        self, spec: AgentSpec, model: Model, sink: Sink, rng: np.random.Generator, ticks_per_bar: int = 96, ticks_per_beat: int = 24
    ) -> None:
        self.spec = spec
        self.ticks_per_beat = ticks_per_beat
        self.model = model
        self.sink = sink
        self.rng = rng
        self.ticks_per_bar = ticks_per_bar
        self.channel = spec.output_channel - 1
        self.state = AgentState.IDLE
        self.notes_played = 0
        self.step_seconds = 0.0  # last step's compute time (seconds), for the panel's meter
        self.seconds_per_tick = seconds_per_tick(120.0)  # kept current by Session.set_tempo
        self._warm_state: State | None = None  # warm_up's throw-away state
        self._warm_input: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def params(self) -> Params:
        return self.spec.params

    @property
    def key(self) -> Key | None:
        """The player's key this agent plays in (``--key`` or found from the player's notes), or
        None: not known yet, or a mode that does not follow a key."""
        return None

    def hears(self, msg: mido.Message) -> bool:
        """True if the player's ``msg`` is on one of this agent's input channels."""
        chans = self.spec.input_channels
        return chans is None or (msg.channel + 1) in chans

    def note(self, tick: int, msg: mido.Message) -> None:
        """The player's note-on or note-off (velocity 0 is a note-off) at song position ``tick``."""
        raise NotImplementedError

    def tick(self, tick: int) -> None:
        """Song position ``tick`` has been reached (called for every tick, in order)."""
        raise NotImplementedError

    def end_call(self, tick: int) -> None:
        """The end-call control: end the player's call now (modes without calls ignore it)."""

    def stop(self, tick: int) -> None:
        """Transport stopped or panic: silence, forget pending plans, go idle."""
        self.sink.cancel(self, tick)
        self.state = AgentState.IDLE

    def warm_up(self) -> None:
        """One throw-away model step on a state nobody reads (the agent's streams and random
        generator are not touched). The first step after a model loads costs many times a
        normal one (fresh pages, cold caches); this takes that cost before the music starts."""
        if self._warm_state is None:
            self._warm_state = self.model.initial_state(1)
            self._warm_input = np.zeros((1, self.model.input_size), np.float32)
        self.model.step(self._warm_input, self._warm_state)

    def keep_warm(self, interrupted: Callable[[], bool] | None = None) -> None:
        """Called by the daemon every ``live.daemon.WARM_SECONDS`` (20 ms of wall time). Modes that
        answer a player's note at once (harmonize) rehearse that work here, so that the CPU's
        caches hold it when the note comes: after 0.1 s idle a step costs several times what it
        costs warm (see docs/DAEMON.md). What the agent plays must not change. Others do nothing.
        ``interrupted``: true once input (or a tick) waits for the daemon's loop; a rehearsal
        asks it between model steps and gives up, so a note never waits for a whole rehearsal."""

    def play(self, tick: int, msg: mido.Message, offset: float = 0.0, now: bool = False) -> None:
        """Hand one message to the sink (counting note-ons)."""
        if msg.type == "note_on" and msg.velocity > 0:
            self.notes_played += 1
        self.sink.play(self, Out(tick, msg, offset, now))


class OnSteps:
    """Mixed into a step-grid agent (before ``Agent``): ``tick`` calls ``process(step)`` once
    per step, at the step's mid-point (its input is complete then: see the module's docstring),
    and times it for the panel. The agent sets ``step_ticks`` and ``processed`` (-1 at first)."""

    step_ticks: int
    processed: int
    step_seconds: float

    def step_of(self, tick: int) -> int:
        """The step a message at ``tick`` belongs to: the nearest step start (ties: the later),
        but never one already processed."""
        return max((tick + self.step_ticks // 2) // self.step_ticks, self.processed + 1)

    def tick(self, tick: int) -> None:
        if tick % self.step_ticks != self.step_ticks // 2:
            return
        step = tick // self.step_ticks
        if step <= self.processed:
            return
        started = time.perf_counter()
        self.process(step)
        self.processed = step
        self.step_seconds = time.perf_counter() - started

    def process(self, step: int) -> None:
        """Step ``step``'s input is complete: act on it, and plan step ``step + 1``."""
        raise NotImplementedError


ENDLESS = 1 << 40
"""The length of an answer that never ends by itself (in steps or ticks alike)."""
QUANTIZE = ("step", "beat", "bar")
"""Where an answer may start (``--response-quantize``): see ``answer_span``."""


def answer_span(due: int, call_length: int, unit: int, bar: int, response_bars: float | None, endless: bool) -> tuple[int, int]:
    """Where an answer goes: (start, end), in the caller's unit of time (steps or ticks).

    It starts on the first multiple of ``unit`` (a step, beat or bar: ``--response-quantize``)
    at or after ``due``, and lasts ``response_bars`` bars of ``bar`` units each, or as long as the
    call (``call_length``) when that is None, or for ever (``endless``: ``--mode continue``).
    """
    start = -(-due // unit) * unit
    length = call_length if response_bars is None else max(1, round(response_bars * bar))
    return start, start + (ENDLESS if endless else length)


def ticks_per_step(model: Model) -> int:
    """Ticks in one step of ``model``'s grid (6 for 4 steps per quarter note)."""
    spq = get_config(model.config_id).steps_per_quarter or 4
    return TICKS_PER_QUARTER // spq
