"""``magenta-live-train dataset``: Magenta's extraction rules on real chorales, and SequenceExamples
equal to note-seq's own encoders (the ones Magenta's create_dataset scripts use) on the same events."""

from __future__ import annotations

import note_seq
import numpy as np
import pytest
import tensorflow as tf
from note_seq import (
    chords_encoder_decoder,
    encoder_decoder,
    melody_encoder_decoder,
    performance_lib,
)
from note_seq.protobuf import music_pb2

from live.models.configs import get_config
from live.models.encodings.polyphony import POLY_END, POLY_START, POLY_STEP_END
from tests.corpus import bach_chorales
from training import cli
from training.dataset import (
    encode,
    event_sequences,
    is_eval,
    make_dataset,
    parse_sequence_example,
)

NUM_CHORALES = 4


def write_sequences(path, sequences) -> None:
    with tf.io.TFRecordWriter(str(path)) as w:
        for i, s in enumerate(sequences):
            s = music_pb2.NoteSequence.FromString(s.SerializeToString())
            s.id = s.id or f"seq{i}"
            w.write(s.SerializeToString())


def read_examples(path) -> list[tuple[np.ndarray, np.ndarray]]:
    return [parse_sequence_example(r) for r in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()]


def note_seq_example(reference, *events) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and labels of note-seq's encoder-decoder for the same events (note-seq 0.0.5's
    ``encode`` gives the two lists that Magenta's ``make_sequence_example`` writes)."""
    encoded = reference.encode(*events)
    if hasattr(encoded, "SerializeToString"):
        return parse_sequence_example(encoded.SerializeToString())
    inputs, labels = encoded
    return np.asarray(inputs, np.float32), np.asarray(labels, np.int64)


@pytest.fixture(scope="module")
def chorale_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("seqs") / "chorales.tfrecord"
    write_sequences(path, bach_chorales(NUM_CHORALES))
    return path


def drum_sequence(bars: int = 12) -> music_pb2.NoteSequence:
    """A rock beat: kick on 1 and 3, snare on 2 and 4, closed hi-hat on eighths; a crash per 4 bars."""
    seq = music_pb2.NoteSequence(ticks_per_quarter=220, id="drums")
    seq.tempos.add(qpm=120)
    seq.time_signatures.add(numerator=4, denominator=4)
    eighth = 0.25
    for bar in range(bars):
        t0 = bar * 2.0
        for k in range(8):
            pitches = [42]
            if k in (0, 4):
                pitches.append(36)
            if k in (2, 6):
                pitches.append(38)
            if k == 0 and bar % 4 == 0:
                pitches.append(49)
            for p in pitches:
                seq.notes.add(pitch=p, velocity=100, start_time=t0 + k * eighth, end_time=t0 + k * eighth + 0.1,
                              is_drum=True, instrument=9)
    seq.total_time = bars * 2.0
    return seq


def test_split_is_stable_and_near_the_ratio():
    ids = [f"piece{i}" for i in range(2000)]
    first = [is_eval(i, 0.1) for i in ids]
    assert first == [is_eval(i, 0.1) for i in ids]
    assert 150 < sum(first) < 250
    assert not any(is_eval(i, 0.0) for i in ids)


def test_attention_melodies_follow_magentas_rules_and_note_seq_encoding(chorale_file, tmp_path):
    summary = make_dataset("attention_rnn", chorale_file, tmp_path, eval_ratio=0.0, workers=1, progress=False)
    examples = read_examples(tmp_path / "training_melodies.tfrecord")
    assert summary.training_examples == len(examples) > 0
    assert summary.eval_examples == 0
    # The events again, from the same pipeline, for the reference encoder.
    melodies = []
    for seq in bach_chorales(NUM_CHORALES):
        melodies += [events for events, _ in event_sequences(seq, "attention_rnn", True, __import__("collections").Counter())]
    assert len(melodies) == len(examples)
    reference = melody_encoder_decoder.KeyMelodyEncoderDecoder(48, 84)
    for events, (inputs, labels) in zip(melodies, examples):
        assert 7 * 16 <= len(events) <= 512  # at least 7 bars, truncated to 512 steps
        pitches = [e for e in events if e >= 0]
        assert all(48 <= p < 84 for p in pitches)
        assert len({p % 12 for p in pitches}) >= 5
        ref_inputs, ref_labels = note_seq_example(reference, note_seq.Melody(events))
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_allclose(inputs, ref_inputs, atol=1e-6)


