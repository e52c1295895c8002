"""The note ledger: every note-on gets its note-off, whatever path ends the music."""

from __future__ import annotations

import os
import signal
import threading

import mido
import pytest

from live.midi_io.ledger import ALL_NOTES_OFF, NoteLedger
from tests.midi_io.notes import hanging


def on(note: int, channel: int = 0, velocity: int = 100) -> mido.Message:
    return mido.Message("note_on", channel=channel, note=note, velocity=velocity)


def off(note: int, channel: int = 0, velocity: int = 64) -> mido.Message:
    return mido.Message("note_off", channel=channel, note=note, velocity=velocity)


def cc123(channel: int) -> mido.Message:
    return mido.Message("control_change", channel=channel, control=ALL_NOTES_OFF, value=0)


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_notes_pass_through_and_are_tracked():
    out: list[mido.Message] = []
    ledger = NoteLedger(out.append)
    ledger.send(on(60))
    ledger.send(on(64, channel=3))
    ledger.send(mido.Message("control_change", channel=0, control=64, value=127))
    assert out == [on(60), on(64, channel=3), mido.Message("control_change", channel=0, control=64, value=127)]
    assert ledger.sounding() == [(0, 60), (3, 64)]
    assert ledger.sounding_count == 2
    assert ledger.notes_on == 2
    ledger.send(off(60))
    assert ledger.sounding() == [(3, 64)]
    assert ledger.channels_used == [0, 3]


def test_a_second_note_on_for_a_sounding_pitch_gets_its_note_off_first():
    out: list[mido.Message] = []
    ledger = NoteLedger(out.append)
    ledger.send(on(60, velocity=80))
    ledger.send(on(60, velocity=90))
    assert [(m.type, m.note) for m in out] == [("note_on", 60), ("note_off", 60), ("note_on", 60)]
    assert out[2].velocity == 90
    assert ledger.retriggers == 1
    assert ledger.sounding() == [(0, 60)]
    # The same pitch on another channel is another note: no note-off.
    ledger.send(on(60, channel=1))
    assert out[-1] == on(60, channel=1) and len(out) == 4


def test_velocity_zero_note_on_releases():
    out: list[mido.Message] = []
    ledger = NoteLedger(out.append)
    ledger.send(on(62))
    ledger.send(on(62, velocity=0))
    assert ledger.sounding() == []
    assert out == [on(62), on(62, velocity=0)]  # passed on as it came
    assert ledger.stray_note_offs == 0


def test_a_note_off_for_a_silent_note_passes_through_and_is_counted():
    out: list[mido.Message] = []
    ledger = NoteLedger(out.append)
    ledger.send(off(70))
    ledger.send(on(70, velocity=0))
    assert out == [off(70), on(70, velocity=0)]
    assert ledger.stray_note_offs == 2
    assert ledger.sounding() == []


def test_release_all_sends_every_note_off_then_all_notes_off_per_used_channel():
    out: list[mido.Message] = []
    ledger = NoteLedger(out.append)
    ledger.send(on(60, channel=2))
    ledger.send(on(67, channel=2))
    ledger.send(on(48, channel=9))
    ledger.send(off(48, channel=9))
    ledger.send(mido.Message("program_change", channel=5, program=3))
    out.clear()
    sent = ledger.release_all()
    assert sent == out
    assert out[:2] == [off(60, channel=2), off(67, channel=2)]
    assert out[2:] == [cc123(2), cc123(5), cc123(9)]
    assert ledger.sounding() == []


def test_release_all_is_idempotent():
    out: list[mido.Message] = []
    ledger = NoteLedger(out.append)
    assert ledger.release_all() == []  # nothing ever went out: nothing to say
    ledger.send(on(60))
    first = ledger.release_all()
    assert first == [off(60), cc123(0)]
    assert ledger.release_all() == []
    assert ledger.release_all() == []
    assert out == [on(60), off(60), cc123(0)]
    # Clock pulses don't make another All Notes Off necessary...
    ledger.send(mido.Message("clock"))
    assert ledger.release_all() == []
    # ...but any channel message does, on every channel used so far.
    ledger.send(mido.Message("control_change", channel=4, control=1, value=5))
    assert ledger.release_all() == [cc123(0), cc123(4)]


def test_release_all_reaches_every_note_when_the_output_fails():
    out: list[mido.Message] = []

    def flaky(msg: mido.Message) -> None:
        if msg.type == "note_off" and msg.note == 61:
            raise OSError("port gone")
        out.append(msg)

    ledger = NoteLedger(flaky)
    for n in (60, 61, 62):
        ledger.send(on(n))
    sent = ledger.release_all()  # does not raise
    assert off(60) in out and off(62) in out and cc123(0) in out
    assert sent == [off(60), off(62), cc123(0)]
    assert ledger.send_errors == 1
    assert isinstance(ledger.last_error, OSError)


