"""The engine against each fixture bundle's own metagraph (tf.compat.v1), step by step."""

from __future__ import annotations

import pathlib

import note_seq
import numpy as np
import pytest

import live.models
from tests.corpus import bach_chorales, chorale_voice, quantized
from harness.metagraph import MetagraphRunner

BUNDLES = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "magenta_bundles"
MELODY_BUNDLES = ["attention_rnn_64x2.mag", "lookback_rnn_256x2.mag"]
POLYPHONY_BUNDLES = ["polyphony_128x2.mag", "polyphony_64x3.mag"]
TOLERANCE = 2e-5
"""Probabilities, ours against the metagraph's, after up to 96 recurrent float32 steps. The
rounding depends on the order of the sums (ours: the recurrent half worked out ahead,
``Model.prepare``) and on the CPU's BLAS kernels: on an AMD EPYC VM on 2026-12-07 one element of
polyphony_128x2's 24,864 came out 1.03e-5 apart at step 90 (7.5e-6 with the sums in TensorFlow's
order; the 99.9th percentile 1.8e-6). A wrong model is 1e-2 and more apart (the last assert)."""


def bundle(name: str) -> str:
    path = BUNDLES / name
    assert path.exists(), f"fixture bundle missing: {path}"
    return str(path)


def soprano_events(min_steps: int = 96) -> list[int]:
    """A real melody: a chorale soprano, squashed into 48..84 and transposed to C as Magenta does."""
    for seq in bach_chorales(8):
        melody = note_seq.Melody()
        melody.from_quantized_sequence(quantized(chorale_voice(seq)), gap_bars=4, ignore_polyphonic_notes=True)
        if len(melody) >= min_steps:
            melody.squash(48, 84, 0)
            return list(melody)
    raise AssertionError("no chorale soprano long enough")


def chorale_poly_events(min_steps: int = 200) -> list:
    from live.models.encodings.polyphony import sequence_to_poly_events

    for seq in bach_chorales(8):
        q = quantized(seq)
        notes = [(n.pitch, n.quantized_start_step, n.quantized_end_step) for n in q.notes]
        events = sequence_to_poly_events(notes)
        if len(events) >= min_steps:
            return events
    raise AssertionError("no chorale long enough")


def engine_probs(model: live.models.Model, events: list, steps: int) -> np.ndarray:
    """Teacher-force ``events`` one step at a time through our encoder and model: [steps, C]."""
    encoder = model.make_encoder()
    state = model.initial_state(1)
    out = []
    for event in events[:steps]:
        encoder.append(event)
        probs, state = model.step(encoder.input_vector()[None], state)
        out.append(probs[0])
    return np.array(out)


def encoded_inputs(model: live.models.Model, events: list, steps: int) -> np.ndarray:
    encoder = model.make_encoder()
    rows = []
    for event in events[:steps]:
        encoder.append(event)
        rows.append(encoder.input_vector())
    return np.array(rows)


@pytest.mark.parametrize("name", MELODY_BUNDLES + POLYPHONY_BUNDLES)
def test_engine_matches_metagraph_step_by_step(name):
    model = live.models.load(bundle(name))
    events = soprano_events() if model.family == "melody" else chorale_poly_events()
    steps = 96
    ours = engine_probs(model, events, steps)
    runner = MetagraphRunner(bundle(name))
    try:
        theirs, _ = runner.run(encoded_inputs(model, events, steps))
    finally:
        runner.close()
    assert ours.shape == theirs.shape == (steps, model.num_classes)
    np.testing.assert_allclose(ours, theirs, atol=TOLERANCE, rtol=0)
    # and the distributions are not degenerate: the test could tell a wrong model apart
    assert np.abs(np.diff(theirs, axis=0)).max() > 1e-2


@pytest.mark.parametrize("name", ["attention_rnn_64x2.mag", "polyphony_64x3.mag"])
def test_cached_state_matches_metagraph_carrying_state(name):
    """Magenta's generation loop: one session.run per step, final_state fed back as initial_state."""
    model = live.models.load(bundle(name))
    events = soprano_events() if model.family == "melody" else chorale_poly_events()
    steps = 64
    inputs = encoded_inputs(model, events, steps)
    runner = MetagraphRunner(bundle(name))
    try:
        state, theirs = None, []
        for t in range(steps):
            probs, state = runner.run(inputs[t : t + 1], state, temperature=1.5)
            theirs.append(probs[0])
    finally:
        runner.close()
    ours_state, ours = model.initial_state(1), []
    for t in range(steps):
        probs, ours_state = model.step(inputs[t : t + 1], ours_state, temperature=1.5)
        ours.append(probs[0])
    np.testing.assert_allclose(np.array(ours), np.array(theirs), atol=TOLERANCE, rtol=0)


def test_attention_length_read_from_metagraph():
    model = live.models.load(bundle("attention_rnn_64x2.mag"))
    assert (model.config_id, model.config.attn_length, model.config.attention_scope) == ("attention_rnn", 40, "first")
    assert model.config.layer_sizes == [64, 64]
    assert (model.input_size, model.num_classes) == (74, 40)
    assert model.config.source["batch_size"] == 64
