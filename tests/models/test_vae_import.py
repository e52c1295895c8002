"""Magenta's MusicVAE TF1 checkpoints import into the numpy runtime (a test writes one with
magenta's variable names and shapes, optimizer slots and global step included)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from live.cli import main
from live.models.vae import VaeConfig, expected_shapes, load_vae
from tests.models.test_vae import random_vae

CONFIG = VaeConfig(z_size=8, encoder_sizes=[16, 12], decoder_sizes=[12, 10], steps=32)


def magenta_names(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The live file's weight names as magenta's lstm_models.py names the variables."""
    out = {}
    for name, value in weights.items():
        parts = name.split("/")
        if parts[0] == "encoder" and parts[1][:3] in ("fw_", "bw_"):
            direction, layer = parts[1].split("_")
            out[f"encoder/cell_{layer}/bidirectional_rnn/{direction}/multi_rnn_cell/cell_0/lstm_cell/{parts[2]}"] = value
        elif parts[0] == "decoder" and parts[1].startswith("lstm_"):
            out[f"decoder/multi_rnn_cell/cell_{parts[1][5:]}/lstm_cell/{parts[2]}"] = value
        else:
            dense = {"initial": "z_to_initial_state", "output": "output_projection"}.get(parts[1], parts[1])
            out[f"{parts[0]}/{dense}/{parts[2]}"] = value
    return out


def write_tf1_checkpoint(prefix: str, variables: dict[str, np.ndarray]) -> None:
    graph = tf.Graph()
    with graph.as_default():
        made = [tf.compat.v1.Variable(value, name=name) for name, value in variables.items()]
        saver = tf.compat.v1.train.Saver(made)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix)


def test_a_magenta_checkpoint_imports_and_encodes_as_the_original(tmp_path):
    vae = random_vae(CONFIG, seed=7)
    variables = magenta_names(vae.weights)
    variables["global_step"] = np.array(1234, np.int64)
    variables["encoder/mu/kernel/Adam"] = np.zeros_like(vae.weights["encoder/mu/kernel"])  # an optimizer slot
    prefix = str(tmp_path / "cat-mel_2bar_small.ckpt")
    write_tf1_checkpoint(prefix, variables)
    assert main(["import", prefix + ".index", "-o", str(tmp_path / "vae.npz")]) == 0
    again = load_vae(tmp_path / "vae.npz")
    assert again.config.encoder_sizes == [16, 12] and again.config.decoder_sizes == [12, 10] and again.config.z_size == 8
    assert set(again.weights) == set(expected_shapes(CONFIG))
    events = np.random.default_rng(1).integers(0, 90, (2, 32))
    np.testing.assert_array_equal(again.encode(events)[0], vae.encode(events)[0])
    z = np.random.default_rng(2).standard_normal((2, 8)).astype(np.float32)
    np.testing.assert_array_equal(again.logits(z, events), vae.logits(z, events))


def test_a_checkpoint_that_is_not_a_musicvae_says_so(tmp_path, capsys):
    prefix = str(tmp_path / "other.ckpt")
    write_tf1_checkpoint(prefix, {"rnn/lstm_cell/kernel": np.zeros((4, 8), np.float32)})
    code = main(["import", prefix, "-o", str(tmp_path / "vae.npz")])
    err = capsys.readouterr().err
    assert code == 1 and "not a Magenta melody MusicVAE checkpoint" in err and "Traceback" not in err
    assert not (tmp_path / "vae.npz").exists()
    code = main(["import", str(tmp_path / "missing.ckpt"), "-o", str(tmp_path / "vae.npz")])
    assert code == 1 and "no TensorFlow checkpoint" in capsys.readouterr().err
