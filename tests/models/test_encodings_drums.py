"""Drums RNN encodings against note-seq's MultiDrumOneHotEncoding and lookback encoder."""

from __future__ import annotations

import numpy as np
import pytest

import note_seq
from note_seq import drums_encoder_decoder
from note_seq.protobuf import music_pb2

from live.errors import EncodingError, UnknownConfigError
from live.models.encodings.base import LookbackEncoder, OneHotEventEncoder
from live.models.encodings.drums import (
    DRUM_PITCH_CLASSES,
    ONE_DRUM_PITCH_CLASSES,
    MultiDrumOneHotEncoding,
    drums_encoder,
)

ONE_DRUM_REF_CLASSES = [[39] + list(range(0, 39)) + list(range(39, 128))]
UNKNOWN_PITCHES = (0, 13, 24, 25, 88, 100, 127)  # in no drum_kit class


# --- building real drum tracks -------------------------------------------------------------


def drum_track(hits: list[tuple[int, int]], steps_per_quarter: int = 4, gap_bars: int = 4):
    """Events of note-seq's DrumTrack read from a quantized sequence of (step, MIDI pitch) hits.

    The hits are written as drum notes in seconds (120 qpm, 4/4), quantized by note-seq, and
    extracted with ``DrumTrack.from_quantized_sequence``.
    """
    seconds_per_step = 60.0 / 120.0 / steps_per_quarter
    seq = music_pb2.NoteSequence()
    seq.tempos.add(qpm=120.0)
    seq.time_signatures.add(numerator=4, denominator=4)
    seq.ticks_per_quarter = 220
    for step, pitch in hits:
        seq.notes.add(
            pitch=pitch,
            velocity=100,
            start_time=step * seconds_per_step,
            end_time=(step + 0.5) * seconds_per_step,
            is_drum=True,
            instrument=9,
        )
    seq.total_time = max(n.end_time for n in seq.notes)
    qs = note_seq.quantize_note_sequence(seq, steps_per_quarter)
    track = note_seq.DrumTrack()
    track.from_quantized_sequence(qs, gap_bars=gap_bars)
    return list(track)


