"""The session: every agent on one clock, the player's notes routed to them, commands.

A :class:`Session` is the daemon's musical core and is the same live and offline: it is fed the
player's messages and the ticks, in song-position order, from one thread. Knobs, keys and the
panel act through :class:`Command` objects (``Session.command``). It keeps no state of the
panel's: what it says goes to the log and to ``on_say``; ``agent_views`` describes the agents
for the daemon's snapshots (``live.daemon.snapshot``).
"""

from __future__ import annotations

import logging
import math
import queue
from dataclasses import replace
from typing import Callable

import mido
import numpy as np

import live.models
from live.clock.base import TICKS_PER_QUARTER, seconds_per_tick
from live.engine.agent import Agent, AgentSpec, Sink
from live.engine.modes import agent_class
from live.models.bundled import DEFAULT_FOR_MODE, bundled_models, resolve_model
from live.models.configs import VAE, get_config
from live.errors import ModelFileError
from live.models.model import Model
from live.models.vae import MusicVae, is_vae_file, load_vae
from live.protocol import AGENT_PARAMETERS, MODES, AgentView, Command

log = logging.getLogger("live.engine")

SWAP_GRID_TICKS = TICKS_PER_QUARTER // 4  # a loaded agent is swapped in on a sixteenth's first tick


def load_model(spec: AgentSpec) -> Model | MusicVae:
    """The model ``spec`` names (or its mode's bundled default): an RNN, or a MusicVAE. Raises
    FileNotFoundError / ModelFileError with a message that says what is wrong."""
    path = resolve_model(spec.model, spec.mode)
    if is_vae_file(path):
        return load_vae(path)
    return live.models.load(path)


def model_family(model: Model | MusicVae) -> str:
    """The family an agent class is chosen by: an RNN's configuration's, or "vae"."""
    return VAE if isinstance(model, MusicVae) else get_config(model.config_id).family


MAX_RESPONSE_BARS = 64.0  # the longest answer a command may ask for (bars; --response-bars' range)


