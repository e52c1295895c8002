"""Commands on the daemon's loop thread: a CC the player turns, a key, the panel.

A CC becomes a :class:`~live.protocol.Command` through the CC map (``control``); ``apply``
carries one out. The daemon's own commands (transport, tempo, panic, recording, MIDI learn,
quit) are handled here, one function each; the agents' parameters, modes and models go to the
session (``Session.command``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import mido

from live.clock.internal import InternalClock
from live.config import save_controls
from live.engine.session import model_family
from live.models.bundled import bundled_models
from live.models.configs import get_config
from live.protocol import Command
from live.settings import DAEMON_NUMBERS

if TYPE_CHECKING:
    from live.daemon.loop import Daemon

BPM = DAEMON_NUMBERS["bpm"]  # the tempo command stays within --bpm's range


def control(daemon: Daemon, msg: mido.Message) -> bool:
    """A CC from the player: learn it, or turn it into a command. True if it was used."""
    controls = daemon.controls
    if daemon.options.learn or daemon.learning is not None:
        if controls.parameter(msg.control) is None and msg.value > 0:
            daemon.learning = msg.control
            return True
    cmd = controls.command(msg.channel, msg.control, msg.value)
    if cmd is None:
        return controls.parameter(msg.control) is not None
    daemon.counters.controls += 1
    daemon.send_command(cmd)
    return True


def program(daemon: Daemon, msg: mido.Message) -> None:
    """Program Change on the control channel: bundled model number ``program`` (0-based, in the
    order ``magenta-live models`` lists them) for every agent that plays its family."""
    models = bundled_models()
    if not 0 <= msg.program < len(models):
        daemon.say(f"program change {msg.program}: there are {len(models)} bundled models (0 to {len(models) - 1})")
        return
    chosen = models[msg.program]
    if chosen.kind != "rnn":
        daemon.say(f"program change {msg.program}: {chosen.name} is a MusicVAE; no live mode plays it yet "
                   "(magenta-live generate --interpolate/--sample does)")
        return
    try:
        family = get_config(chosen.config_id).family
    except LookupError:
        daemon.say(f"program change {msg.program}: the bundled model {chosen.name} has no configuration this engine knows")
        return
    agents = daemon.session.agents if daemon.session is not None else []
    takers = [i for i, agent in enumerate(agents) if model_family(agent.model) == family]
    if not takers:
        daemon.say(f"program change {msg.program}: no agent plays a {family} model like {chosen.name}")
    for i in takers:
        daemon.send_command(Command("model", value=chosen.name, agent=i))


def apply(daemon: Daemon, cmd: Command) -> None:
    """Carry out one command (on the daemon's loop thread)."""
    own = DAEMON_COMMANDS.get(cmd.name)
    if own is not None:
        own(daemon, cmd)
    elif daemon.session is not None:
        daemon.session.command(cmd)


def _tick(daemon: Daemon) -> int:
    return max(daemon.clock.tick, 0) if daemon.clock is not None else 0


def panic(daemon: Daemon, cmd: Command) -> None:
    daemon.panic()
    daemon.say("panic: all notes off")


def start_stop(daemon: Daemon, cmd: Command) -> None:
    clock = daemon.clock
    if not isinstance(clock, InternalClock):
        daemon.say("start/stop comes from the MIDI clock's master")
        return
    if clock.running:
        clock.stop()
        if daemon.session is not None:
            daemon.session.stop(_tick(daemon))
        daemon.say("stopped")
    else:
        clock.resume()
        daemon.say("started")


def tempo(daemon: Daemon, cmd: Command) -> None:
    clock = daemon.clock
    if not isinstance(clock, InternalClock):
        daemon.say("tempo follows the MIDI clock")
        return
    bpm = cmd.value if cmd.delta is None else clock.bpm + cmd.delta
    if not math.isfinite(float(bpm)):
        return  # a value that is not a number keeps the tempo
    clock.set_bpm(BPM.clamp(float(bpm)))
    if daemon.session is not None:
        daemon.session.set_tempo(clock.bpm)
    daemon.recorder.set_tempo(_tick(daemon), clock.bpm)


def record(daemon: Daemon, cmd: Command) -> None:
    daemon.recorder.toggle(daemon.clock.bpm if daemon.clock is not None else daemon.options.bpm, daemon.agent_names())


def quit_(daemon: Daemon, cmd: Command) -> None:
    daemon.stop()


def learn(daemon: Daemon, cmd: Command) -> None:
    """Map the control just moved to the parameter ``cmd.value``, and save the map."""
    parameter = str(cmd.value)
    if daemon.learning is None:
        daemon.say("learn: move a control first")
        return
    daemon.controls.learn(parameter, daemon.learning)
    daemon.say(f"learned: CC {daemon.learning} steers {parameter}")
    daemon.learning = None
    if daemon.options.learn_file:
        save_controls(daemon.options.learn_file, daemon.controls)


DAEMON_COMMANDS: dict[str, Callable[[Daemon, Command], None]] = {
    "panic": panic, "start_stop": start_stop, "tempo": tempo, "record": record, "quit": quit_, "learn": learn,
}
"""The daemon's own commands; every other command is the session's."""
