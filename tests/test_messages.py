"""The note path's message constructors make what mido makes."""

from __future__ import annotations

import mido
import pytest

from live import messages


def fields(msg: mido.Message) -> list:
    return list(vars(msg).items())  # values and their order, as mido's own repr and copy see them


@pytest.mark.parametrize("data1, data2", [(0, 0), (60, 127), (127, 1), (128, 0), (5, 200), (127, 128)])
def test_from_bytes_decodes_every_three_byte_message_as_mido_does(data1, data2):
    for status in range(0x80, 0x100):
        data = bytes([status, data1, data2])
        try:
            expected = fields(mido.Message.from_bytes(data, time=1.5))
        except ValueError:
            with pytest.raises(ValueError):
                messages.from_bytes(data, time=1.5)
            continue
        assert fields(messages.from_bytes(data, time=1.5)) == expected, data.hex()


def test_other_lengths_go_through_mido():
    for data in (b"\xf8", b"\xc0\x05", b"\xf0\x01\x02\xf7", b"\xe0\x00\x40"):
        assert fields(messages.from_bytes(data, 0.25)) == fields(mido.Message.from_bytes(data, time=0.25))
    for data in (b"", b"\x3c\x40", b"\x90\x3c"):
        with pytest.raises(ValueError):
            messages.from_bytes(data)


def test_the_constructors_make_mido_messages_and_check_ranges():
    for kind, first, second in (("note_on", "note", "velocity"), ("note_off", "note", "velocity"),
                                ("polytouch", "note", "value"), ("control_change", "control", "value")):
        for channel, a, b in ((0, 0, 0), (15, 127, 127), (9, 60, 1)):
            made = messages.channel_message(kind, channel, a, b)
            expected = mido.Message(kind, channel=channel, **{first: a, second: b})
            assert fields(made) == fields(expected) and made.bytes() == expected.bytes()
    assert fields(messages.note_on(3, 64, 90)) == fields(mido.Message("note_on", channel=3, note=64, velocity=90))
    assert fields(messages.note_off(3, 64)) == fields(mido.Message("note_off", channel=3, note=64, velocity=0))
    import numpy as np

    assert type(messages.note_on(np.int64(1), np.int64(60), np.int64(80)).note) is int  # a model's pitch
    for bad in ((16, 60, 80), (0, 128, 80), (0, 60, 128), (-1, 60, 80)):
        with pytest.raises(ValueError):
            messages.note_on(*bad)
    for bad in ((0, 60.7, 80), (0, "60", 80), (0, 60, None)):  # integers only, as mido
        with pytest.raises(TypeError):
            messages.note_on(*bad)