def test_a_failed_note_on_is_not_sounding_and_the_error_propagates():
    def broken(msg: mido.Message) -> None:
        raise OSError("no port")

    ledger = NoteLedger(broken)
    with pytest.raises(OSError):
        ledger.send(on(60))
    assert ledger.sounding() == []
    assert ledger.send_errors == 1


def test_maximum_note_length_guard():
    clock = FakeClock(10.0)
    out: list[mido.Message] = []
    ledger = NoteLedger(out.append, max_note_seconds=2.0, now=clock)
    ledger.send(on(60))
    clock.t = 11.0
    ledger.send(on(64))
    assert ledger.next_expiry() == pytest.approx(12.0)
    assert ledger.expire(11.9) == []
    assert ledger.expire(12.0) == [off(60)]
    assert ledger.sounding() == [(0, 64)]
    assert ledger.next_expiry() == pytest.approx(13.0)
    clock.t = 13.5
    assert ledger.expire() == [off(64)]
    assert ledger.expired == 2
    assert ledger.next_expiry() is None
    # The real note-off arriving later is a stray one, passed through harmlessly.
    ledger.send(off(60))
    assert ledger.stray_note_offs == 1
    assert hanging(out) == set()


def test_no_guard_without_a_limit():
    ledger = NoteLedger([].append)
    ledger.send(on(60))
    assert ledger.expire(1e9) == []
    assert ledger.next_expiry() is None
    with pytest.raises(ValueError):
        NoteLedger([].append, max_note_seconds=0)


def test_release_by_owner():
    out: list[mido.Message] = []
    ledger = NoteLedger(out.append)
    ledger.send(on(60), owner="a")
    ledger.send(on(62), owner="b")
    ledger.send(on(64), owner="a")
    assert ledger.sounding(owner="a") == [(0, 60), (0, 64)]
    assert ledger.owner_of(0, 62) == "b"
    assert ledger.release() == []
    assert ledger.release(owner="a", keys=[(0, 60), (0, 62)]) == [off(60)]  # 62 is b's
    assert ledger.release(owner="a") == [off(64)]
    assert ledger.sounding() == [(0, 62)]
    # A re-struck note belongs to whoever struck it last.
    ledger.send(on(62), owner="a")
    assert ledger.owner_of(0, 62) == "a"


def test_concurrent_senders_leave_a_consistent_ledger():
    out: list[mido.Message] = []
    lock = threading.Lock()

    def send(msg: mido.Message) -> None:
        with lock:
            out.append(msg)

    ledger = NoteLedger(send)
    start = threading.Barrier(4)

    def play(channel: int) -> None:
        start.wait()
        for i in range(2000):
            note = 40 + i % 24
            ledger.send(on(note, channel=channel % 2))  # two threads share each channel
            if i % 3:
                ledger.send(off(note, channel=channel % 2))

    threads = [threading.Thread(target=play, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # What the ledger thinks sounds is exactly what the output stream leaves sounding.
    assert set(ledger.sounding()) == hanging(out)
    assert ledger.notes_on == 8000
    ledger.release_all()
    assert hanging(out) == set()
    assert ledger.sounding_count == 0


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs POSIX signals")
def test_release_all_from_a_signal_handler_interrupting_a_send_leaves_nothing_hanging():
    """A real signal arrives while the main thread is inside ledger.send, between the ledger's
    bookkeeping and the port; the handler releases everything (no deadlock), and the note that
    was being sent does not survive it."""
    out: list[mido.Message] = []

    def port_send(msg: mido.Message) -> None:
        if msg.type == "note_on" and msg.note == 60:
            os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs before the next line
        out.append(msg)

    ledger = NoteLedger(port_send)
    released = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: released.append(ledger.release_all()))
    try:
        ledger.send(on(50))
        ledger.send(on(60))
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert released and off(50) in released[0]
    assert hanging(out) == set()
    assert ledger.sounding() == []


def test_panic_ends_every_note_ever_struck_and_clears_all_16_channels():
    """A synth may have missed a note-off (a dropped message, a crash): panic sends one for every
    note the ledger ever struck, sounding or not, then All Sound Off and All Notes Off on all 16
    channels, and the ledger sounds nothing after."""
    sent: list[mido.Message] = []
    ledger = NoteLedger(sent.append)
    ledger.send(mido.Message("note_on", channel=2, note=60, velocity=90))
    ledger.send(mido.Message("note_off", channel=2, note=60))  # thought silent
    ledger.send(mido.Message("note_on", channel=9, note=36, velocity=90))  # sounding
    sent.clear()
    out = ledger.panic()
    assert out == sent
    offs = [(m.channel, m.note) for m in sent if m.type == "note_off"]
    assert offs == [(2, 60), (9, 36)]
    ccs = [(m.channel, m.control) for m in sent if m.type == "control_change"]
    assert ccs == [(c, cc) for c in range(16) for cc in (120, 123)]
    assert ledger.sounding() == [] and ledger.sounding_count == 0
