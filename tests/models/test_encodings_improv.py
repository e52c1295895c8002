"""Improv RNN encodings (chords -> melody) against note-seq, on chorale lead sheets and random ones.

A lead sheet here is a chorale's soprano line with the chords note-seq infers from the whole
four-voice chorale, one chord symbol per step (``ChordProgression.from_quantized_sequence``).
"""

from __future__ import annotations

import functools

import note_seq
import numpy as np
import pytest
from note_seq import chord_inference
from note_seq import chords_encoder_decoder as ns_ced
from note_seq import encoder_decoder as ns_ed
from note_seq import melody_encoder_decoder as ns_med
from note_seq.protobuf import music_pb2

from live.errors import EncodingError
from live.models.encodings.base import NO_CHORD, ConditionalEncoder, OneHotEventEncoder
from live.models.encodings.chords import PitchChordsEncoder, TriadChordEncoder, transpose_chord_symbol
from live.models.encodings.melody import KeyMelodyEncoder, MelodyOneHotEncoding, squash_melody
from tests.corpus import bach_chorales, chorale_voice, quantized
from tests.models.test_encodings_melody import check_against_reference, random_melody


def _ours(config: str):
    melody = lambda: OneHotEventEncoder(MelodyOneHotEncoding(48, 84))  # noqa: E731
    return {
        "basic_improv": lambda: ConditionalEncoder(TriadChordEncoder(), melody()),
        "attention_improv": lambda: ConditionalEncoder(TriadChordEncoder(), KeyMelodyEncoder(48, 84)),
        "chord_pitches_improv": lambda: ConditionalEncoder(PitchChordsEncoder(), melody()),
    }[config]()


def _reference(config: str):
    melody = lambda: ns_ed.OneHotEventSequenceEncoderDecoder(ns_med.MelodyOneHotEncoding(48, 84))  # noqa: E731
    triads = lambda: ns_ed.OneHotEventSequenceEncoderDecoder(ns_ced.TriadChordOneHotEncoding())  # noqa: E731
    return {
        "basic_improv": lambda: ns_ed.ConditionalEventSequenceEncoderDecoder(triads(), melody()),
        "attention_improv": lambda: ns_ed.ConditionalEventSequenceEncoderDecoder(
            triads(), ns_med.KeyMelodyEncoderDecoder(48, 84)
        ),
        "chord_pitches_improv": lambda: ns_ed.ConditionalEventSequenceEncoderDecoder(
            ns_ced.PitchChordsEncoderDecoder(), melody()
        ),
    }[config]()


CONFIGS = ["basic_improv", "attention_improv", "chord_pitches_improv"]


@functools.lru_cache(maxsize=None)
def chorale_lead_sheets(count: int = 5) -> tuple[tuple[tuple[int, ...], tuple[str, ...]], ...]:
    """(melody events, chord symbol per step) for the first ``count`` chorales chords can be inferred for.

    The melody is squashed into [48, 84) as Improv RNN does (no key change) and the chords are
    transposed by the same amount, through note-seq.
    """
    out = []
    for seq in bach_chorales(8):
        q = quantized(seq, 4)
        with_chords = music_pb2.NoteSequence()
        with_chords.CopyFrom(q)
        try:
            note_seq.infer_chords_for_sequence(with_chords)
        except chord_inference.ChordInferenceError:  # e.g. a 1/4 meter from a pickup bar
            continue
        soprano = chorale_voice(q, 0)
        melody = note_seq.Melody()
        melody.from_quantized_sequence(
            soprano, instrument=soprano.notes[0].instrument, ignore_polyphonic_notes=True, gap_bars=100
        )
        chords = note_seq.ChordProgression()
        chords.from_quantized_sequence(with_chords, melody.start_step, melody.end_step)
        amount = melody.squash(48, 84, None)
        chords.transpose(amount)
        out.append((tuple(int(e) for e in melody), tuple(chords)))
        if len(out) == count:
            break
    return tuple(out)


