"""Melody RNN encodings against note-seq's encoders, on Bach chorale sopranos and random melodies."""

from __future__ import annotations

import functools

import note_seq
import numpy as np
import pytest
from note_seq import encoder_decoder as ns_ed
from note_seq import melody_encoder_decoder as ns_med

from live.errors import EncodingError
from live.models.encodings.base import (
    MELODY_NO_EVENT,
    MELODY_NOTE_OFF,
    LookbackEncoder,
    OneHotEventEncoder,
)
from live.models.encodings.melody import (
    KeyMelodyEncoder,
    MelodyOneHotEncoding,
    major_key,
    major_key_histogram,
    squash_melody,
    transpose_melody,
)
from tests.corpus import bach_chorales, chorale_voice, quantized

OFF, NONE = MELODY_NOTE_OFF, MELODY_NO_EVENT


# ---------------------------------------------------------------------------------------------
# Shared checker (also used by the Improv RNN tests)


def check_against_reference(encoder, reference, events, controls=None, label_every: int = 5) -> int:
    """Walk ``events`` through ``encoder`` and compare with the note-seq ``reference`` at every step.

    For each position p: the label of event p (asked before appending it), the event of every
    class index at every ``label_every``-th position, and the input after appending event p
    (for conditional encodings with ``controls[p + 1]``; the last position is skipped there).
    Returns the number of positions checked.
    """
    events = list(events)
    assert encoder.input_size == reference.input_size
    assert encoder.num_classes == reference.num_classes
    buf = np.full(encoder.input_size, 7.0, np.float32)  # garbage: encode_input must overwrite
    n = len(events) - 1 if controls is not None else len(events)
    checked = 0
    for p in range(n):
        want_label = reference.events_to_label(events, p)
        assert encoder.event_to_label(events[p]) == want_label, f"label at step {p}"
        if p % label_every == 0:
            history = events[:p]
            for c in range(reference.num_classes):
                assert encoder.label_to_event(c) == reference.class_index_to_event(c, history), (
                    f"class {c} at step {p}"
                )
        encoder.append(events[p])
        if controls is None:
            want = reference.events_to_input(events, p)
            got = encoder.encode_input(buf)
        else:
            want = reference.events_to_input(controls, events, p)
            got = encoder.encode_input(buf, controls[p + 1])
        assert got is buf
        np.testing.assert_array_equal(got, np.asarray(want, np.float32), err_msg=f"input at step {p}")
        checked += 1
    assert len(encoder) == n
    return checked


# ---------------------------------------------------------------------------------------------
# Data


@functools.lru_cache(maxsize=None)
def chorale_melodies(count: int = 6, min_note: int = 48, max_note: int = 84) -> tuple[tuple[int, ...], ...]:
    """Soprano lines of the first ``count`` chorales as melody events, squashed by note-seq."""
    out = []
    for seq in bach_chorales(8)[:count]:
        q = quantized(seq, 4)
        soprano = chorale_voice(q, 0)
        melody = note_seq.Melody()
        melody.from_quantized_sequence(
            soprano, instrument=soprano.notes[0].instrument, ignore_polyphonic_notes=True, gap_bars=100
        )
        melody.squash(min_note, max_note, None)
        out.append(tuple(int(e) for e in melody))
    assert all(len(m) >= 150 for m in out)
    return tuple(out)


def random_melody(rng: np.random.Generator, length: int, pitches, start_with_note: bool = False) -> list[int]:
    """Random events with no-events, note-offs, repeated pitches and copied bars (so lookbacks fire)."""
    pitches = list(pitches)
    events: list[int] = []
    while len(events) < length:
        r = rng.random()
        if len(events) >= 32 and r < 0.15:
            d = int(rng.choice([16, 32]))
            events.extend(events[len(events) - d : len(events) - d + int(rng.integers(1, 17))])
        elif r < 0.55:
            events.append(NONE)
        elif r < 0.7:
            events.append(OFF)
        else:
            events.append(int(rng.choice(pitches)))
    events = events[:length]
    if start_with_note:
        events[0] = pitches[0]
    return events


