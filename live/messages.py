"""mido messages made on the note path without mido's general machinery.

``mido.Message("note_on", ...)`` checks every field through a table of specifications, and
``Message.from_bytes`` decodes through another: about 10 us each on a warm CPU and several
times that on a cold one, twice per note between a player's key and its harmony. A note or
control message has three fields with known ranges; these functions check those and fill the
message's attributes directly, as mido's own decoder does (``vars(msg).update``). Anything else
goes through mido.
"""

from __future__ import annotations

import operator

import mido

_Message = mido.Message
_TYPES = {0x80: "note_off", 0x90: "note_on", 0xA0: "polytouch", 0xB0: "control_change"}
_SECOND = {"note_off": "note", "note_on": "note", "polytouch": "note", "control_change": "control"}
_THIRD = {"note_off": "velocity", "note_on": "velocity", "polytouch": "value", "control_change": "value"}


def channel_message(type: str, channel: int, first: int, second: int, time: float = 0) -> mido.Message:
    """A note_on, note_off, polytouch or control_change message (channel 0-15; the two data
    fields, note and velocity or control and value, 0-127); the same as mido's constructor."""
    channel, first, second = operator.index(channel), operator.index(first), operator.index(second)  # numpy ints too
    if not (0 <= channel < 16 and 0 <= first < 128 and 0 <= second < 128) or type not in _SECOND:
        return _Message(type, channel=channel, time=time, **{_SECOND.get(type, "note"): first, _THIRD.get(type, "velocity"): second})
    msg = _Message.__new__(_Message)
    vars(msg).update({"type": type, "time": time, "channel": channel, _SECOND[type]: first, _THIRD[type]: second})
    return msg


def note_on(channel: int, note: int, velocity: int) -> mido.Message:
    return channel_message("note_on", channel, note, velocity)


def note_off(channel: int, note: int, velocity: int = 0) -> mido.Message:
    return channel_message("note_off", channel, note, velocity)


def from_bytes(data: bytes | bytearray, time: float = 0) -> mido.Message:
    """``mido.Message.from_bytes``: a ValueError for bytes that are not one valid message."""
    if len(data) == 3:
        status, first, second = data[0], data[1], data[2]
        type = _TYPES.get(status & 0xF0)
        if type is not None and first < 128 and second < 128:
            msg = _Message.__new__(_Message)
            vars(msg).update({"type": type, "time": time, _SECOND[type]: first, _THIRD[type]: second, "channel": status & 0x0F})
            return msg
    return _Message.from_bytes(data, time=time)
