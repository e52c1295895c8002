"""Faults on real JACK ports, with the daemon in this process: a player's port that vanishes
while a key is held."""

from __future__ import annotations

import time

import mido

from live.config import agent_spec
from live.daemon import Daemon, DaemonOptions
from tests.jack import unique_client_name
from tests.midi_io.test_ports_jack import SETTLE, NamedJackClient


def test_a_vanished_players_held_keys_are_let_go(jack_server, melody_model_file):
    """The keyboard's port goes away with a key down: its note ends for the agent (the call
    closes and is answered at once, not seconds later) and for the synth (the passthrough
    note does not hang)."""
    keys = NamedJackClient(unique_client_name("keys"), "out")
    synth = NamedJackClient(unique_client_name("synth"), "in")
    options = DaemonOptions(
        backend="jack", input_ports=[keys.port_name], output_ports=[synth.port_name], passthrough=True,
        agents=[agent_spec({"model": str(melody_model_file), "silence": 2})], seed=1,
        client_name=unique_client_name("stage"),
    )
    try:
        with Daemon(options) as daemon:
            time.sleep(SETTLE)
            agent = daemon.session.agents[0]
            for _ in range(4):  # the dummy JACK server loses an event now and then: press again
                for note in (60, 64):
                    keys.send(mido.Message("note_on", note=note, velocity=90))
                daemon.run(0.4)
                if agent.state == "listening":
                    break
            assert agent.state == "listening"
            keys.send(mido.Message("note_off", note=60))  # 64 stays down
            daemon.run(0.1)
            keys.close()
            gone = time.perf_counter()
            released = None
            while time.perf_counter() - gone < 3.0 and agent.state == "listening":
                daemon.run(0.05)
                if released is None and any("vanished: released 1 held note" in line for line in daemon.log_lines):
                    released = time.perf_counter() - gone
            assert released is not None and released < 1.5, list(daemon.log_lines)
            assert agent.state != "listening"  # the call ended: the answer is on its way
            heard = [m for m in synth.messages() if m.type in ("note_on", "note_off")]
            assert sum(1 for m in heard if m.note == 64 and m.type == "note_on" and m.velocity) == sum(
                1 for m in heard if m.note == 64 and (m.type == "note_off" or m.velocity == 0)
            ), heard
    finally:
        keys.close()
        synth.close()