# ---------------------------------------------------------------------------------------------
# MelodyOneHotEncoding


@pytest.mark.parametrize("lo,hi", [(48, 84), (0, 128), (60, 61)])
def test_one_hot_matches_note_seq(lo: int, hi: int) -> None:
    ours, ref = MelodyOneHotEncoding(lo, hi), ns_med.MelodyOneHotEncoding(lo, hi)
    assert ours.num_classes == ref.num_classes
    assert ours.default_event == ref.default_event == NONE
    for event in range(-2, 128):
        if event >= 0 and not lo <= event < hi:
            with pytest.raises(ValueError):
                ref.encode_event(event)
            with pytest.raises(EncodingError):
                ours.encode_event(event)
        else:
            assert ours.encode_event(event) == ref.encode_event(event)
    for index in range(ref.num_classes):
        assert ours.decode_event(index) == ref.decode_event(index)
    for bad in (-3, 128, 1.5, "60", None):
        with pytest.raises(EncodingError):
            ours.encode_event(bad)
    with pytest.raises(EncodingError):
        ours.decode_event(ref.num_classes)


def test_one_hot_rejects_bad_range() -> None:
    for lo, hi in [(-1, 84), (0, 129), (60, 60), (70, 60)]:
        with pytest.raises(EncodingError):
            MelodyOneHotEncoding(lo, hi)


def test_config_sizes() -> None:
    sizes = {
        "basic_rnn": OneHotEventEncoder(MelodyOneHotEncoding(48, 84)),
        "mono_rnn": OneHotEventEncoder(MelodyOneHotEncoding(0, 128)),
        "lookback_rnn": LookbackEncoder(MelodyOneHotEncoding(48, 84), (16, 32), 5),
        "attention_rnn": KeyMelodyEncoder(48, 84),
    }
    got = {k: (e.input_size, e.num_classes) for k, e in sizes.items()}
    assert got == {
        "basic_rnn": (38, 38),
        "mono_rnn": (130, 130),
        "lookback_rnn": (121, 40),
        "attention_rnn": (74, 40),
    }


# ---------------------------------------------------------------------------------------------
# The four Melody RNN configurations against note-seq


def _basic():
    return (
        OneHotEventEncoder(MelodyOneHotEncoding(48, 84)),
        ns_ed.OneHotEventSequenceEncoderDecoder(ns_med.MelodyOneHotEncoding(48, 84)),
    )


def _mono():
    return (
        OneHotEventEncoder(MelodyOneHotEncoding(0, 128)),
        ns_ed.OneHotEventSequenceEncoderDecoder(ns_med.MelodyOneHotEncoding(0, 128)),
    )


def _lookback():
    return (
        LookbackEncoder(MelodyOneHotEncoding(48, 84), (16, 32), 5),
        ns_ed.LookbackEventSequenceEncoderDecoder(ns_med.MelodyOneHotEncoding(48, 84)),
    )


def _attention():
    return KeyMelodyEncoder(48, 84), ns_med.KeyMelodyEncoderDecoder(48, 84)


CONFIGS = {"basic_rnn": _basic, "mono_rnn": _mono, "lookback_rnn": _lookback, "attention_rnn": _attention}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_config_on_chorale_sopranos(config: str) -> None:
    melodies = chorale_melodies()
    assert len(melodies) >= 5
    for melody in melodies:
        events = list(melody)
        encoder, reference = CONFIGS[config]()
        check_against_reference(encoder, reference, events)


def test_chorale_sopranos_fire_lookbacks() -> None:
    """The real data exercises the lookback labels and repeat flags, not only plain pitches."""
    ref = ns_ed.LookbackEventSequenceEncoderDecoder(ns_med.MelodyOneHotEncoding(48, 84))
    labels = [ref.events_to_label(list(m), p) for m in chorale_melodies() for p in range(len(m))]
    assert labels.count(38) > 10 and labels.count(39) > 10


