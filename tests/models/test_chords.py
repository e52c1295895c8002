"""Chord symbols and chord control encodings against note-seq's chord_symbols_lib and encoders."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from note_seq import chord_symbols_lib as csl
from note_seq import chords_encoder_decoder as ns_ced
from note_seq import encoder_decoder as ns_ed

from live.errors import ChordSymbolError, EncodingError
from live.models.encodings.base import NO_CHORD
from live.models.encodings.chords import (
    KIND_DEGREES,
    QUALITY_DIMINISHED,
    QUALITY_MAJOR,
    QUALITY_OTHER,
    MajorMinorChordEncoder,
    PitchChordsEncoder,
    TriadChordEncoder,
    parse_chord,
    transpose_chord_symbol,
)

ROOTS = [
    "C", "C#", "Db", "D", "D#", "Eb", "E", "F", "F#", "Gb", "G", "G#", "Ab", "A", "A#", "Bb", "B",
    "Cb", "B#", "E#", "Fb", "D##", "Ebb", "G###", "Abbb",
]
# Every kind abbreviation note-seq knows, taken from its own table so that none is missed.
NS_KINDS = list(csl._CHORD_KINDS_BY_ABBREV)
CHANGES = [
    "", "b9", "#9", "#11", "b13", "(b9)", "(#11)", "b9#11", "(b9)(#11)", "add9", "add2", "(add2)",
    "add#11", "addb13", "add7", "add6", "no3", "no5", "(no5)", "b5", "#5", "(b5", "add9)", "add2no5",
    "#5#5", "b3", "add4", "no1", "add13", "add0", "b100",
]
BASSES = ["", "/E", "/Bb", "/F#", "/C", "/G##"]

BAD = [
    "", " ", "C ", " C", "c", "H7", "Hm", "X", "N.C", "NC", "n.c.", "Cmaj8", "C#b", "Cb#", "C69",
    "Csus47", "C//E", "C/", "C/H", "C/c", "C/E/G", "Cm7b", "Cadd", "Cno", "C(", "C7add",
    "Cmaj7/", "Cminor", "CM7M7", "C7(add3)", "C(no7)", "C7add5", "Cm7b5add5", "Cno9", "Cadd1",
    "C13add11", "C7sus(add4)", "C\t", "C7 b9", "Cdimm", "C°", "C♯", "Bbbb#", "7", "m", "/E",
]


def valid_symbols() -> list[str]:
    """A big list of symbols note-seq accepts: roots x kinds, kinds x changes x basses."""
    symbols = [r + k for r in ROOTS for k in NS_KINDS]
    roots = itertools.cycle(ROOTS)
    for kind in NS_KINDS:
        for change in CHANGES:
            for bass in BASSES[:: 1 if change in ("", "b9", "(add2)") else 3]:
                symbols.append(next(roots) + kind + change + bass)
    return symbols


def _ns_chord(symbol: str):
    return (
        csl.chord_symbol_root(symbol),
        csl.chord_symbol_bass(symbol),
        csl.chord_symbol_pitches(symbol),
        csl.chord_symbol_quality(symbol),
    )


def _ns_fails(symbol: str) -> bool:
    try:
        _ns_chord(symbol)
    except csl.ChordSymbolError:
        return True
    return False


def test_kind_table_matches_note_seq() -> None:
    assert set(KIND_DEGREES) == set(NS_KINDS)


def test_parse_matches_note_seq_on_many_symbols() -> None:
    checked = rejected = 0
    for symbol in valid_symbols():
        if _ns_fails(symbol):  # e.g. "Cm7b5add5": a degree change that does not fit
            with pytest.raises(ChordSymbolError):
                parse_chord(symbol)
            rejected += 1
            continue
        chord = parse_chord(symbol)
        assert (chord.root, chord.bass, list(chord.pitches), chord.quality) == _ns_chord(symbol), symbol
        assert chord.symbol == symbol and not chord.is_no_chord
        checked += 1
    assert checked > 6000 and rejected > 100


def test_named_examples() -> None:
    assert parse_chord("A13").pitches == (9, 1, 4, 7, 11, 2, 6)
    assert parse_chord("Cdim").quality == QUALITY_DIMINISHED
    assert parse_chord("F#m7b5").quality == QUALITY_DIMINISHED
    bb = parse_chord("Bb/D")
    assert (bb.root, bb.bass, bb.pitches, bb.quality) == (10, 2, (10, 2, 5), QUALITY_MAJOR)
    assert parse_chord("Csus4").quality == QUALITY_OTHER
    assert parse_chord("C7b9#11").pitches == (0, 4, 7, 10, 1, 6)
    # Unbalanced parentheses are accepted, as by note-seq.
    assert parse_chord("C7(b9").pitches == parse_chord("C7b9)").pitches == (0, 4, 7, 10, 1)
    nc = parse_chord(NO_CHORD)
    assert nc.is_no_chord and nc.root is None and nc.bass is None and nc.pitches == ()


@pytest.mark.parametrize("symbol", BAD)
def test_bad_symbols_rejected_like_note_seq(symbol: str) -> None:
    assert _ns_fails(symbol), f"note-seq accepts {symbol!r}"
    with pytest.raises(ChordSymbolError) as info:
        parse_chord(symbol)
    assert repr(symbol) in str(info.value)


def test_bad_symbol_messages_are_specific() -> None:
    with pytest.raises(ChordSymbolError, match="already has"):
        parse_chord("C7(add3)")
    with pytest.raises(ChordSymbolError, match="does not have"):
        parse_chord("C(no7)")
    with pytest.raises(ChordSymbolError, match="root A-G"):
        parse_chord("H7")
    for not_text in (None, 7, ["C"]):
        with pytest.raises(ChordSymbolError, match="string"):
            parse_chord(not_text)


def test_random_symbols_accepted_exactly_when_note_seq_accepts() -> None:
    """Random strings from chord-like pieces, many of them malformed."""
    rng = np.random.default_rng(21)
    pieces = ["C", "G", "Bb", "F#", "#", "b", "m", "7", "maj", "M", "dim", "o", "/", "(", ")", "add",
              "no", "9", "11", "13", "5", "sus", "4", "-", "+", "6", "2", "/E", "/Ab", "aug", "min"]
    agree = accepted = 0
    for _ in range(4000):
        head = str(rng.choice(pieces[:4])) if rng.random() < 0.9 else ""
        symbol = head + "".join(rng.choice(pieces, size=int(rng.integers(0, 5))))
        if _ns_fails(symbol):
            with pytest.raises(ChordSymbolError):
                parse_chord(symbol)
        else:
            chord = parse_chord(symbol)
            assert (chord.root, chord.bass, list(chord.pitches), chord.quality) == _ns_chord(symbol), symbol
            accepted += 1
        agree += 1
    assert accepted > 300 and agree - accepted > 1000


def test_trailing_newline_is_rejected_unlike_note_seq() -> None:
    """note-seq's regex ends in ``$``, which also matches before a final newline; we are strict."""
    assert not _ns_fails("C\n")
    with pytest.raises(ChordSymbolError):
        parse_chord("C\n")


