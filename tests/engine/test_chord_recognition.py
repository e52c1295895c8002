"""The chord recognizer of --mode improv: held pitches -> a chord symbol the encoders read."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from live.engine.chord_recognition import (
    CHORD_KINDS,
    PITCH_CLASS_NAMES,
    chord_symbol,
    recognize_chord,
)
from live.errors import EncodingError
from live.models.encodings.chords import TriadChordEncoder, parse_chord

C, E, G, A, B = 60, 64, 67, 69, 71


@pytest.mark.parametrize(
    "pitches, symbol",
    [
        ([C, E, G], "C"),
        ([57, 60, 64], "Am"),
        ([C, 63, 67], "Cm"),
        ([C, 63, 66], "Cdim"),
        ([C, E, 68], "Caug"),
        ([C, 65, G], "Csus4"),
        ([C, 62, G], "Csus2"),
        ([55, 59, 62, 65], "G7"),
        ([C, E, G, B], "Cmaj7"),
        ([62, 65, 69, 72], "Dm7"),
        ([59, 62, 65, 69], "Bm7b5"),
        ([59, 62, 65, 68], "Bdim7"),
        ([55, 60, 62, 65], "G7sus"),
        ([48, 52, 55, 57], "C6"),  # C in the bass: C6, not Am7/C
        ([45, 52, 55, 60], "Am7"),  # the same notes over A
        ([C, E, 70], "C7"),  # the fifth left out
        ([C, E, G, 74], "C"),  # one extra tone (an added ninth) is ignored
        ([C, E, G, 70, 74], "C9"),
        ([52, 60, 67], "C/E"),  # first inversion: the bass is written
        ([43, 48, 52], "C/G"),
        ([C, 61, 62, 63, 64], "N.C."),  # a cluster is no chord
    ],
)
def test_recognize(pitches, symbol):
    assert recognize_chord(pitches) == symbol
    parse_chord(symbol)  # every answer is a symbol the encodings read


def test_too_few_pitch_classes_is_no_chord():
    assert recognize_chord([]) == "N.C."
    assert recognize_chord([60]) == "N.C."
    assert recognize_chord([60, 67]) == "N.C."
    assert recognize_chord([60, 72, 84]) == "N.C."  # octaves are one pitch class
    assert recognize_chord([60, 64], min_pitch_classes=3) == "N.C."


def test_every_kind_in_every_key_round_trips_through_parse_chord():
    """Root position, every kind of the table, every root: the symbol names exactly the held
    pitch classes, with the root parse_chord reads."""
    for root in range(12):
        for kind, tones in CHORD_KINDS:
            pcs = {(root + t) % 12 for t in tones}
            got = chord_symbol(pcs, bass=root)
            chord = parse_chord(got)
            assert chord.root == root, (PITCH_CLASS_NAMES[root], kind, got)
            assert set(chord.pitches) == pcs, (PITCH_CLASS_NAMES[root], kind, got)


def test_roots_agree_with_music21():
    """Triads and seventh chords in every inversion and key: the same root as music21 names.

    Except the first inversion of m7 chords, which is a sixth chord in root position (Cm7/Eb
    has the notes of Eb6): there the bass wins, and the symbol names the same notes. (Half
    diminished chords are left out: music21 spells MIDI numbers its own way, and names the root
    of some by that spelling, e.g. D#-F#-A-C# as F#.)"""
    from music21 import chord as m21chord

    shapes = {"": (0, 4, 7), "m": (0, 3, 7), "7": (0, 4, 7, 10), "m7": (0, 3, 7, 10), "maj7": (0, 4, 7, 11)}
    checked = 0
    for root, (kind, tones) in itertools.product(range(12), shapes.items()):
        for inversion in range(len(tones)):
            pitches = [48 + root + t + (12 if i < inversion else 0) for i, t in enumerate(tones)]
            got = parse_chord(recognize_chord(pitches))
            if kind == "m7" and inversion == 1:
                assert got.root == min(pitches) % 12 and set(got.pitches) == {p % 12 for p in pitches}
                checked += 1
                continue
            expected = m21chord.Chord(pitches).root().pitchClass
            assert got.root == expected, (pitches, recognize_chord(pitches))
            checked += 1
    assert checked == 12 * sum(len(t) for t in shapes.values())


def test_accept_steers_to_chords_an_encoder_can_take():
    encoder = TriadChordEncoder()
    buf = np.zeros(encoder.input_size, np.float32)

    def triad_ok(symbol: str) -> bool:
        try:
            encoder.encode(symbol, buf)
            return True
        except EncodingError:
            return False

    assert recognize_chord([C, 65, G]) == "Csus4"
    assert recognize_chord([C, 65, G], accept=triad_ok) == "C"  # sus -> major
    assert recognize_chord([55, 60, 62, 65], accept=triad_ok) == "G7"
    assert recognize_chord([C, E, G], accept=lambda s: False) == "N.C."
