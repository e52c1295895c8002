"""SequenceExamples for the training tests, made with the live encoders (as Magenta's
``*_create_dataset`` makes them with note-seq's): real melodies from Bach chorales, or random
event sequences for any configuration, with random controls for the conditional ones."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from live.models.configs import IMPROV, get_config

TRIADS = ("C", "Am", "F", "G", "Dm", "Em", "N.C.")


def random_controls(config_id: str, count: int, rng: np.random.Generator) -> list[Any] | None:
    """``count`` control events for a conditional configuration (None for the others)."""
    spec = get_config(config_id)
    if spec.family == IMPROV:
        return [TRIADS[int(k)] for k in rng.integers(len(TRIADS), size=count)]
    density = lambda: float(rng.uniform(0.0, 40.0))  # noqa: E731
    histogram = lambda: [float(v) for v in rng.random(12)]  # noqa: E731
    return {
        "density_conditioned_performance_with_dynamics": lambda: [(density(),) for _ in range(count)],
        "pitch_conditioned_performance_with_dynamics": lambda: [(histogram(),) for _ in range(count)],
        "multiconditioned_performance_with_dynamics": lambda: [(density(), histogram()) for _ in range(count)],
        "optional_multiconditioned_performance_with_dynamics": lambda: [
            (bool(rng.random() < 0.3), (density(), histogram())) for _ in range(count)
        ],
    }.get(config_id, lambda: None)()


def random_events(config_id: str, count: int, rng: np.random.Generator) -> list[Any]:
    """``count`` events the configuration's encoding can represent, from random classes."""
    encoder = get_config(config_id).make_encoder()
    events = []
    for _ in range(count):
        event = encoder.label_to_event(int(rng.integers(encoder.num_classes)))
        encoder.append(event)
        events.append(event)
    return events


def encode(config_id: str, events: Sequence[Any], controls: Sequence[Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(inputs float32 [n - 1, input_size], labels int64 [n - 1]) as Magenta's encoder makes
    them: input i describes events[:i + 1] (and control i + 1), label i is events[i + 1]."""
    encoder = get_config(config_id).make_encoder()
    inputs, labels = [], []
    for i in range(len(events) - 1):
        encoder.append(events[i])
        inputs.append(encoder.input_vector(None if controls is None else controls[i + 1]))
        labels.append(encoder.event_to_label(events[i + 1]))
    return np.array(inputs, np.float32).reshape(-1, encoder.input_size), np.array(labels, np.int64)


def sequence_example(inputs: np.ndarray, labels: np.ndarray) -> tf.train.SequenceExample:
    """Magenta's layout: feature lists ``inputs`` (FloatList per step) and ``labels`` (Int64List)."""
    example = tf.train.SequenceExample()
    feature_lists = example.feature_lists.feature_list
    for row in inputs:
        feature_lists["inputs"].feature.add().float_list.value.extend(row.tolist())
    for label in labels:
        feature_lists["labels"].feature.add().int64_list.value.append(int(label))
    return example


def write_examples(path: str, examples: Sequence[tuple[np.ndarray, np.ndarray]]) -> str:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for inputs, labels in examples:
            writer.write(sequence_example(inputs, labels).SerializeToString())
    return str(path)


def random_examples(config_id: str, count: int, length: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` random sequences of ``length`` - 1..``length`` events, encoded."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n = int(rng.integers(max(2, length // 2), length + 1))
        out.append(encode(config_id, random_events(config_id, n, rng), random_controls(config_id, n, rng)))
    return out


@functools.cache
def chorale_melodies(count: int = 8) -> tuple[tuple[int, ...], ...]:
    """Melodies (live melody events) extracted from the first ``count`` Bach chorales by note-seq,
    transposed into the 48..84 range Magenta's melody configs use."""
    import note_seq

    from tests.corpus import bach_chorales, quantized

    melodies = []
    for sequence in bach_chorales(count):
        q = quantized(sequence)
        for instrument in sorted({n.instrument for n in q.notes}):
            melody = note_seq.Melody()
            melody.from_quantized_sequence(q, instrument=instrument, gap_bars=1, ignore_polyphonic_notes=True)
            if len(melody) > 8:
                melody.squash(48, 84, 0)
                melodies.append(tuple(int(e) for e in melody))
    return tuple(melodies)
