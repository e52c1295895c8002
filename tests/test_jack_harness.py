"""The JACK test harness itself: a private server, and two clients that hear each other."""

from __future__ import annotations

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