def rock_pattern(bars: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """A rock beat with hi-hats, fills on every fourth bar, crashes and some GM2 percussion."""
    hits = []
    for bar in range(bars):
        b = bar * 16
        for s in range(0, 16, 2):
            hits.append((b + s, 46 if s == 14 and bar % 2 else 42))
        hits += [(b, 36), (b + 8, 36), (b + 4, 38), (b + 12, 38)]
        if rng.random() < 0.5:
            hits.append((b + 10, 35))  # the other kick
        if bar % 4 == 3:  # tom fill over the last half bar
            for s, p in zip(range(8, 16), (50, 50, 48, 48, 45, 45, 41, 43)):
                hits.append((b + s, p))
        if bar % 4 == 0:
            hits.append((b, 49))
        if bar % 8 == 5:
            hits += [(b + s, 51) for s in range(0, 16, 4)] + [(b + 2, 53)]
        hits.append((b + int(rng.integers(16)), int(rng.choice((39, 54, 56, 75, 82, 22, 26)))))
        hits.append((b + int(rng.integers(16)), int(rng.choice(UNKNOWN_PITCHES))))
    return hits


def random_events(n: int, rng: np.random.Generator, pitches=range(128)) -> list[frozenset]:
    pitches = list(pitches)
    out = []
    for _ in range(n):
        k = int(rng.choice((0, 0, 1, 2, 3, 5)))
        out.append(frozenset(int(p) for p in rng.choice(pitches, size=k)))
    return out


@pytest.fixture(scope="module")
def tracks() -> list[list[frozenset]]:
    rng = np.random.default_rng(7)
    out = [drum_track(rock_pattern(12, rng)), drum_track(rock_pattern(5, rng), 2)]
    # a sparse track with a long gap inside (shorter than gap_bars) and triplet-ish hits
    out.append(drum_track([(0, 36), (3, 38), (6, 42), (40, 36), (41, 37), (70, 57), (71, 59)]))
    assert all(len(t) >= 32 for t in out)
    assert any(len(e) > 2 for t in out for e in t)  # real chords of hits
    assert any(any(p in UNKNOWN_PITCHES for p in e) for t in out for e in t)
    return out


# --- the one-hot encoding ------------------------------------------------------------------


def test_default_classes_are_note_seq_classes():
    assert [list(c) for c in DRUM_PITCH_CLASSES] == drums_encoder_decoder.DEFAULT_DRUM_TYPE_PITCHES
    assert [list(c) for c in ONE_DRUM_PITCH_CLASSES] == ONE_DRUM_REF_CLASSES


@pytest.mark.parametrize("classes", [None, ONE_DRUM_REF_CLASSES, [[60, 61], [61, 62], [5]]])
def test_every_index_decodes_and_encodes_like_note_seq(classes):
    ours = MultiDrumOneHotEncoding(classes)
    ref = note_seq.MultiDrumOneHotEncoding(classes)
    assert ours.num_classes == ref.num_classes
    assert ours.default_event == ref.default_event == frozenset()
    for index in range(ref.num_classes):
        event = ours.decode_event(index)
        assert event == ref.decode_event(index)
        assert ours.encode_event(event) == index
    for pitch in range(128):  # single pitches, known and unknown
        assert ours.encode_event(frozenset([pitch])) == ref.encode_event(frozenset([pitch]))


def test_bit_order_class_i_is_bit_i():
    enc = MultiDrumOneHotEncoding()
    assert enc.num_classes == 512
    assert enc.encode_event(frozenset({36})) == 1  # kick
    assert enc.encode_event(frozenset({38})) == 2  # snare
    assert enc.encode_event(frozenset({42})) == 4  # closed hi-hat
    assert enc.encode_event(frozenset({51})) == 256  # ride
    assert enc.encode_event(frozenset({35, 36, 51, 59})) == 257  # duplicates collapse
    assert enc.decode_event(1 + 2 + 256) == frozenset({36, 38, 51})
    assert enc.decode_event(0) == frozenset()


def test_random_events_with_unknown_pitches_match_note_seq():
    rng = np.random.default_rng(1)
    for classes in (None, ONE_DRUM_REF_CLASSES, [[60, 61], [61, 62], [5], [70, 71, 72]]):
        ours = MultiDrumOneHotEncoding(classes)
        ref = note_seq.MultiDrumOneHotEncoding(classes)
        for event in random_events(500, rng):
            assert ours.encode_event(event) == ref.encode_event(event), event


def test_a_pitch_in_two_classes_belongs_to_the_last():
    enc = MultiDrumOneHotEncoding([[60, 61], [61, 62]])
    assert enc.encode_event(frozenset({61})) == 2
    assert enc.decode_event(3) == frozenset({60, 61})


def test_unknown_pitches_raise_when_not_ignored():
    strict = MultiDrumOneHotEncoding(ignore_unknown_drums=False)
    ref = note_seq.MultiDrumOneHotEncoding(ignore_unknown_drums=False)
    assert strict.encode_event(frozenset({36, 42})) == ref.encode_event(frozenset({36, 42})) == 5
    for pitch in UNKNOWN_PITCHES:
        with pytest.raises(drums_encoder_decoder.DrumsEncodingError):
            ref.encode_event(frozenset({36, pitch}))
        with pytest.raises(EncodingError):
            strict.encode_event(frozenset({36, pitch}))
    # the lenient default drops them
    assert MultiDrumOneHotEncoding().encode_event(frozenset({36, *UNKNOWN_PITCHES})) == 1


def test_bad_indices_and_classes_raise():
    enc = MultiDrumOneHotEncoding()
    for index in (-1, 512, 10_000):
        with pytest.raises(EncodingError):
            enc.decode_event(index)
    with pytest.raises(EncodingError):
        MultiDrumOneHotEncoding([[36], []])


# --- the configurations, step by step against note-seq -------------------------------------


def check_encoder(encoder, ref, events, all_labels_at=(0, 1, 5)):
    """Input, label and decoded event of every position against note-seq's encoder-decoder."""
    buf = np.full(encoder.input_size, np.nan, np.float32)
    assert encoder.input_size == ref.input_size
    assert encoder.num_classes == ref.num_classes
    for p, event in enumerate(events):
        label = encoder.event_to_label(event)
        assert label == ref.events_to_label(events, p), p
        assert encoder.label_to_event(label) == ref.class_index_to_event(label, events[:p])
        if p in all_labels_at:
            for c in range(ref.num_classes):
                assert encoder.label_to_event(c) == ref.class_index_to_event(c, events[:p])
        encoder.append(event)
        encoder.encode_input(buf)
        expected = np.asarray(ref.events_to_input(events, p), np.float32)
        np.testing.assert_array_equal(buf, expected, err_msg=f"position {p}")


def test_drum_kit_sizes():
    enc = drums_encoder("drum_kit")
    assert isinstance(enc, LookbackEncoder)
    assert enc.lookback_distances == () and enc.binary_counter_bits == 6
    assert (enc.input_size, enc.num_classes) == (518, 512)
    assert enc.default_event == frozenset()


def test_one_drum_sizes():
    enc = drums_encoder("one_drum")
    assert isinstance(enc, OneHotEventEncoder)
    assert (enc.input_size, enc.num_classes) == (2, 2)
    assert enc.label_to_event(1) == frozenset({39})  # decoded as hand clap
    assert enc.label_to_event(0) == frozenset()
    assert enc.event_to_label(frozenset({0})) == enc.event_to_label(frozenset({127})) == 1


def test_unknown_config():
    with pytest.raises(UnknownConfigError):
        drums_encoder("drum_kit_rnn")


def test_drum_kit_on_drum_tracks(tracks):
    for events in tracks:
        ref = note_seq.LookbackEventSequenceEncoderDecoder(
            note_seq.MultiDrumOneHotEncoding(), [], 6
        )
        check_encoder(drums_encoder("drum_kit"), ref, events, all_labels_at=(0, 3))


def test_one_drum_on_drum_tracks(tracks):
    for events in tracks:
        ref = note_seq.OneHotEventSequenceEncoderDecoder(
            note_seq.MultiDrumOneHotEncoding(ONE_DRUM_REF_CLASSES)
        )
        check_encoder(drums_encoder("one_drum"), ref, events)


def test_drum_kit_on_random_events_past_the_counter_wrap():
    rng = np.random.default_rng(3)
    events = random_events(150, rng)  # > 64 steps: the 6-bit counter wraps twice
    ref = note_seq.LookbackEventSequenceEncoderDecoder(note_seq.MultiDrumOneHotEncoding(), [], 6)
    check_encoder(drums_encoder("drum_kit"), ref, events, all_labels_at=(64,))


def test_drum_kit_with_lookbacks_on_drum_tracks(tracks):
    """The generic lookback machinery with drum events (a 1- and 2-bar lookback variant)."""
    events = tracks[0]
    ref = note_seq.LookbackEventSequenceEncoderDecoder(
        note_seq.MultiDrumOneHotEncoding(), [16, 32], 6
    )
    enc = LookbackEncoder(MultiDrumOneHotEncoding(), (16, 32), 6)
    check_encoder(enc, ref, events, all_labels_at=(0, 40))


def test_copy_and_reset_keep_streams_apart(tracks):
    events = tracks[0][:40]
    enc = drums_encoder("drum_kit")
    for e in events[:20]:
        enc.append(e)
    fork = enc.copy()
    for e in events[20:]:
        fork.append(e)
    assert len(enc) == 20 and len(fork) == 40
    ref = note_seq.LookbackEventSequenceEncoderDecoder(note_seq.MultiDrumOneHotEncoding(), [], 6)
    np.testing.assert_array_equal(enc.input_vector(), np.float32(ref.events_to_input(events, 19)))
    np.testing.assert_array_equal(fork.input_vector(), np.float32(ref.events_to_input(events, 39)))
    enc.reset()
    with pytest.raises(EncodingError):
        enc.input_vector()
