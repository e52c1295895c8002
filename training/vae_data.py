"""MusicVAE's data: two-bar melody windows from NoteSequences (Magenta's ``OneHotMelodyConverter``
with ``slice_bars=2``, as ``cat-mel_2bar_small`` uses it).

Each piece in 4/4 is quantized to four steps a quarter; its melodies are extracted by Magenta's
rules (``training.dataset.extract_melodies``: one instrument at a time, split at a bar of
silence, the top note where notes overlap); every window of 32 steps that starts on a bar line
and holds a note becomes one example (the same window twice in a piece counts once). Pieces go
to training or evaluation by the hash of their id (``training.dataset.is_eval``), so a tune's
windows never straddle the split. Transposition happens while training (``training.vae``),
not here.

Output: ``training_vae_melodies.tfrecord`` and ``eval_vae_melodies.tfrecord`` of
``tf.train.Example`` with one int64 feature, ``classes`` (32 values, ``live.models.vae``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter

import numpy as np
import tensorflow as tf

from live.files import atomic_path
from live.models.vae import FIRST_PITCH_CLASS, VaeConfig, events_classes
from training.dataset import (
    DatasetError,
    DatasetSummary,
    extract_melodies,
    is_eval,
    note_sequence,
    quantize,
    read_note_sequences,
    split_key,
    split_on_time_changes,
)

OUTPUT_NAME = "vae_melodies"
STEPS_PER_QUARTER = 4
MIN_BARS = 2


def windows(sequence, config: VaeConfig, stats: Counter) -> list[np.ndarray]:
    """The distinct two-bar windows (classes [steps]) of one NoteSequence."""
    out: dict[bytes, np.ndarray] = {}
    steps_per_bar = config.steps // 2
    for piece in split_on_time_changes(sequence):
        sigs = list(piece.time_signatures)
        if sigs and (sigs[0].numerator, sigs[0].denominator) != (4, 4):
            stats["pieces skipped: not in 4/4"] += 1
            continue
        q = quantize(piece, STEPS_PER_QUARTER, stats)
        if q is None or not q.notes:
            continue
        try:
            melodies = extract_melodies(q, MIN_BARS, 10**6, 1, stats)
        except Exception as err:  # noqa: BLE001 - note-seq's odd-meter errors and friends
            stats[f"pieces skipped: {type(err).__name__}"] += 1
            continue
        for melody in melodies:
            row = events_classes(list(melody), config.min_pitch, config.num_classes)
            for start in range(0, len(row) - config.steps + 1, steps_per_bar):
                window = row[start : start + config.steps]
                if (window >= FIRST_PITCH_CLASS).any():
                    out.setdefault(window.tobytes(), window)
    stats["windows"] += len(out)
    return list(out.values())


def example_bytes(row: np.ndarray) -> bytes:
    feature = tf.train.Feature(int64_list=tf.train.Int64List(value=row.tolist()))
    return tf.train.Example(features=tf.train.Features(feature={"classes": feature})).SerializeToString()


def parse_example(blob: tf.Tensor, steps: int) -> tf.Tensor:
    """A serialized example -> classes int32 [steps]."""
    return tf.cast(tf.io.parse_single_example(blob, {"classes": tf.io.FixedLenFeature([steps], tf.int64)})["classes"], tf.int32)


def make_vae_dataset(input_path: str | os.PathLike, output_dir: str | os.PathLike, config: VaeConfig,
                     eval_ratio: float = 0.1, seed: int = 0, limit: int | None = None) -> DatasetSummary:
    """Write the training and eval windows of ``input_path``'s NoteSequences into ``output_dir``
    (an example is a window; its steps are the window's)."""
    started = time.perf_counter()
    records = list(read_note_sequences(input_path))[:limit]
    if not records:
        raise DatasetError(f"{input_path}: no NoteSequences in the file")
    os.makedirs(output_dir, exist_ok=True)
    summary = DatasetSummary(sequences=len(records))
    paths = {k: os.path.join(output_dir, f"{'eval' if k else 'training'}_{OUTPUT_NAME}.tfrecord") for k in (False, True)}
    with contextlib.ExitStack() as files:
        writers = {k: files.enter_context(tf.io.TFRecordWriter(files.enter_context(atomic_path(p)))) for k, p in paths.items()}
        for blob in records:
            sequence = note_sequence(blob, summary.stats)
            if sequence is None:
                continue
            evaluation = is_eval(split_key(sequence, blob), eval_ratio, seed)
            summary.eval_sequences += evaluation
            for row in windows(sequence, config, summary.stats):
                writers[evaluation].write(example_bytes(row))
                if evaluation:
                    summary.eval_examples += 1
                    summary.eval_steps += config.steps
                else:
                    summary.training_examples += 1
                    summary.training_steps += config.steps
        summary.seconds = time.perf_counter() - started
        if summary.training_examples + summary.eval_examples == 0:
            raise DatasetError(f"no two-bar melody windows in {input_path}:\n{summary.text()}")
    return summary
