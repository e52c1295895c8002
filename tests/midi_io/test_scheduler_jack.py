"""The output scheduler through a real JACK MIDI port, heard by a separate JACK client."""

from __future__ import annotations

import time

import mido
import rtmidi

from live.midi_io.ledger import ALL_NOTES_OFF
from live.midi_io.scheduler import OutputScheduler
from tests.jack import listen, unique_client_name, wait_for_port

NOTES = 50
SPACING = 0.010  # seconds between note-ons
HELD = 0.005  # seconds each note sounds, except the last few
UNFINISHED = 5  # these notes' note-offs are still pending when the scheduler stops


def test_scheduled_notes_reach_another_jack_client_in_order_on_time_and_all_released(jack_server):
    ear = listen()
    out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=unique_client_name("sched"))
    out.open_port(out.get_ports().index(wait_for_port(ear.port_name, "input")), "out")
    scheduler = OutputScheduler(lambda msg: out.send_message(msg.bytes()))
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
        ons = ear.wait_for(NOTES, "note_on")
        ear.wait_for(NOTES - UNFINISHED, "note_off")
        assert scheduler.pending() == UNFINISHED
        scheduler.stop()  # drops the pending note-offs; the ledger releases those notes
        ear.wait_for(NOTES, "note_off")
        ear.wait_for(1, "control_change")
        time.sleep(0.02)

        assert [m.note for m in ons] == [40 + i for i in range(NOTES)], ear.stamped()  # all, in order
        period = jack_server.period_seconds
        for stamp, msg in ear.stamped("note_on"):
            late = stamp - deadlines[msg.note]
            assert late >= -period, f"note {msg.note} arrived {-late * 1e3:.2f} ms before its deadline"
            assert late < 0.050, f"note {msg.note} arrived {late * 1e3:.1f} ms after its deadline"

        sounding: set[int] = set()
        for msg in ear.messages():
            if msg.type == "note_on" and msg.velocity > 0:
                assert msg.note not in sounding
                sounding.add(msg.note)
            elif msg.type in ("note_on", "note_off"):
                sounding.discard(msg.note)
        assert sounding == set(), f"hanging notes {sorted(sounding)}"
        assert ear.messages("control_change") == [mido.Message("control_change", control=ALL_NOTES_OFF, value=0)]
        assert scheduler.ledger.sounding() == []
        stats = scheduler.stats()
        assert stats.sent == 2 * NOTES - UNFINISHED
        assert min(stats.errors) >= 0
    finally:
        scheduler.stop()
        out.close_port()
        out.delete()
        ear.close()
