"""On real JACK: an input receiving a steady stream while the same process opens and closes
other JACK clients. With a Python callback in JACK's process thread this stalls the server and
the first new client fails ("JACK server not running?"); with the pump it must not."""

from __future__ import annotations

import subprocess
import sys
import time

import mido
import numpy as np

from live.midi_io.backends import new_client, resolve_backend
from live.midi_io.ports import MidiInput
from tests.jack import player, stop_child, track, unique_client_name

SENDER = """
import sys, time, rtmidi
out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=sys.argv[1])
ports = out.get_ports()
out.open_port(ports.index(sys.argv[2]))
time.sleep(0.2)
deadline = time.perf_counter()
for i in range(int(sys.argv[3])):
    deadline += 0.002
    while time.perf_counter() < deadline:
        time.sleep(0.0002)
    out.send_message([0x90, 60 + i % 12, 1 + i % 100])
time.sleep(0.2)
out.close_port()
out.delete()  # a client left open at exit stalls the server (see stop_child)
"""


def test_clients_open_and_close_while_an_input_receives(jack_server):
    count = 1500  # 3 s at 500 messages a second
    ear = MidiInput(backend="jack-rtmidi", client_name=unique_client_name("pumped"), port_name="in")
    sender = track(subprocess.Popen([sys.executable, "-c", SENDER, unique_client_name("sender"), ear.name, str(count)],
                                    env=jack_server.env()))
    backend = resolve_backend("jack")
    try:
        assert ear.wait(30), "the sender never reached the input"  # it is connected and sending
        opened = 0
        while sender.poll() is None:
            client = new_client(backend, "output", unique_client_name("extra"))  # fails if JACK stalled
            client.open_virtual_port("x")
            client.close_port()
            client.delete()
            opened += 1
        assert sender.returncode == 0
        got = list(ear.iter_stamped())
    finally:
        stop_child(sender)
        ear.close()
    assert opened >= 10
    assert len(got) == count and ear.dropped == 0
    stamps = np.array([t for t, _ in got])
    assert np.all(np.diff(stamps) >= 0)
    # the sender's 2 ms spacing survives, to within JACK's period (1.33 ms) and a little
    spacing = np.median(np.diff(stamps))
    assert abs(spacing - 0.002) < 0.0015


def test_without_a_pump_thread_the_owner_pumps(jack_server):
    ear = MidiInput(backend="jack-rtmidi", client_name=unique_client_name("owned"), port_name="in", pump_thread=False)
    mouth = player(ear.name)
    try:
        assert ear.polled
        time.sleep(0.1)  # let JACK finish the connection
        first = mouth.send(mido.Message("note_on", note=60, velocity=100))
        deadline = time.perf_counter() + 1.0
        while ear.pump() == 0 and time.perf_counter() < deadline:  # read promptly once
            time.sleep(0.001)
        sent = [first] + [mouth.send(mido.Message("note_on", note=61 + i, velocity=100)) for i in range(4)]
        time.sleep(0.1)
        assert ear.pending == 1, "nothing moves until the owner pumps"
        assert ear.pump() == 4  # read 100 ms late
        got = list(ear.iter_stamped())
    finally:
        mouth.close()
        ear.close()
    assert [m.note for _, m in got] == [60, 61, 62, 63, 64]
    # once one read was prompt, stamps say when JACK delivered (a period or two after sending),
    # not when they were read
    assert all(0 <= stamp - s < 0.01 for (stamp, _), s in zip(got, sent)), [stamp - s for (stamp, _), s in zip(got, sent)]


def test_a_busy_loop_reads_polled_input_when_it_asks_whether_anything_waits(jack_server):
    """A harmonizing agent's look-ahead takes milliseconds and asks ``Daemon._waiting`` between
    model steps; on python-rtmidi's JACK API nothing else tells the loop that a note came, so
    the question itself reads the driver's queue (a note used to wait out the look-ahead: 10 ms
    at the 99th percentile)."""
    from live.daemon.loop import Daemon
    from live.midi_io import jack as binding
    from live.midi_io.wake import Wake

    ear = MidiInput(backend="jack-rtmidi", client_name=unique_client_name("asked"), port_name="in", pump_thread=False)
    mouth = player(ear.name)
    try:
        loop = Daemon.__new__(Daemon)  # only what its _waiting reads
        loop._wake, loop._arrivals, loop._polled_reads = Wake(), binding.arrivals(), [ear]
        time.sleep(0.1)  # let JACK finish the connection
        assert not loop._waiting() and not ear.pending
        mouth.send(mido.Message("note_on", note=60, velocity=100))
        deadline = time.perf_counter() + 2.0
        while not loop._waiting() and time.perf_counter() < deadline:
            pass
        assert ear.pending == 1 and not loop._wake.is_set()
        assert [m.bytes() for _, m in ear.iter_stamped()] == [[0x90, 60, 100]]
        assert not loop._waiting()
    finally:
        mouth.close()
        ear.close()