def test_lookback_dataset_equals_note_seq(chorale_file, tmp_path):
    make_dataset("lookback_rnn", chorale_file, tmp_path, eval_ratio=0.0, workers=2, progress=False)
    examples = read_examples(tmp_path / "training_melodies.tfrecord")
    reference = encoder_decoder.LookbackEventSequenceEncoderDecoder(melody_encoder_decoder.MelodyOneHotEncoding(48, 84))
    from collections import Counter

    melodies = [e for s in bach_chorales(NUM_CHORALES) for e, _ in event_sequences(s, "lookback_rnn", True, Counter())]
    assert len(melodies) == len(examples) > 0
    for events, (inputs, labels) in zip(melodies, examples):
        ref_inputs, ref_labels = note_seq_example(reference, note_seq.Melody(events))
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_allclose(inputs, ref_inputs, atol=1e-6)


def test_improv_infers_chords_and_matches_note_seq(chorale_file, tmp_path):
    summary = make_dataset("chord_pitches_improv", chorale_file, tmp_path, eval_ratio=0.0, workers=1, progress=False)
    assert summary.stats["pieces with inferred chords"] > 0
    examples = read_examples(tmp_path / "training_lead_sheets.tfrecord")
    from collections import Counter

    lead_sheets = [p for s in bach_chorales(NUM_CHORALES) for p in event_sequences(s, "chord_pitches_improv", True, Counter())]
    assert len(lead_sheets) == len(examples) > 0
    reference = encoder_decoder.ConditionalEventSequenceEncoderDecoder(
        chords_encoder_decoder.PitchChordsEncoderDecoder(),
        encoder_decoder.OneHotEventSequenceEncoderDecoder(melody_encoder_decoder.MelodyOneHotEncoding(48, 84)),
    )
    saw_chord = False
    for (melody, chords), (inputs, labels) in zip(lead_sheets, examples):
        assert len(chords) == len(melody)
        saw_chord |= any(c != "N.C." for c in chords)
        ref_inputs, ref_labels = note_seq_example(reference, note_seq.ChordProgression(chords), note_seq.Melody(melody))
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_allclose(inputs, ref_inputs, atol=1e-6)
    assert saw_chord


def test_polyphony_tracks(chorale_file, tmp_path):
    summary = make_dataset("polyphony", chorale_file, tmp_path, eval_ratio=0.0, workers=1, progress=False,
                           transposition_range=(-1, 0, 1))
    examples = read_examples(tmp_path / "training_poly_tracks.tfrecord")
    assert summary.training_examples == len(examples) > 0
    encoder = get_config("polyphony").make_encoder()
    from collections import Counter

    tracks = [e for s in bach_chorales(NUM_CHORALES) for e, _ in event_sequences(s, "polyphony", True, Counter(), (-1, 0, 1))]
    assert len(tracks) == len(examples)
    assert len(tracks) % 3 == 0  # every kept piece in three keys
    for events, (inputs, labels) in zip(tracks, examples):
        assert events[0] == POLY_START and events[-1] == POLY_END
        assert 80 <= events.count(POLY_STEP_END) <= 512
        # input i is the one-hot of event i; label i is the class of event i + 1
        np.testing.assert_array_equal(inputs.argmax(axis=1), [encoder.event_to_label(e) for e in events[:-1]])
        np.testing.assert_array_equal(labels, [encoder.event_to_label(e) for e in events[1:]])
        np.testing.assert_array_equal(inputs.sum(axis=1), 1.0)


