"""The JACK test harness itself: a private server, and two clients that hear each other."""

from __future__ import annotations

import os
import time

import mido

from tests.jack import listen, player, wait_for_port


def test_a_player_reaches_a_listener_through_a_real_jack_server(jack_server):
    ear = listen()
    mouth = player(wait_for_port(ear.port_name, "input"))
    try:
        time.sleep(0.05)  # let JACK finish the connection
        sent = mouth.send(mido.Message("note_on", note=61, velocity=90))
        got = ear.wait_for(1)
        assert got == [mido.Message("note_on", note=61, velocity=90)]
        arrived = ear.stamped()[0][0]
        assert 0 <= arrived - sent < 0.05
    finally:
        mouth.close()
        ear.close()


def _registry_slots() -> list[tuple[int, int, bytes]]:
    """(slot, pid, name) of every taken slot in JACK's server registry."""
    from harness import jackd

    with open(jackd.REGISTRY, "rb") as f:
        return jackd.registry_slots(f.read())


def test_killed_servers_do_not_use_up_jacks_eight_server_slots(jack_server):
    """A SIGKILLed jackd keeps its registry slot; with every free slot held by dead servers a new
    server must still start (CI once failed 37 tests with "Too many servers already active")."""
    import struct
    import subprocess

    from harness import jackd

    killed = jackd.start_jackd(period=256)
    killed.process.kill()
    killed.process.wait()
    killed.stop()  # gives this process its JACK variables back (the suite's server)
    assert any(pid == killed.process.pid for _, pid, _ in _registry_slots())  # JACK kept its slot
    gone = subprocess.Popen(["true"])
    gone.wait()
    taken = {slot for slot, _, _ in _registry_slots()}
    with open(jackd.REGISTRY, "r+b") as f:
        for slot in set(range(8)) - taken:
            f.seek(jackd.slot_offset(slot))
            f.write(struct.pack("<i", gone.pid) + f"jack-0:dead-{slot}:".encode())
    assert len(_registry_slots()) == 8
    started = time.perf_counter()
    with jackd.start_jackd(period=256) as server:
        assert time.perf_counter() - started < 5  # not after retries for a slot
        pids = {pid for _, pid, _ in _registry_slots()}
        assert server.process.pid in pids and jack_server.process.pid in pids
        assert killed.process.pid not in pids and gone.pid not in pids
    assert os.environ["JACK_DEFAULT_SERVER"] == jack_server.name
