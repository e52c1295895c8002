"""Melody RNN encodings: one-hot melody events, the key-melody encoding, squashing.

Melody events are ints, one per time step (a sixteenth note at 4 steps per quarter):
a MIDI pitch 0..127 starts a note, ``MELODY_NOTE_OFF`` (-1) ends the sounding note and
``MELODY_NO_EVENT`` (-2) keeps whatever was happening.

Configurations (Magenta ``melody_rnn`` / ``improv_rnn`` ids):

- basic_rnn: ``OneHotEventEncoder(MelodyOneHotEncoding(48, 84))``, input 38, 38 classes
- mono_rnn: ``OneHotEventEncoder(MelodyOneHotEncoding(0, 128))``, input 130, 130 classes
- lookback_rnn: ``LookbackEncoder(MelodyOneHotEncoding(48, 84), (16, 32), 5)``, input 121,
  40 classes
- attention_rnn: ``KeyMelodyEncoder(48, 84)``, input 74, 40 classes
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from live.errors import EncodingError
from live.models.encodings.base import (
    MELODY_NO_EVENT,
    MELODY_NOTE_OFF,
    LookbackEncoder,
    OneHotEncoding,
)

NOTES_PER_OCTAVE = 12
STEPS_PER_BAR = 16  # note-seq's default bar length (4/4 at 4 steps per quarter)
MIN_MIDI_PITCH = 0
MAX_MIDI_PITCH = 127
_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)

# KEYS_OF_PITCH_CLASS[pc]: the major keys (tonic pitch class, C major = 0) whose scale holds pc.
KEYS_OF_PITCH_CLASS: tuple[tuple[int, ...], ...] = tuple(
    tuple(key for key in range(NOTES_PER_OCTAVE) if (pc - key) % NOTES_PER_OCTAVE in _MAJOR_SCALE)
    for pc in range(NOTES_PER_OCTAVE)
)
_KEY_INDEX = tuple(np.array(keys, np.intp) for keys in KEYS_OF_PITCH_CLASS)


def _check_range(min_note: int, max_note: int) -> None:
    if min_note < MIN_MIDI_PITCH:
        raise EncodingError(f"min_note must be >= 0, got {min_note}")
    if max_note > MAX_MIDI_PITCH + 1:
        raise EncodingError(f"max_note must be <= 128, got {max_note}")
    if max_note <= min_note:
        raise EncodingError(f"max_note ({max_note}) must be greater than min_note ({min_note})")


def _check_event(event: Any) -> int:
    """``event`` as an int melody event; EncodingError when it is not one."""
    if isinstance(event, bool) or not isinstance(event, (int, np.integer)):
        raise EncodingError(f"melody events are ints (pitch, -1 or -2), got {event!r}")
    event = int(event)
    if not MELODY_NO_EVENT <= event <= MAX_MIDI_PITCH:
        raise EncodingError(f"melody event out of range -2..127: {event}")
    return event


class MelodyOneHotEncoding(OneHotEncoding):
    """One class per melody event: 0 = no event, 1 = note-off, 2 + (pitch - min_note) = note-on.

    Args:
        min_note: lowest MIDI pitch that can be encoded.
        max_note: one above the highest MIDI pitch that can be encoded (exclusive).
    """

    default_event = MELODY_NO_EVENT

    def __init__(self, min_note: int = 48, max_note: int = 84) -> None:
        _check_range(min_note, max_note)
        self.min_note = min_note
        self.max_note = max_note
        self.num_classes = max_note - min_note + 2

    def encode_event(self, event: Hashable) -> int:
        event = _check_event(event)
        if event < 0:
            return event + 2  # -2 -> 0, -1 -> 1
        if not self.min_note <= event < self.max_note:
            raise EncodingError(
                f"pitch {event} is outside the encoded range [{self.min_note}, {self.max_note});"
                " squash or transpose the melody first"
            )
        return event - self.min_note + 2

    def decode_event(self, index: int) -> int:
        if not 0 <= index < self.num_classes:
            raise EncodingError(f"melody class {index} is outside 0..{self.num_classes - 1}")
        return index - 2 if index < 2 else index - 2 + self.min_note


class _KeyMelodyOneHot(MelodyOneHotEncoding):
    """The key-melody class layout: pitches first, then no-event, then note-off."""

    def encode_event(self, event: Hashable) -> int:
        event = _check_event(event)
        note_range = self.max_note - self.min_note
        if event == MELODY_NO_EVENT:
            return note_range
        if event == MELODY_NOTE_OFF:
            return note_range + 1
        if not self.min_note <= event < self.max_note:
            raise EncodingError(
                f"pitch {event} is outside the encoded range [{self.min_note}, {self.max_note});"
                " squash or transpose the melody first"
            )
        return event - self.min_note

    def decode_event(self, index: int) -> int:
        note_range = self.max_note - self.min_note
        if not 0 <= index < self.num_classes:
            raise EncodingError(f"melody class {index} is outside 0..{self.num_classes - 1}")
        if index == note_range:
            return MELODY_NO_EVENT
        if index == note_range + 1:
            return MELODY_NOTE_OFF
        return self.min_note + index


class KeyMelodyEncoder(LookbackEncoder):
    """Magenta's attention_rnn melody encoding (note-seq's ``KeyMelodyEncoderDecoder``).

    Input for position p, for a range of R = max_note - min_note pitches and k lookbacks
    (R = 36, k = 2, 7 counter bits: 74 values):

    - [R]: one-hot of the sounding pitch (a note-on not yet followed by a note-off);
    - 1 if a note sounds, then 1 if silence (a sounding pitch 0 counts as silence, as in
      Magenta);
    - 1 if the newest note-on came after the newest no-event (note-offs leave it alone);
    - +1 / -1 if the newest note-on was higher / lower than the note-on before it (unchanged
      on a repeated pitch, 0 before two notes);
    - [k]: 1 if event p equals event p - d, per lookback distance d;
    - [binary_counter_bits]: bits of p + 1 as +1 / -1;
    - 1 if step p + 1 starts a 16-step bar;
    - [12]: 1 for every major key that holds the most note-ons so far (all of them when none);
    - [12]: the same for the (up to) 3 most recent distinct pitches.

    Classes: [R] pitches, no-event, note-off, then one "repeat d steps back" per distance.
    Before the longest lookback exists, a no-event is labelled as its repeat (Magenta's quirk).
    """

    def __init__(
        self,
        min_note: int = 48,
        max_note: int = 84,
        lookback_distances: tuple[int, ...] = (16, 32),
        binary_counter_bits: int = 7,
    ) -> None:
        super().__init__(_KeyMelodyOneHot(min_note, max_note), lookback_distances, binary_counter_bits)
        self.min_note = min_note
        self.max_note = max_note
        self.note_range = max_note - min_note
        k = len(self.lookback_distances)
        self.input_size = self.note_range + 2 + 1 + 1 + k + binary_counter_bits + 1 + 2 * NOTES_PER_OCTAVE
        self._reset_features()

    def _reset_features(self) -> None:
        self.current_note: int | None = None
        self.is_attack = False
        self.is_ascending: bool | None = None
        self.recent_notes: list[int] = []  # up to 3 distinct pitches, most recent last
        # key_histogram[key]: how many note-ons so far fit the major scale of ``key``.
        self.key_histogram = np.zeros(NOTES_PER_OCTAVE, np.int64)

    def append(self, event: Hashable) -> None:
        """Append one melody event (one step); O(1) feature update."""
        event = _check_event(event)
        if event >= 0 and not self.min_note <= event < self.max_note:
            raise EncodingError(
                f"pitch {event} is outside the encoded range [{self.min_note}, {self.max_note});"
                " squash or transpose the melody first"
            )
        self.events.append(event)
        if event == MELODY_NO_EVENT:
            self.is_attack = False
        elif event == MELODY_NOTE_OFF:
            self.current_note = None
        else:
            self.is_attack = True
            self.current_note = event
            recent = self.recent_notes
            if recent and event != recent[-1]:
                self.is_ascending = event > recent[-1]
            if event in recent:
                recent.remove(event)
            recent.append(event)
            if len(recent) > 3:
                del recent[0]
            self.key_histogram[_KEY_INDEX[event % NOTES_PER_OCTAVE]] += 1

    def encode_input(self, out: np.ndarray, control: Any = None) -> np.ndarray:
        events = self.events
        if not events:
            raise EncodingError("no event appended yet: append a primer event first")
        p = len(events) - 1
        event = events[p]
        r = self.note_range
        out[:] = 0.0
        if self.current_note:  # pitch 0 is falsy in Magenta's check: it reads as silence
            out[self.current_note - self.min_note] = 1.0
            out[r] = 1.0
        else:
            out[r + 1] = 1.0
        offset = r + 2
        if self.is_attack:
            out[offset] = 1.0
        offset += 1
        if self.is_ascending is not None:
            out[offset] = 1.0 if self.is_ascending else -1.0
        offset += 1
        for d in self.lookback_distances:
            if p >= d and events[p - d] == event:
                out[offset] = 1.0
            offset += 1
        step = p + 1
        for bit in range(self.binary_counter_bits):
            out[offset] = 1.0 if (step >> bit) & 1 else -1.0
            offset += 1
        if step % STEPS_PER_BAR == 0:
            out[offset] = 1.0
        offset += 1
        hist = self.key_histogram
        out[offset : offset + NOTES_PER_OCTAVE] = hist == hist.max()
        offset += NOTES_PER_OCTAVE
        recent_hist = [0] * NOTES_PER_OCTAVE
        for pitch in self.recent_notes:
            for key in KEYS_OF_PITCH_CLASS[pitch % NOTES_PER_OCTAVE]:
                recent_hist[key] += 1
        top = max(recent_hist)
        for key in range(NOTES_PER_OCTAVE):
            if recent_hist[key] == top:
                out[offset + key] = 1.0
        return out


def major_key_histogram(events: Sequence[int]) -> list[int]:
    """For each major key (tonic pitch class, C = 0), how many note-ons of ``events`` fit it."""
    hist = [0] * NOTES_PER_OCTAVE
    for event in events:
        if event >= 0:
            for key in KEYS_OF_PITCH_CLASS[event % NOTES_PER_OCTAVE]:
                hist[key] += 1
    return hist


def major_key(events: Sequence[int]) -> int:
    """The most likely major key of ``events`` (0 = C); ties go to the lowest pitch class."""
    hist = major_key_histogram(events)
    return hist.index(max(hist))


def transpose_melody(
    events: Sequence[int], amount: int, min_note: int = 0, max_note: int = 128
) -> list[int]:
    """Shift every note-on by ``amount`` semitones, then fold it by octaves into [min_note, max_note).

    Note-offs and no-events are kept. Like note-seq's ``Melody.transpose``.

    Args:
        events: melody events (MIDI pitch, -1, -2), one per step.
        amount: semitones; positive is up.
        min_note: lowest allowed MIDI pitch (inclusive).
        max_note: highest allowed MIDI pitch (exclusive).
    Returns:
        A new list of events.
    """
    out = []
    for event in events:
        event = _check_event(event)
        if event >= 0:
            event += amount
            if event < min_note:
                event = min_note + (event - min_note) % NOTES_PER_OCTAVE
            elif event >= max_note:
                event = max_note - NOTES_PER_OCTAVE + (event - max_note) % NOTES_PER_OCTAVE
        out.append(event)
    return out


def squash_melody(
    events: Sequence[int], min_note: int, max_note: int, transpose_to_key: int | None
) -> tuple[list[int], int]:
    """Transpose a melody into ``transpose_to_key`` and centre it in [min_note, max_note).

    This is what Magenta does to a primer before generating (note-seq's ``Melody.squash``):
    the melody's major key is estimated (``major_key``), it is moved to ``transpose_to_key``
    by the octave shift that brings its pitch centre nearest the centre of the range, and
    finally every note is folded by octaves into the range. With ``transpose_to_key`` None
    the amount is 0 and only the folding happens. Generated events are moved back with
    ``transpose_melody(events, -amount)``.

    Note-seq's ``Melody`` turns note-offs before the first note into no-events when it is
    built; this function leaves them as they are.

    Args:
        events: melody events (MIDI pitch, -1, -2), one per step.
        min_note: lowest allowed MIDI pitch (inclusive).
        max_note: highest allowed MIDI pitch (exclusive).
        transpose_to_key: target major key (0 = C .. 11 = B), or None to keep the key.
    Returns:
        (squashed events, transpose amount in semitones).
    """
    events = [_check_event(e) for e in events]
    if transpose_to_key is None:
        amount = 0
    else:
        pitches = [e for e in events if e >= 0]
        if not pitches:
            return events, 0
        key_shift = transpose_to_key - major_key(pitches)
        melody_centre = (min(pitches) + max(pitches)) / 2
        range_centre = (min_note + max_note - 1) / 2
        # Python's round: halves go to the even number, as in note-seq.
        octaves = int(round((range_centre - (melody_centre + key_shift)) / float(NOTES_PER_OCTAVE)))
        amount = key_shift + NOTES_PER_OCTAVE * octaves
    return transpose_melody(events, amount, min_note, max_note), amount