def test_drum_tracks_match_note_seq(tmp_path):
    path = tmp_path / "drums.tfrecord"
    write_sequences(path, [drum_sequence(12), drum_sequence(3)])
    summary = make_dataset("drum_kit", path, tmp_path / "out", eval_ratio=0.0, workers=1, progress=False)
    examples = read_examples(tmp_path / "out" / "training_drum_tracks.tfrecord")
    assert len(examples) == 1  # the 3-bar one is too short
    assert summary.stats["drum tracks discarded: shorter than 7 bars"] == 1
    quantized = note_seq.quantize_note_sequence(drum_sequence(12), 4)
    track = note_seq.DrumTrack()
    track.from_quantized_sequence(quantized, gap_bars=1)
    reference = encoder_decoder.LookbackEventSequenceEncoderDecoder(note_seq.MultiDrumOneHotEncoding(), [], 6)
    ref_inputs, ref_labels = note_seq_example(reference, track)
    inputs, labels = examples[0]
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(inputs, ref_inputs, atol=1e-6)


def test_performance_matches_note_seq(chorale_file, tmp_path):
    summary = make_dataset("performance", chorale_file, tmp_path, eval_ratio=0.0, workers=1, progress=False,
                           transposition_range=(0,), stretch_factors=(1.0,))
    examples = read_examples(tmp_path / "training_performances.tfrecord")
    assert summary.training_examples == len(examples) > 0
    reference = encoder_decoder.OneHotEventSequenceEncoderDecoder(
        note_seq.PerformanceOneHotEncoding(num_velocity_bins=0)
    )
    # The first 30 s of the first chorale, at 100 steps per second, as note-seq makes it.
    seq = note_seq.apply_sustain_control_changes(bach_chorales(1)[0])
    piece = note_seq.sequences_lib.split_note_sequence(seq, 30.0)[0]
    perf = performance_lib.Performance(note_seq.quantize_note_sequence_absolute(piece, 100), num_velocity_bins=0)
    perf.truncate(512)
    ref_inputs, ref_labels = note_seq_example(reference, perf)
    inputs, labels = examples[0]
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(inputs, ref_inputs, atol=1e-6)


def test_performance_augments_training_pieces_only(chorale_file, tmp_path):
    from collections import Counter

    seq = bach_chorales(1)[0]
    train = event_sequences(seq, "performance", True, Counter())
    evaluation = event_sequences(seq, "performance", False, Counter())
    assert len(evaluation) >= 1
    assert len(train) >= 5 * 7 * len(evaluation) - 7  # stretches x transpositions (a stretch may add a piece)


def test_encode_uses_next_control():
    encoder = get_config("chord_pitches_improv").make_encoder()
    inputs, labels = encode(encoder, [60, -2, 62], ["C", "C", "G7"])
    fresh = get_config("chord_pitches_improv").make_encoder()
    fresh.append(60)
    np.testing.assert_array_equal(inputs[0], fresh.input_vector("C"))
    fresh.append(-2)
    np.testing.assert_array_equal(inputs[1], fresh.input_vector("G7"))
    assert labels.tolist() == [fresh.event_to_label(-2), fresh.event_to_label(62)]


def test_eval_split_by_piece(chorale_file, tmp_path):
    summary = make_dataset("attention_rnn", chorale_file, tmp_path, eval_ratio=0.5, seed=3, workers=1, progress=False)
    expected_eval = sum(is_eval(s.id or f"seq{i}", 0.5, 3) for i, s in enumerate(bach_chorales(NUM_CHORALES)))
    assert summary.eval_sequences == expected_eval
    assert (tmp_path / "eval_melodies.tfrecord").exists()


