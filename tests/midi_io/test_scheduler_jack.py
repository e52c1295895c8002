"""The output scheduler through a real JACK MIDI port, heard by a separate JACK client."""

from __future__ import annotations

import time
from dataclasses import dataclass

import mido
import rtmidi

from live.midi_io.ledger import ALL_NOTES_OFF
from live.midi_io.scheduler import OutputScheduler, SchedulerStats
from tests.jack import listen, unique_client_name, wait_for_port

NOTES = 50
SPACING = 0.010  # seconds between note-ons
HELD = 0.005  # seconds each note sounds, except the last few
UNFINISHED = 5  # these notes' note-offs are still pending when the scheduler stops


@dataclass
class Session:
    heard: list[tuple[float, mido.Message]]  # (arrival, message) at the other client
    deadlines: dict[int, float]  # note -> its note-on's deadline (perf_counter seconds)
    pending_at_stop: int
    stats: SchedulerStats
    sounding_after_stop: list[tuple[int, int]]
    sent: list[mido.Message]  # what the scheduler handed to the port


def play_session() -> Session:
    """50 notes scheduled 10 ms apart into a JACK output connected to a listener; the last five
    note-offs are still pending when the scheduler stops."""
    ear = listen()
    out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=unique_client_name("sched"))
    out.open_port(out.get_ports().index(wait_for_port(ear.port_name, "input")), "out")
    sent: list[mido.Message] = []

    def send(msg: mido.Message) -> None:
        sent.append(msg)
        out.send_message(msg.bytes())

    scheduler = OutputScheduler(send)
    try:
        time.sleep(0.05)  # let JACK finish the connection
        scheduler.start()
        t0 = time.perf_counter() + 0.05
        deadlines = {}
        for i in range(NOTES):
            note = 40 + i
            start = t0 + i * SPACING
            deadlines[note] = start
            scheduler.schedule(start, mido.Message("note_on", note=note, velocity=90), tag="answer")
            stop_at = start + (HELD if i < NOTES - UNFINISHED else 10.0)
            scheduler.schedule(stop_at, mido.Message("note_off", note=note), tag="answer")
        ear.wait_for(NOTES, "note_on", timeout=3.0)
        ear.wait_for(NOTES - UNFINISHED, "note_off", timeout=1.0)
        time.sleep(2 * HELD)
        pending = scheduler.pending()
        stats = scheduler.stats()
        scheduler.stop()  # drops the pending note-offs; the ledger releases those notes
        ear.wait_for(1, "control_change", timeout=1.0)
        time.sleep(0.02)
        return Session(ear.stamped(), deadlines, pending, stats, scheduler.ledger.sounding(), sent)
    finally:
        scheduler.stop()
        out.close_port()
        out.delete()
        ear.close()


def test_scheduled_notes_reach_another_jack_client_in_order_on_time_and_all_released(jack_server):
    for attempt in range(3):  # JACK without realtime priority may drop an event when a cycle overruns
        session = play_session()
        # What the scheduler itself did does not depend on JACK: check it on every attempt.
        assert session.pending_at_stop == UNFINISHED
        assert session.stats.sent == 2 * NOTES - UNFINISHED
        assert min(session.stats.errors) >= 0  # never before a deadline
        assert session.sounding_after_stop == []
        ons = [m.note for m in session.sent if m.type == "note_on"]
        assert ons == [40 + i for i in range(NOTES)]
        assert len(session.sent) == 2 * NOTES + 1  # every note-off (5 from the ledger), then CC 123
        if len(session.heard) == len(session.sent):
            break
    heard = [m for _, m in session.heard]
    assert len(heard) == len(session.sent), "JACK dropped messages in three attempts"
    assert heard == session.sent  # every one, in order

    period = jack_server.period_seconds
    for stamp, msg in session.heard:
        if msg.type == "note_on":
            late = stamp - session.deadlines[msg.note]
            assert late >= -period, f"note {msg.note} arrived {-late * 1e3:.2f} ms before its deadline"
            assert late < 0.050, f"note {msg.note} arrived {late * 1e3:.1f} ms after its deadline"

    sounding: set[int] = set()
    for msg in heard:
        if msg.type == "note_on" and msg.velocity > 0:
            assert msg.note not in sounding
            sounding.add(msg.note)
        elif msg.type in ("note_on", "note_off"):
            sounding.discard(msg.note)
    assert sounding == set(), f"hanging notes {sorted(sounding)}"
    assert heard[-1] == mido.Message("control_change", control=ALL_NOTES_OFF, value=0)