def test_transpose_matches_note_seq() -> None:
    symbols = [r + k + b for r in ROOTS for k in ("", "m7", "7(b9)", "m7b5") for b in ("", "/E", "/Bbb")]
    for symbol in symbols:
        for amount in range(-13, 14):
            assert transpose_chord_symbol(symbol, amount) == csl.transpose_chord_symbol(symbol, amount), (
                symbol,
                amount,
            )
    assert transpose_chord_symbol(NO_CHORD, 3) == NO_CHORD
    with pytest.raises(ChordSymbolError):
        transpose_chord_symbol("H7", 1)


# ---------------------------------------------------------------------------------------------
# Control encoders


def _encoder_symbols() -> list[str]:
    symbols = [r + k + b for r in ROOTS for k in NS_KINDS for b in ("", "/E", "/Bb")]
    return [NO_CHORD] + [s for s in symbols if not _ns_fails(s)]


@pytest.mark.parametrize(
    "ours,one_hot",
    [
        (TriadChordEncoder, ns_ced.TriadChordOneHotEncoding),
        (MajorMinorChordEncoder, ns_ced.MajorMinorChordOneHotEncoding),
    ],
)
def test_chord_class_encoders_match_note_seq(ours, one_hot) -> None:
    encoder, ref_one_hot = ours(), one_hot()
    ref = ns_ed.OneHotEventSequenceEncoderDecoder(ref_one_hot)
    assert encoder.input_size == ref.input_size == encoder.num_classes
    encoded = unencodable = 0
    for symbol in _encoder_symbols():
        try:
            want = np.asarray(ref.events_to_input([symbol], 0), np.float32)
        except ns_ced.ChordEncodingError:
            with pytest.raises(EncodingError, match="triad"):
                encoder.encode_event(symbol)
            unencodable += 1
            continue
        for _ in range(2):  # the second time from the cache
            out = np.zeros(encoder.input_size, np.float32)
            encoder.encode(symbol, out)
            np.testing.assert_array_equal(out, want, err_msg=symbol)
            assert encoder.encode_event(symbol) == ref_one_hot.encode_event(symbol)
        encoded += 1
    assert encoded > 500 and unencodable > 200
    for index in range(encoder.num_classes):
        assert encoder.decode_event(index) == ref_one_hot.decode_event(index)
        assert encoder.encode_event(encoder.decode_event(index)) == index
    with pytest.raises(EncodingError):
        encoder.decode_event(encoder.num_classes)
    with pytest.raises(ChordSymbolError):
        encoder.encode_event("H7")


