"""Export: the live model file computes what the Keras network computes (within 1e-5)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import live.models
from live.models.cells import softmax
from live.models.configs import CONFIGS
from tests.training.train_data import (
    chorale_melodies,
    encode,
    random_examples,
    write_examples,
)
from training import cli
from training.export import export
from training.model import EventRNN, default_hparams, parse_hparams
from training.train import build, read_run_info, restore, train


def numpy_probabilities(model: live.models.model.Model, inputs: np.ndarray) -> np.ndarray:
    """inputs [B, T, I] -> softmax [B, T, C], stepping the numpy engine one step at a time."""
    state = model.initial_state(inputs.shape[0])
    out = []
    for t in range(inputs.shape[1]):
        probs, state = model.step(inputs[:, t], state)
        out.append(probs)
    return np.stack(out, axis=1)


def padded(examples, count: int) -> np.ndarray:
    length = max(len(x) for x, _ in examples[:count])
    batch = np.zeros((count, length, examples[0][0].shape[1]), np.float32)
    for b, (x, _) in enumerate(examples[:count]):
        batch[b, : len(x)] = x
    return batch


CASES = {
    # plain stacked LSTM, real melodies
    "basic_rnn": "rnn_layer_sizes=[24,16]",
    # attention around layer 0 of three, conditioned on chords
    "attention_improv": "rnn_layer_sizes=[16,12,8],attn_length=5",
    # attention, lookback-style key-melody input
    "attention_rnn": "rnn_layer_sizes=[16,16],attn_length=6",
    # conditioned on note density and pitch histogram
    "multiconditioned_performance_with_dynamics": "rnn_layer_sizes=[16,8]",
}


@pytest.mark.parametrize("config_id", sorted(CASES))
def test_exported_model_matches_the_keras_network(tmp_path, config_id):
    if config_id == "basic_rnn":
        examples = [encode(config_id, m) for m in chorale_melodies(4)]
    else:
        examples = random_examples(config_id, count=6, length=24, seed=1)
    data = write_examples(tmp_path / "train.tfrecord", examples)
    run_dir = str(tmp_path / "run")
    train(run_dir, config_id, data, "batch_size=3," + CASES[config_id], num_training_steps=3, log=lambda *_: None)
    out = export(run_dir, str(tmp_path / "model.npz"), trained_on="test data")

    loaded = live.models.load(out)
    assert loaded.config_id == config_id
    assert loaded.config.source["trained_on"] == "test data"
    assert loaded.config.source["steps"] == 3

    info = read_run_info(run_dir)
    network, _, _, checkpoint, manager = build(info, run_dir)
    restore(run_dir, network, checkpoint, manager, require=True, weights_only=True)
    inputs = padded(examples, 3)[:, :40]
    expected = softmax(network(inputs).numpy())
    got = numpy_probabilities(loaded, inputs)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # Trained weights moved away from the initial ones (the export is not of a fresh network).
    fresh = EventRNN.for_config(config_id, info.hparams).canonical_weights()
    assert any(not np.array_equal(loaded.weights[k], fresh[k]) for k in fresh if k.endswith("bias"))


@pytest.mark.parametrize("config_id", ["lookback_rnn", "drum_kit", "chord_pitches_improv"])
def test_keras_network_matches_numpy_engine_with_large_weights(config_id):
    """Weights several times the initialization's scale (saturating gates, peaked attention)
    still agree. (Much larger weights make the attention recurrence chaotic: float32 rounding
    differences then grow step by step in any two implementations.)"""
    hp = parse_hparams("rnn_layer_sizes=[20,12,10]", default_hparams(config_id))
    if hp.attn_length:
        hp.attn_length = 7
    network = EventRNN.for_config(config_id, hp)
    rng = np.random.default_rng(3)
    network.set_canonical_weights(
        {k: rng.normal(0.0, 0.3, v.shape).astype(np.float32) for k, v in network.canonical_weights().items()}
    )
    model = network.to_live_model(config_id)
    inputs = padded(random_examples(config_id, count=4, length=30, seed=2), 4)
    np.testing.assert_allclose(
        numpy_probabilities(model, inputs), softmax(network(inputs).numpy()), atol=1e-5, rtol=0
    )


def test_every_config_exports_the_shapes_the_engine_expects():
    for config_id in CONFIGS:
        hp = default_hparams(config_id)
        hp.rnn_layer_sizes = [4] * len(hp.rnn_layer_sizes)
        if hp.attn_length:
            hp.attn_length = 3
        model = EventRNN.for_config(config_id, hp).to_live_model(config_id)  # checks every shape
        encoder = model.make_encoder()
        assert (model.input_size, model.num_classes) == (encoder.input_size, encoder.num_classes)


def test_export_command_line(tmp_path, capsys):
    data = write_examples(tmp_path / "t.tfrecord", random_examples("basic_rnn", count=4, length=12))
    run_dir = str(tmp_path / "run")
    train(run_dir, "basic_rnn", data, "batch_size=2,rnn_layer_sizes=[8]", num_training_steps=2, log=lambda *_: None)
    out = tmp_path / "m.npz"
    code = cli.main(["export", "--run-dir", run_dir, "--output", str(out), "--trained-on", "random events"])
    assert code == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out
    model = live.models.load(str(out))
    assert model.config.layer_sizes == [8]
    assert model.config.source["trained_on"] == "random events"
    assert model.config.source["hparams"]["rnn_layer_sizes"] == [8]
    assert json.loads(json.dumps(model.config.source))  # plain JSON


def test_export_without_checkpoint_or_run_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["export", "--run-dir", str(tmp_path / "nothing"), "--output", str(tmp_path / "m.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "no run.json" in err and "Traceback" not in err
