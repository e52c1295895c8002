"""Drums RNN encodings: a drum step as a set of drum classes, one bit per class.

An event is a ``frozenset`` of MIDI drum pitches (General MIDI percussion keys) struck on one
step; the empty set means no hit. The one-hot index of an event has bit ``i`` set when any of
its pitches belongs to drum class ``i``, so ``n`` classes give ``2 ** n`` indices. Decoding
turns each set bit back into the first pitch listed for that class.

Two Magenta configurations (``magenta/models/drums_rnn/drums_rnn_model.py``):

- ``drum_kit``: 9 drum classes (512 indices) under the lookback encoding with no lookback
  distances and a 6-bit step counter: input 512 + 6 = 518, 512 classes.
- ``one_drum``: a single class holding every pitch 0..127, decoded as hand clap (39): input 2,
  2 classes.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from live.errors import EncodingError, UnknownConfigError
from live.models.encodings.base import (
    EventEncoder,
    LookbackEncoder,
    OneHotEncoding,
    OneHotEventEncoder,
)

# The 9 drum classes of Magenta's drum_kit model; each maps several General MIDI percussion
# keys (GM1 and GM2) onto one drum of a small kit. The first pitch of each class is the one
# produced when decoding. Class i is bit i (2 ** i) of the one-hot index.
DRUM_PITCH_CLASSES: tuple[tuple[int, ...], ...] = (
    (36, 35),  # bass drum
    (38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85),  # snare
    (42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22),  # closed hi-hat
    (46, 67, 72, 74, 79, 81, 26),  # open hi-hat
    (45, 29, 41, 43, 61, 64, 84),  # low tom
    (48, 47, 60, 63, 77, 86, 87),  # mid tom
    (50, 30, 62, 76, 83),  # high tom
    (49, 52, 55, 57, 58),  # crash cymbal
    (51, 53, 59, 82),  # ride cymbal
)
DRUM_CLASS_NAMES: tuple[str, ...] = (
    "bass drum",
    "snare drum",
    "closed hi-hat",
    "open hi-hat",
    "low tom",
    "mid tom",
    "high tom",
    "crash cymbal",
    "ride cymbal",
)

# one_drum: every MIDI pitch is "a drum hit"; decoding gives hand clap (39). Magenta lists
# 39 twice (first, then again in its place in 0..127); the duplicate changes nothing.
ONE_DRUM_PITCH_CLASSES: tuple[tuple[int, ...], ...] = (
    (39,) + tuple(range(0, 39)) + tuple(range(39, 128)),
)

DRUMS_CONFIGS: tuple[str, ...] = ("drum_kit", "one_drum")


class MultiDrumOneHotEncoding(OneHotEncoding):
    """Drum step (frozenset of MIDI pitches) <-> index with one bit per drum class.

    Args:
        drum_type_pitches: one sequence of MIDI pitches per drum class, class i being bit i;
            ``None`` means ``DRUM_PITCH_CLASSES`` (9 classes, 512 indices). A pitch listed in
            several classes belongs to the last of them (as in note-seq).
        ignore_unknown_drums: when True, pitches in no class are dropped while encoding;
            when False they raise ``EncodingError``.
    """

    def __init__(
        self,
        drum_type_pitches: Sequence[Sequence[int]] | None = None,
        ignore_unknown_drums: bool = True,
    ) -> None:
        if drum_type_pitches is None:
            drum_type_pitches = DRUM_PITCH_CLASSES
        self.drum_type_pitches = tuple(tuple(int(p) for p in c) for c in drum_type_pitches)
        if any(not c for c in self.drum_type_pitches):
            raise EncodingError("every drum class needs at least one MIDI pitch")
        self.ignore_unknown_drums = ignore_unknown_drums
        self.num_classes = 2 ** len(self.drum_type_pitches)
        self.default_event: frozenset = frozenset()
        # pitch -> bit mask of its class (later classes win, as in note-seq)
        self._bit_of_pitch: dict[int, int] = {}
        for i, pitches in enumerate(self.drum_type_pitches):
            for p in pitches:
                self._bit_of_pitch[p] = 1 << i
        self._decoded: dict[int, frozenset] = {}

    def encode_event(self, event: Iterable[int]) -> int:
        """Index of a drum step: OR of the class bits of its MIDI pitches."""
        index = 0
        bit_of = self._bit_of_pitch
        for pitch in event:
            bit = bit_of.get(pitch)
            if bit is not None:
                index |= bit
            elif not self.ignore_unknown_drums:
                raise EncodingError(f"MIDI pitch {pitch!r} is in no drum class")
        return index

    def decode_event(self, index: int) -> frozenset:
        """Drum step for ``index``: the first MIDI pitch of each class whose bit is set."""
        event = self._decoded.get(index)
        if event is None:
            if not 0 <= index < self.num_classes:
                raise EncodingError(f"drum index {index} outside 0..{self.num_classes - 1}")
            event = frozenset(
                pitches[0] for i, pitches in enumerate(self.drum_type_pitches) if index >> i & 1
            )
            self._decoded[index] = event
        return event


def drums_encoder(config_id: str = "drum_kit") -> EventEncoder:
    """A fresh incremental encoder for a Drums RNN configuration.

    ``drum_kit``: ``LookbackEncoder(MultiDrumOneHotEncoding(), (), 6)``, input 518, 512 classes.
    ``one_drum``: ``OneHotEventEncoder`` over one class of all 128 pitches, input 2, 2 classes.

    Raises:
        UnknownConfigError: for any other id.
    """
    if config_id == "drum_kit":
        return LookbackEncoder(
            MultiDrumOneHotEncoding(), lookback_distances=(), binary_counter_bits=6
        )
    if config_id == "one_drum":
        return OneHotEventEncoder(MultiDrumOneHotEncoding(ONE_DRUM_PITCH_CLASSES))
    raise UnknownConfigError(
        f"unknown Drums RNN configuration {config_id!r}; known: {', '.join(DRUMS_CONFIGS)}"
    )