@pytest.mark.parametrize(
    "make_input, args, message",
    [
        (lambda d: d / "missing.tfrecord", ["--config", "attention_rnn"], "no such file"),
        (lambda d: (d / "text.tfrecord").write_text("hello, not a TFRecord") and d / "text.tfrecord",
         ["--config", "attention_rnn"], "not a TFRecord file of NoteSequences"),
        (None, ["--config", "no_such_rnn"], "unknown configuration 'no_such_rnn'"),
        (None, ["--config", "attention_rnn", "--eval-ratio", "1.5"], "--eval-ratio"),
    ],
)
def test_bad_input_exits_2_with_a_message(chorale_file, tmp_path, capsys, make_input, args, message):
    path = make_input(tmp_path) if make_input else chorale_file
    code = cli.main(["dataset", "--input", str(path), "--output-dir", str(tmp_path / "out"), "--quiet", *args])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_no_examples_exits_2(tmp_path, capsys):
    path = tmp_path / "drums.tfrecord"
    write_sequences(path, [drum_sequence(12)])
    code = cli.main(["dataset", "--config", "attention_rnn", "--input", str(path), "--output-dir", str(tmp_path / "o"),
                     "--quiet", "--workers", "1"])
    assert code == 2
    assert "no melody examples" in capsys.readouterr().err


def test_chunks_keep_the_whole_history(chorale_file, tmp_path):
    make_dataset("lookback_rnn", chorale_file, tmp_path / "whole", eval_ratio=0.0, workers=1, progress=False)
    make_dataset("lookback_rnn", chorale_file, tmp_path / "cut", eval_ratio=0.0, workers=1, progress=False,
                 chunk_steps=50)
    whole = read_examples(tmp_path / "whole" / "training_melodies.tfrecord")
    cut = read_examples(tmp_path / "cut" / "training_melodies.tfrecord")
    assert len(cut) > len(whole)
    assert all(len(labels) <= 50 for _, labels in cut)
    # Concatenated, the pieces are the whole sequences: inputs were computed over the full history.
    np.testing.assert_array_equal(np.concatenate([x for x, _ in cut]), np.concatenate([x for x, _ in whole]))
    np.testing.assert_array_equal(np.concatenate([y for _, y in cut]), np.concatenate([y for _, y in whole]))


def test_one_time_signature_keeps_chorales_whole():
    from collections import Counter

    # Chorales whose files mark the short bars at fermatas as meter changes.
    pieces = [s for s in bach_chorales(12) if len({(t.numerator, t.denominator) for t in s.time_signatures}) > 1]
    assert pieces
    cut = [e for s in pieces for e, _ in event_sequences(s, "polyphony", True, Counter(), (0,))]
    whole = [e for s in pieces for e, _ in event_sequences(s, "polyphony", True, Counter(), (0,), None, True)]
    assert len(whole) > len(cut)
    assert len(whole) == len(pieces)  # one track per chorale


@pytest.mark.parametrize(
    "given, transpositions, stretches",
    [
        (["--transpositions", "-3,-2,-1,0,1,2,3"], (-3, -2, -1, 0, 1, 2, 3), None),  # as docs/TRAINING.md writes it
        (["--transpositions", "-2"], (-2,), None),
        (["--transpositions=-4,4", "--stretch-factors", "0.95,1.05"], (-4, 4), (0.95, 1.05)),
        (["--transpositions", "0,-12"], (0, -12), None),
    ],
)
def test_number_lists_may_start_with_a_minus_sign(given, transpositions, stretches):
    argv = ["dataset", "--config", "performance", "--input", "in.tfrecord", "--output-dir", "out", *given]
    args = cli.build_parser().parse_args(cli.join_number_lists(argv))
    assert args.transpositions == transpositions and args.stretch_factors == stretches


def test_a_transposition_out_of_range_is_refused_in_one_line(capsys):
    code = cli.main(["dataset", "--config", "performance", "--input", "x", "--output-dir", "y", "--transpositions", "-3,-30"])
    err = capsys.readouterr().err
    assert code == 2 and "--transpositions" in err and "-30" in err and "Traceback" not in err