@pytest.mark.parametrize("config", list(CONFIGS))
def test_config_on_random_melodies(config: str) -> None:
    rng = np.random.default_rng(1234 + len(config))
    for trial in range(6):
        pitches = rng.choice(np.arange(48, 84), size=int(rng.integers(2, 8)), replace=False)
        events = random_melody(rng, 150, pitches.tolist(), start_with_note=trial % 2 == 0)
        if trial == 1:
            events[:3] = [OFF, OFF, NONE]  # note-offs before any note
        encoder, reference = CONFIGS[config]()
        check_against_reference(encoder, reference, events, label_every=3)


def test_mono_rnn_full_pitch_range() -> None:
    rng = np.random.default_rng(7)
    events = random_melody(rng, 300, range(0, 128))
    encoder, reference = _mono()
    check_against_reference(encoder, reference, events)


def test_key_melody_other_shapes_and_pitch_zero() -> None:
    """Other lookbacks/counter sizes, and the full range where pitch 0 reads as silence (Magenta's quirk)."""
    rng = np.random.default_rng(99)
    events = random_melody(rng, 140, [0, 1, 5, 12, 60, 127])
    check_against_reference(KeyMelodyEncoder(0, 128), ns_med.KeyMelodyEncoderDecoder(0, 128), events)
    events = random_melody(rng, 140, [60, 62, 64, 65, 67])
    check_against_reference(
        KeyMelodyEncoder(55, 80, (8, 16, 24), 5),
        ns_med.KeyMelodyEncoderDecoder(55, 80, [8, 16, 24], 5),
        events,
    )


def test_key_melody_pitch_zero_is_silence() -> None:
    encoder = KeyMelodyEncoder(0, 128)
    encoder.append(0)
    vec = encoder.input_vector()
    assert vec[128] == 0.0 and vec[129] == 1.0  # "silence", though pitch 0 was just struck
    assert vec[130] == 1.0  # but it is an attack


# ---------------------------------------------------------------------------------------------
# KeyMelodyEncoder: incremental features, errors, copy/reset


def test_key_melody_features_are_incremental() -> None:
    """5000 appends: the running key histogram and recent notes equal a recount of the history."""
    rng = np.random.default_rng(5)
    events = random_melody(rng, 5000, range(48, 84))
    encoder = KeyMelodyEncoder()
    for e in events:
        encoder.append(e)
    pitches = [e for e in events if e >= 0]
    assert encoder.key_histogram.tolist() == major_key_histogram(events)
    assert encoder.key_histogram.tolist() == note_seq.Melody(events).get_major_key_histogram().tolist()
    assert sum(encoder.key_histogram) == 7 * len(pitches)
    recent: list[int] = []
    for p in pitches:
        recent = [q for q in recent if q != p][-2:] + [p]
    assert encoder.recent_notes == recent
    np.testing.assert_array_equal(
        encoder.input_vector(),
        np.asarray(ns_med.KeyMelodyEncoderDecoder(48, 84).events_to_input(events, 4999), np.float32),
    )
    # The per-append state is a fixed size however long the history is (no rescans to feed it).
    assert encoder.key_histogram.shape == (12,) and len(encoder.recent_notes) <= 3


def test_key_melody_rejects_out_of_range_pitch() -> None:
    encoder = KeyMelodyEncoder(48, 84)
    with pytest.raises(EncodingError):
        encoder.encode_input(np.zeros(74, np.float32))
    for bad in (47, 84, 128, -3, 60.0):
        with pytest.raises(EncodingError):
            encoder.append(bad)
        with pytest.raises(EncodingError):
            encoder.event_to_label(bad)
    assert len(encoder) == 0 and encoder.key_histogram.sum() == 0
    with pytest.raises(EncodingError):
        encoder.label_to_event(40)