def test_triad_layout() -> None:
    enc = TriadChordEncoder()
    assert enc.input_size == 49
    assert [enc.encode_event(s) for s in ("N.C.", "C", "Bm", "C#aug", "Bdim", "Cm7", "Bm7b5")] == [
        0, 1, 24, 26, 48, 13, 48,
    ]
    assert MajorMinorChordEncoder().input_size == 25


def test_pitch_chords_encoder_matches_note_seq() -> None:
    encoder, ref = PitchChordsEncoder(), ns_ced.PitchChordsEncoderDecoder()
    assert encoder.input_size == ref.input_size == 37
    symbols = _encoder_symbols() + [s for s in valid_symbols()[::7] if not _ns_fails(s)]
    for symbol in symbols:
        want = np.asarray(ref.events_to_input([symbol], 0), np.float32)
        for _ in range(2):
            out = np.full(37, 5.0, np.float32)
            out[:] = 0.0
            encoder.encode(symbol, out)
            np.testing.assert_array_equal(out, want, err_msg=symbol)
    with pytest.raises(ChordSymbolError):
        encoder.encode("C7add5", np.zeros(37, np.float32))


def test_pitch_chords_layout_and_cache_safety() -> None:
    encoder = PitchChordsEncoder()
    out = np.zeros(37, np.float32)
    encoder.encode("Bb/D", out)
    assert np.flatnonzero(out).tolist() == [1 + 10, 13 + 2, 13 + 5, 13 + 10, 25 + 2]
    out[:] = 9.0  # writing to our buffer must not touch the cached vector
    again = np.zeros(37, np.float32)
    encoder.encode("Bb/D", again)
    assert np.flatnonzero(again).tolist() == [11, 15, 18, 23, 27]
    assert not encoder.vector("Bb/D").flags.writeable
    nc = np.zeros(37, np.float32)
    encoder.encode(NO_CHORD, nc)
    assert np.flatnonzero(nc).tolist() == [0]
