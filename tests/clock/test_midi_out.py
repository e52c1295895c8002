"""MIDI clock out on a manual clock: one 0xF8 per tick, transport messages, song position."""

from __future__ import annotations

import mido

from live.clock import ManualClock, MidiClockOut


def types(messages: list[mido.Message]) -> list[str]:
    return [m.type for m in messages]


def test_clock_out_sends_a_pulse_per_tick_and_the_transport():
    sent: list[mido.Message] = []
    clock = ManualClock(bpm=100.0)
    out = MidiClockOut(sent.append)
    clock.add_listener(out)
    clock.start()
    clock.advance(3)
    clock.stop()
    clock.locate(clock.tick_of(2, 1, 3))  # bar 2, beat 1, step 3 = 234 ticks = 39 16ths
    clock.resume()
    clock.advance(2)
    clock.stop()
    assert types(sent) == ["start", "clock", "clock", "clock", "stop", "songpos", "continue", "clock", "clock", "stop"]
    assert sent[5] == mido.Message("songpos", pos=39)
    assert all(m.bytes() == [0xF8] for m in sent if m.type == "clock")
    assert out.sent == len(sent)


def test_song_position_is_rounded_down_to_a_16th_and_can_be_left_out():
    sent: list[mido.Message] = []
    out = MidiClockOut(sent.append)
    out.on_transport("position", 100)  # 16 16ths and 4 ticks
    out.on_transport("position", 6 * 20000)  # beyond SPP's 14 bits
    quiet: list[mido.Message] = []
    MidiClockOut(quiet.append, song_position=False).on_transport("position", 96)
    assert [m.pos for m in sent] == [16, 16383]
    assert quiet == []
