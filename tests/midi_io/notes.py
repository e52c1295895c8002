"""What a synthesizer would make of a message stream, for no-hanging-note assertions."""

from __future__ import annotations

import mido

from live.midi_io.ledger import ALL_NOTES_OFF


def hanging(messages: list[mido.Message]) -> set[tuple[int, int]]:
    """Notes (channel, pitch) left sounding by ``messages``."""
    sounding: set[tuple[int, int]] = set()
    for m in messages:
        if m.type == "note_on" and m.velocity > 0:
            sounding.add((m.channel, m.note))
        elif m.type in ("note_on", "note_off"):
            sounding.discard((m.channel, m.note))
        elif m.type == "control_change" and m.control == ALL_NOTES_OFF:
            sounding = {k for k in sounding if k[0] != m.channel}
    return sounding