def random_lead_sheet(rng: np.random.Generator, length: int, symbols: list[str]) -> tuple[list[int], list[str]]:
    """A random melody in [48, 84) and a chord that changes every 2 to 8 steps."""
    events = random_melody(rng, length, rng.choice(np.arange(48, 84), size=6, replace=False).tolist())
    chords: list[str] = []
    while len(chords) < length:
        chords.extend([str(rng.choice(symbols))] * int(rng.integers(2, 9)))
    return events, chords[:length]


TRIAD_SYMBOLS = [
    NO_CHORD, "C", "Am", "F#m7b5", "Bb/D", "Ebaug", "G#dim", "D7", "Gm7", "Cmaj7", "Bbm6", "E7b9",
    "A13", "Dbmaj9", "F+7", "Bo7", "C#m(maj7)", "Ab/C", "Gb7(#11)", "Em/G",
]
OTHER_SYMBOLS = ["Csus4", "G7sus", "D5", "Aped", "Fsus2/C", "B7(no3)", "E(no5)"]


def test_input_sizes() -> None:
    sizes = {c: (_ours(c).input_size, _ours(c).num_classes) for c in CONFIGS}
    assert sizes == {
        "basic_improv": (49 + 38, 38),
        "attention_improv": (49 + 74, 40),
        "chord_pitches_improv": (37 + 38, 38),
    }


def test_lead_sheets_are_real() -> None:
    sheets = chorale_lead_sheets()
    assert len(sheets) == 5
    for events, chords in sheets:
        assert len(events) == len(chords) >= 150
        assert len(set(chords)) >= 5  # the chords change
        assert all(48 <= e < 84 for e in events if e >= 0)


@pytest.mark.parametrize("config", CONFIGS)
def test_config_on_chorale_lead_sheets(config: str) -> None:
    for events, chords in chorale_lead_sheets():
        check_against_reference(_ours(config), _reference(config), events, controls=list(chords))


@pytest.mark.parametrize("config", CONFIGS)
def test_config_on_random_lead_sheets(config: str) -> None:
    rng = np.random.default_rng(len(config))
    symbols = TRIAD_SYMBOLS + (OTHER_SYMBOLS if config == "chord_pitches_improv" else [])
    for _ in range(4):
        events, chords = random_lead_sheet(rng, 120, symbols)
        check_against_reference(_ours(config), _reference(config), events, controls=chords, label_every=4)


def test_chords_transposed_with_melody_like_improv_rnn() -> None:
    """Squash + chord transposition in numpy reproduce what Improv RNN feeds its model."""
    rng = np.random.default_rng(4)
    for _ in range(20):
        events = random_melody(rng, 64, rng.integers(20, 110, size=5).tolist(), start_with_note=True)
        chords = [str(rng.choice(TRIAD_SYMBOLS)) for _ in range(64)]
        melody = note_seq.Melody(events)
        progression = note_seq.ChordProgression(chords)
        amount = melody.squash(48, 84, None)
        progression.transpose(amount)
        ours, our_amount = squash_melody(events, 48, 84, None)
        assert (ours, our_amount) == (list(melody), amount)
        assert [transpose_chord_symbol(c, our_amount) for c in chords] == list(progression)


def test_control_is_required_and_triads_only() -> None:
    encoder = _ours("basic_improv")
    encoder.append(60)
    with pytest.raises(EncodingError, match="control"):
        encoder.encode_input(np.zeros(encoder.input_size, np.float32))
    with pytest.raises(EncodingError, match="triad"):
        encoder.encode_input(np.zeros(encoder.input_size, np.float32), "Csus4")
    out = encoder.encode_input(np.zeros(encoder.input_size, np.float32), "Am")
    assert np.flatnonzero(out).tolist() == [13 + 9, 49 + 2 + 60 - 48]