class Session:
    """Agents on one clock. Feed it ``player`` messages and ``tick`` calls in song order.

    Args:
        specs: one AgentSpec per agent.
        sink: where the agents' messages go.
        seed: seeds every agent's generator (agent i gets ``[seed, i]``); None: from entropy.
        ticks_per_bar, ticks_per_beat: the time signature in ticks.
        models: already loaded models, by agent index (others are loaded from their spec).
        bpm: the starting tempo (see ``set_tempo``).
        loader: runs a job on another thread (the daemon's model loader); None: model and mode
            swaps load at once, on the caller's thread (offline mode, tests). See ``swap``.
        on_say: also gets every line the session says (the daemon's log pane); the lines are
            logged in any case.
    """

    def __init__(
        self,
        specs: list[AgentSpec],
        sink: Sink,
        seed: int | None = None,
        ticks_per_bar: int = 96,
        ticks_per_beat: int = 24,
        models: dict[int, Model] | None = None,
        bpm: float = 120.0,
        loader: Callable[[Callable[[], None]], object] | None = None,
        on_say: Callable[[str], None] | None = None,
    ) -> None:
        if not specs:
            raise ValueError("a session needs at least one agent")
        self.loader = loader
        self.loading = 0  # swaps handed to the loader and not yet installed
        self._ready: queue.SimpleQueue[tuple[int, Agent | str]] = queue.SimpleQueue()
        self.sink = sink
        self.seed = seed
        self.ticks_per_bar = ticks_per_bar
        self.ticks_per_beat = ticks_per_beat
        self.on_say = on_say
        self.tick_now = -1
        self.agents: list[Agent] = []
        models = models or {}
        for i, spec in enumerate(specs):
            self.agents.append(self.make_agent(i, spec, models.get(i)))
        self.set_tempo(bpm)

    # -- agents --------------------------------------------------------------------------------

    def make_agent(self, index: int, spec: AgentSpec, model: Model | None = None) -> Agent:
        model = model or load_model(spec)
        cls = agent_class(spec.mode, model_family(model))
        seq = np.random.SeedSequence(None if self.seed is None else [self.seed, index])
        agent = cls(spec, model, self.sink, np.random.default_rng(seq), self.ticks_per_bar, self.ticks_per_beat)
        if hasattr(self, "bpm"):
            agent.seconds_per_tick = seconds_per_tick(self.bpm)
        agent.warm_up()
        return agent

    def index_of(self, agent: Agent) -> int:
        for i, a in enumerate(self.agents):
            if a is agent:
                return i
        return -1

    def replace_agent(self, index: int, spec: AgentSpec, model: Model | None = None) -> None:
        """Swap agent ``index`` for a new one (another model or mode) without stopping the clock:
        the old one's notes end now, the new one starts idle. Loads at once (see ``swap`` for the
        live way, off the clock's thread)."""
        self._install(index, self.make_agent(index, spec, model), max(self.tick_now, 0))

    def _install(self, index: int, new: Agent, tick: int) -> None:
        old = self.agents[index]
        old.stop(tick)
        self.agents[index] = new
        self.say(f"{new.spec.name}: {new.spec.mode} with {new.model.config_id}")

    def swap(self, index: int, candidates: list[tuple[AgentSpec, Model | None]], none_fits: str) -> None:
        """Replace agent ``index`` by the first of ``candidates`` (spec, model or None: load the
        spec's) that builds; ``none_fits`` is said if none does (every one's error is a ValueError:
        the model cannot play the mode; a model that cannot be loaded is said at once).

        With a ``loader`` the models load and the agent is built on the loader's thread; the
        agent is swapped in by ``tick`` on the first tick of a step (a sixteenth), so the clock's
        thread never waits for a disk or TensorFlow. Without one, all of it happens now."""

        def build() -> Agent | str:
            for spec, model in candidates:
                try:
                    return self.make_agent(index, spec, model)
                except (ModelFileError, LookupError, OSError) as err:  # no such file, not a model
                    return f"{spec.name}: {err}"
                except ValueError as err:  # this model cannot play this mode: try the next
                    if len(candidates) == 1:
                        return f"{spec.name}: {err}"
            return none_fits

        if self.loader is None:
            self._installed(index, build(), max(self.tick_now, 0))
            return
        self.loading += 1
        self.loader(lambda: self._ready.put((index, build())))

    def _installed(self, index: int, built: Agent | str, tick: int) -> None:
        if isinstance(built, str):
            self.say(built)  # nothing changes: the old agent plays on
        else:
            self._install(index, built, tick)

    def install_ready(self, tick: int) -> None:
        """Swap in the agents the loader has built, on the first tick of a step."""
        if self.loading == 0 or tick % SWAP_GRID_TICKS:
            return
        while not self._ready.empty():
            index, built = self._ready.get()
            self.loading -= 1
            self._installed(index, built, tick)

    # -- the player and the clock --------------------------------------------------------------

    def player(self, tick: int, msg: mido.Message) -> None:
        """The player's channel message at song position ``tick``."""
        if msg.type not in ("note_on", "note_off"):
            return
        for agent in self.agents:
            if agent.hears(msg):
                agent.note(tick, msg)

    def tick(self, tick: int) -> None:
        """Song position ``tick`` is reached: every agent gets its turn."""
        self.tick_now = tick
        if self.loading:
            self.install_ready(tick)
        for agent in self.agents:
            try:
                agent.tick(tick)
            except Exception:
                log.exception("agent %s failed at tick %d; it is stopped", agent.name, tick)
                self.say(f"{agent.name} failed and was stopped (see the log)")
                agent.stop(tick)

    @property
    def warming(self) -> bool:
        """Whether any agent rehearses between notes (its ``keep_warm`` does something)."""
        return any(type(agent).keep_warm is not Agent.keep_warm for agent in self.agents)

    def keep_warm(self, interrupted: Callable[[], bool] | None = None) -> None:
        """Let every agent keep its model warm (``Agent.keep_warm``); the daemon calls this, with
        ``interrupted`` true once something waits for its loop."""
        for agent in self.agents:
            if interrupted is not None and interrupted():
                return
            agent.keep_warm(interrupted)

    def set_tempo(self, bpm: float) -> None:
        """The clock's tempo (quarter notes per minute), for agents that think in seconds
        (Performance RNN's 10 ms steps)."""
        self.bpm = float(bpm)
        for agent in self.agents:
            agent.seconds_per_tick = seconds_per_tick(self.bpm)

    def stop(self, tick: int) -> None:
        """Transport stop or panic: every agent silent and idle."""
        for agent in self.agents:
            agent.stop(tick)

    # -- commands --------------------------------------------------------------------------------

    def command(self, cmd: Command, models: Callable[[str], Model] | None = None) -> None:
        """Apply a parameter command (temperature, density, response_bars, loop, mutate, end_call,
        mode, model). Daemon-wide ones (tempo, panic, start_stop, record) are the daemon's."""
        targets = range(len(self.agents)) if cmd.agent is None else [cmd.agent]
        for i in targets:
            agent = self.agents[i]
            p = agent.params
            if cmd.name == "temperature":
                p.set_temperature(_apply(p.temperature, cmd))
            elif cmd.name == "density":
                p.set_density(_apply(p.density, cmd))
            elif cmd.name == "scale_lock":
                p.set_scale_lock(_apply(p.scale_lock, cmd))
            elif cmd.name == "top_p":
                p.set_top_p(_apply(p.top_p, cmd))
            elif cmd.name == "strays":
                p.set_strays(_apply(p.strays, cmd))
            elif cmd.name == "morph_steps":
                p.set_morph_steps(_apply(p.morph_steps, cmd))
            elif cmd.name == "response_bars":
                value = min(MAX_RESPONSE_BARS, _apply(p.response_bars or 0.0, cmd))
                p.response_bars = None if value <= 0 else float(value)
            elif cmd.name in ("loop", "mutate"):
                old = getattr(p, cmd.name)
                setattr(p, cmd.name, (not old) if cmd.value is None else bool(cmd.value))
            elif cmd.name == "end_call":
                agent.end_call(max(self.tick_now, 0))
            elif cmd.name == "mode":
                mode = _next(MODES, agent.spec.mode) if cmd.value is None else str(cmd.value)
                self._swap(i, mode=mode)
            elif cmd.name == "model":
                self._swap(i, model=None if cmd.value is None else str(cmd.value), next_model=cmd.value is None)
            else:
                raise ValueError(f"not a session command: {cmd.name!r}")
        if cmd.name in AGENT_PARAMETERS:
            a = self.agents[targets[0]].params
            self.say(f"{cmd.name}: {getattr(a, cmd.name)}")

    def _swap(self, index: int, mode: str | None = None, model: str | None = None, next_model: bool = False) -> None:
        spec = self.agents[index].spec
        if mode is not None and mode != spec.mode:
            # a mode change takes that mode's default model unless the current one can play it
            candidate = replace(spec, mode=mode)
            self.swap(index, [(candidate, self.agents[index].model), (replace(candidate, model=DEFAULT_FOR_MODE[mode]), None)],
                      f"no bundled model plays {mode}")
            return
        if next_model:
            names = [m.name for m in bundled_models() if m.kind == "rnn"]
            current = spec.model or DEFAULT_FOR_MODE.get(spec.mode)
            candidates = []
            for _ in names:
                current = _next(names, current)
                candidates.append((replace(spec, model=current), None))
            self.swap(index, candidates, "no other bundled model plays this mode")
            return
        self.swap(index, [(replace(spec, model=model), None)], "")

    # -- what the panel shows ---------------------------------------------------------------------

    def say(self, text: str, level: int = logging.INFO) -> None:
        """A line for the log (at ``level``) and for whoever listens (``on_say``: the panel's log pane)."""
        log.log(level, "%s", text)
        if self.on_say is not None:
            self.on_say(text)

    def agent_views(self) -> tuple[AgentView, ...]:
        views = []
        for a in self.agents:
            key = a.key
            views.append(AgentView(
                a.name, a.spec.mode, a.model.config_id, str(a.state), a.params.temperature, a.params.density,
                a.channel + 1, a.params.loop, a.params.mutate, a.params.response_bars, a.notes_played, a.step_seconds * 1e3,
                key.name if key is not None else "", a.spec.key is not None, a.params.scale_lock, a.params.top_p,
                a.params.strays if a.spec.mode in ("vary", "morph") else None,
                f"{getattr(a, 'morph_at', 0)}/{a.params.morph_steps}" if a.spec.mode == "morph" else "",
            ))
        return tuple(views)



def _apply(current: float, cmd: Command) -> float:
    """The new value a command asks for (the caller clamps it); a value that is not a finite
    number (NaN from a bad sender) leaves ``current`` as it is."""
    try:
        value = current + float(cmd.delta) if cmd.delta is not None else current if cmd.value is None else float(cmd.value)
    except (TypeError, ValueError):
        return current
    return value if math.isfinite(value) else current


def _next(items: tuple[str, ...] | list[str], current: str | None) -> str:
    if not items:
        raise ValueError("nothing to choose from")
    if current not in items:
        return items[0]
    return items[(list(items).index(current) + 1) % len(items)]