def test_key_melody_copy_and_reset() -> None:
    rng = np.random.default_rng(3)
    events = random_melody(rng, 80, [60, 62, 64, 67], start_with_note=True)
    a = KeyMelodyEncoder()
    for e in events[:40]:
        a.append(e)
    b = a.copy()
    for e in events[40:]:
        b.append(e)
    assert len(a) == 40 and len(b) == 80
    fresh = KeyMelodyEncoder()
    for e in events:
        fresh.append(e)
    np.testing.assert_array_equal(b.input_vector(), fresh.input_vector())
    b.reset()
    assert len(b) == 0 and b.key_histogram.sum() == 0 and b.current_note is None
    for e in events[:40]:
        b.append(e)
    np.testing.assert_array_equal(a.input_vector(), b.input_vector())


# ---------------------------------------------------------------------------------------------
# Squashing and transposition


def _ref_squash(events, lo, hi, key):
    melody = note_seq.Melody(list(events))
    amount = melody.squash(lo, hi, key)
    return [int(e) for e in melody], int(amount)


def test_squash_matches_note_seq_on_chorales() -> None:
    for seq in bach_chorales(8)[:6]:
        q = quantized(seq, 4)
        for voice in (0, 3):  # soprano and bass
            part = chorale_voice(q, voice)
            melody = note_seq.Melody()
            melody.from_quantized_sequence(
                part, instrument=part.notes[0].instrument, ignore_polyphonic_notes=True, gap_bars=100
            )
            events = [int(e) for e in melody]
            for lo, hi, key in [(48, 84, 0), (48, 84, None), (0, 128, None), (60, 72, 5), (36, 60, 11)]:
                assert squash_melody(events, lo, hi, key) == _ref_squash(events, lo, hi, key)


def test_squash_matches_note_seq_on_random_melodies() -> None:
    rng = np.random.default_rng(11)
    for trial in range(300):
        pitches = rng.integers(0, 128, size=int(rng.integers(1, 6))).tolist()
        events = random_melody(rng, int(rng.integers(1, 40)), pitches, start_with_note=True)
        lo = int(rng.integers(0, 100))
        hi = int(rng.integers(lo + 12, 129))
        key = None if trial % 5 == 0 else int(rng.integers(0, 12))
        assert squash_melody(events, lo, hi, key) == _ref_squash(events, lo, hi, key), (events, lo, hi, key)
    # No notes at all: nothing moves.
    assert squash_melody([NONE, NONE], 48, 84, 0) == ([NONE, NONE], 0)


def test_squash_round_half_to_even() -> None:
    """A centre difference of exactly half an octave rounds to the even octave count (Python's round)."""
    found = 0
    rng = np.random.default_rng(2)
    for _ in range(2000):
        a, b = sorted(rng.integers(30, 100, size=2).tolist())
        events = [a, NONE, b]
        key = int(rng.integers(0, 12))
        diff = (48 + 84 - 1) / 2 - ((a + b) / 2 + key - major_key([a, b]))
        if abs(diff / 12) % 1 == 0.5:
            found += 1
            assert squash_melody(events, 48, 84, key) == _ref_squash(events, 48, 84, key)
    assert found > 0


def test_transpose_matches_note_seq() -> None:
    rng = np.random.default_rng(13)
    for _ in range(200):
        events = random_melody(rng, 30, rng.integers(0, 128, size=4).tolist(), start_with_note=True)
        amount = int(rng.integers(-30, 31))
        lo = int(rng.integers(0, 100))
        hi = int(rng.integers(lo + 12, 129))
        melody = note_seq.Melody(events)
        melody.transpose(amount, lo, hi)
        assert transpose_melody(events, amount, lo, hi) == [int(e) for e in melody]
    melody = note_seq.Melody([60, NONE, OFF, 72])
    melody.transpose(-5)
    assert transpose_melody([60, NONE, OFF, 72], -5) == list(melody)
    with pytest.raises(EncodingError):
        transpose_melody([200], 0)


def test_squash_then_unsquash_restores_pitch_classes() -> None:
    events = list(chorale_melodies(1)[0])
    squashed, amount = squash_melody(events, 48, 84, 0)
    back = transpose_melody(squashed, -amount)
    assert [e % 12 if e >= 0 else e for e in back] == [e % 12 if e >= 0 else e for e in events]
