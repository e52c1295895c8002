"""The Keras MusicVAE and the numpy runtime compute the same thing with the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from note_seq.protobuf import music_pb2

from live.models.vae import VaeConfig
from training.vae import MusicVaeNet, beta_at


def _random_net(config: VaeConfig, seed: int) -> MusicVaeNet:
    net = MusicVaeNet(config)
    rng = np.random.default_rng(seed)
    # trained-network scales: a kernel's entries about 1/sqrt(its inputs), biases 0.1
    net.set_canonical_weights({name: rng.normal(0, 1.0 / np.sqrt(w.shape[0]) if w.ndim == 2 else 0.1, w.shape).astype(np.float32)
                               for name, w in net.canonical_weights().items()})
    return net


@pytest.mark.parametrize(
    "config",
    [
        VaeConfig(z_size=16, encoder_sizes=[24, 20], decoder_sizes=[24, 16], steps=32),  # stacked bidirectional layers
        VaeConfig(),  # cat-mel_2bar_small's sizes: 512 each way, 2 x 256, z 256
    ],
    ids=["small two-layer", "cat-mel_2bar_small"],
)
def test_numpy_and_keras_agree_on_codes_and_logits(config):
    net = _random_net(config, 1)
    vae = net.to_live()
    rng = np.random.default_rng(2)
    events = rng.integers(0, config.num_classes, (3, config.steps))
    mu_k, sigma_k = (x.numpy() for x in net.encode(tf.constant(events)))
    mu, sigma = vae.encode(events)
    np.testing.assert_allclose(mu, mu_k, atol=1e-5)
    np.testing.assert_allclose(sigma, sigma_k, atol=1e-5)
    z = rng.normal(0, 1, (3, config.z_size)).astype(np.float32)
    np.testing.assert_allclose(vae.logits(z, events), net.logits(tf.constant(z), tf.constant(events)).numpy(), atol=1e-5)


def test_the_loss_has_magentas_terms_and_free_bits():
    config = VaeConfig(z_size=8, encoder_sizes=[16], decoder_sizes=[16], steps=16)
    net = _random_net(config, 3)
    events = tf.constant(np.random.default_rng(4).integers(0, 90, (5, 16)))
    tf.random.set_seed(0)
    terms = net.losses_of(events, beta=0.5, free_bits=0.0, sample=False)
    assert np.isclose(terms["loss"].numpy(), terms["reconstruction"].numpy() + 0.5 * terms["kl"].numpy(), rtol=1e-5)
    free = net.losses_of(events, beta=0.5, free_bits=1e6, sample=False)  # every nat free: no KL cost
    assert np.isclose(free["loss"].numpy(), free["reconstruction"].numpy(), rtol=1e-6)
    assert terms["kl"].numpy() > 0


def test_beta_rises_to_max_beta():
    assert beta_at(0, 0.2, 0.99999) == 0.0
    assert 0.0 < beta_at(1000, 0.2, 0.99999) < beta_at(100_000, 0.2, 0.99999) < 0.2


def melody_sequence(seq_id: str, pitches: list[int], bars: int = 4) -> music_pb2.NoteSequence:
    """A 4/4 tune of eighth notes cycling through ``pitches`` at 120 BPM."""
    seq = music_pb2.NoteSequence(ticks_per_quarter=220, id=seq_id)
    seq.tempos.add(qpm=120)
    seq.time_signatures.add(numerator=4, denominator=4)
    for k in range(bars * 8):
        seq.notes.add(pitch=pitches[k % len(pitches)], velocity=80, start_time=k * 0.25, end_time=k * 0.25 + 0.2)
    seq.total_time = bars * 2.0
    return seq


def test_windows_are_two_bars_on_bar_lines_and_distinct():
    from collections import Counter

    from live.models.vae import classes_notes
    from training.vae_data import windows

    config = VaeConfig()
    rows = windows(melody_sequence("a", [60, 62, 64, 65, 67, 69, 71, 72]), config, Counter())
    # 4 bars of the same bar-long run: windows at bars 0, 1, 2 are one window (bar 2's is shorter by the last note-off)
    assert 1 <= len(rows) <= 3 and all(r.shape == (32,) for r in rows)
    first = classes_notes(rows[0])
    assert first[0][:1] == (0,) and first[0][2] == 60 and len(first) == 16
    waltz = melody_sequence("w", [60, 64, 67])
    waltz.time_signatures[0].numerator = 3
    stats = Counter()
    assert windows(waltz, config, stats) == [] and stats["pieces skipped: not in 4/4"] == 1


def test_the_command_line_makes_a_dataset_trains_evaluates_and_exports_and_numpy_loads_it(tmp_path, capsys):
    import json

    import tensorflow as tf

    from live.models.vae import load_vae
    from training import cli

    source = tmp_path / "tunes.tfrecord"
    with tf.io.TFRecordWriter(str(source)) as w:
        for i in range(40):
            rng = np.random.default_rng(i)
            tune = melody_sequence(f"tune{i}", [int(p) for p in rng.choice([60, 62, 64, 65, 67, 69, 71, 72], 12)], bars=6)
            w.write(tune.SerializeToString())
    data, run = tmp_path / "data", tmp_path / "run"
    assert cli.main(["dataset", "--config", "cat-mel_2bar_small", "--input", str(source), "--output-dir", str(data),
                     "--eval-ratio", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "training examples (" in out and "windows: " in out  # an example is a two-bar window
    train_file, eval_file = data / "training_vae_melodies.tfrecord", data / "eval_vae_melodies.tfrecord"
    hparams = "batch_size=16,z_size=8,enc_rnn_size=[16],dec_rnn_size=[16,16],transpose=2"
    assert cli.main(["train", "--config", "cat-mel_2bar_small", "--run-dir", str(run), "--sequence-example-file",
                     str(train_file), "--hparams", hparams, "--num-training-steps", "6", "--checkpoint-every", "3",
                     "--log-every", "3"]) == 0
    assert cli.main(["train", "--run-dir", str(run), "--sequence-example-file", str(train_file),
                     "--num-training-steps", "9", "--log-every", "3"]) == 0  # resumed: the run knows it is a VAE
    assert "resuming at step 6" in capsys.readouterr().out
    metrics_file = tmp_path / "eval.json"
    assert cli.main(["train", "--eval", "--run-dir", str(run), "--sequence-example-file", str(eval_file),
                     "--metrics-json", str(metrics_file)]) == 0
    metrics = json.loads(metrics_file.read_text())
    assert metrics["step"] == 9 and metrics["windows"] > 0
    assert 0.0 <= metrics["reconstruction_accuracy"] <= 1.0 and metrics["elbo_nats_per_step"] > 0
    assert cli.main(["export", "--run-dir", str(run), "--output", str(tmp_path / "vae.npz"), "--trained-on", "forty tunes"]) == 0
    vae = load_vae(tmp_path / "vae.npz")
    assert vae.config.z_size == 8 and vae.config.source["steps"] == 9 and vae.config.source["trained_on"] == "forty tunes"
    assert vae.decode(np.zeros((2, 8), np.float32), rng=np.random.default_rng(0)).shape == (2, 32)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--hparams", "batch_size=0"], "batch_size=0 must be numbers from 1"),
        (["--hparams", "enc_rnn_size=256"], "must be a list of numbers"),
        (["--hparams", "z_size=1e9"], "z_size=1e9"),
        (["--hparams", "nope=1"], "'nope=1' is not NAME=VALUE"),
    ],
)
def test_bad_vae_hparams_get_one_line(tmp_path, capsys, args, words):
    from training import cli

    code = cli.main(["train", "--config", "cat-mel_2bar_small", "--run-dir", str(tmp_path / "run"),
                     "--sequence-example-file", str(tmp_path / "none.tfrecord"), *args])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "Traceback" not in err


def test_training_on_a_missing_file_says_so_and_makes_no_run(tmp_path, capsys):
    from training import cli

    code = cli.main(["train", "--config", "cat-mel_2bar_small", "--run-dir", str(tmp_path / "run"),
                     "--sequence-example-file", str(tmp_path / "nosuch_*.tfrecord")])
    assert code == 2 and "does not exist (or the pattern matches nothing)" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_record_that_is_not_a_notesequence_is_skipped_and_counted(tmp_path):
    import tensorflow as tf

    from training.vae_data import make_vae_dataset

    source = tmp_path / "tunes.tfrecord"
    with tf.io.TFRecordWriter(str(source)) as w:
        w.write(melody_sequence("tune", [60, 62, 64, 65, 67, 69, 71, 72], bars=6).SerializeToString())
        w.write(b"\xff\xffnot a NoteSequence")
    summary = make_vae_dataset(source, tmp_path / "data", VaeConfig(), eval_ratio=0.0)
    assert summary.stats["records skipped: not a NoteSequence"] == 1 and summary.training_examples > 0
