"""``train --strategy mirrored|multi-worker`` and ``--mixed-precision``, run for real: mirrored on
two logical CPU devices, multi-worker as two worker processes on loopback ports, each checked
against the same run on one device.

Each run is its own process: the CPU is split into logical devices, and a multi-worker cluster
formed, only before TensorFlow starts. Runs share one random seed, so a step on two replicas must
give the same loss as on one device (the batch is split, the update is the same).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.training.train_data import chorale_melodies, encode, write_examples
from training.train import read_scalars

STEPS = 24
HPARAMS = "batch_size=8,rnn_layer_sizes=[32],dropout_keep_prob=1.0,learning_rate=0.01"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The CLI with a fixed seed (weights and the shuffle), in a fresh process.
SEEDED_CLI = "import sys, keras; keras.utils.set_random_seed(7); from training.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture(scope="module")
def chorales(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("data") / "chorales.tfrecord"
    return write_examples(str(path), [encode("basic_rnn", m) for m in chorale_melodies(8)])


def start(run_dir, data: str, *flags: str, env: dict | None = None) -> subprocess.Popen:
    argv = ["train", "--config", "basic_rnn", "--run-dir", str(run_dir), "--sequence-example-file", data,
            "--hparams", HPARAMS, "--num-training-steps", str(STEPS), "--summary-every", "1", *flags]
    return subprocess.Popen(
        [sys.executable, "-c", SEEDED_CLI, *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
    )


def finish(process: subprocess.Popen, timeout: float = 240) -> str:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out
    return out


def losses(run_dir) -> np.ndarray:
    return np.array([v for _, v in read_scalars(os.path.join(run_dir, "train"))["loss"]])


@pytest.fixture(scope="module")
def one_device(chorales, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("one") / "run"
    finish(start(run_dir, chorales))
    curve = losses(run_dir)
    assert len(curve) == STEPS and curve[-1] < 0.6 * curve[0]  # it learns: the comparisons below mean something
    return run_dir


def assert_same_run(run_dir, one_device_run, atol: float = 2e-3) -> None:
    """The same losses step by step, and the same weights and Adam moments at the end (the
    moments keep the gradients' scale, which Adam's update hides)."""
    import tensorflow as tf

    np.testing.assert_allclose(losses(run_dir), losses(one_device_run), atol=atol)
    readers = [tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(d, "train"))) for d in (run_dir, one_device_run)]
    names = [n for n in readers[1].get_variable_to_shape_map() if n.startswith(("model/", "optimizer/"))]
    assert any("optimizer/" in n for n in names)
    for name in names:
        np.testing.assert_allclose(readers[0].get_tensor(name), readers[1].get_tensor(name), rtol=1e-3, atol=1e-5, err_msg=name)


def test_mirrored_on_two_cpu_replicas_trains_as_on_one_device(chorales, one_device, tmp_path):
    out = finish(start(tmp_path / "run", chorales, "--strategy", "mirrored", "--cpu-replicas", "2"))
    assert "2 replicas (CPU:0, CPU:1), 8 sequences per step in all" in out
    assert_same_run(tmp_path / "run", one_device)
    assert f"saved {tmp_path / 'run' / 'train' / f'ckpt-{STEPS}'}" in out


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_loopback_train_as_one_device(chorales, one_device, tmp_path):
    """Two worker processes form a cluster from TF_CONFIG; worker 0 (the chief) alone writes the
    run, and worker 1 leaves nothing behind."""
    cluster = [f"localhost:{p}" for p in free_ports(2)]
    scratch = [tmp_path / f"tmp{i}" for i in range(2)]
    workers = []
    for i in range(2):
        scratch[i].mkdir()
        config = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}}
        env = {"TF_CONFIG": json.dumps(config), "TMPDIR": str(scratch[i])}
        workers.append(start(tmp_path / "run", chorales, "--strategy", "multi-worker", env=env))
    outs = [finish(w) for w in workers]
    assert "worker 0: --strategy multi-worker: 2 replicas" in outs[0]
    assert f"worker 1: done after {STEPS} steps" in outs[1]
    assert_same_run(tmp_path / "run", one_device)
    events = [f for f in os.listdir(tmp_path / "run" / "train") if f.startswith("events")]
    assert len(events) == 1  # the chief's
    assert os.listdir(scratch[1]) == []  # worker 1's checkpoints went to a scratch folder, since removed


def test_mixed_precision_learns_and_exports_float32(chorales, one_device, tmp_path):
    import tensorflow as tf

    from live.models.modelfile import read_container

    out = finish(start(tmp_path / "run", chorales, "--mixed-precision"))
    assert "mixed precision: float16 compute, float32 weights" in out
    # float16 rounding, but the same run: far closer to float32 than one step's change
    np.testing.assert_allclose(losses(tmp_path / "run"), losses(one_device), atol=0.02)
    checkpoint = tf.train.latest_checkpoint(str(tmp_path / "run" / "train"))
    dtypes = tf.train.load_checkpoint(checkpoint).get_variable_to_dtype_map()
    weights = {k: v for k, v in dtypes.items() if k.startswith("model/")}
    assert weights and set(weights.values()) == {tf.float32}
    finish(subprocess.Popen(
        [sys.executable, "-m", "training.cli", "export", "--run-dir", str(tmp_path / "run"), "--output", str(tmp_path / "m.npz")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ))
    _, stored = read_container(str(tmp_path / "m.npz"))
    assert {w.dtype for w in stored.values()} == {np.dtype(np.float32)}


def test_mirrored_resumes_a_one_device_run(chorales, tmp_path):
    """Checkpoints are the same whatever the strategy: a run started on one device goes on mirrored."""
    run_dir = tmp_path / "run"
    finish(start(run_dir, chorales, "--num-training-steps", "6"))
    out = finish(start(run_dir, chorales, "--strategy", "mirrored", "--cpu-replicas", "2", "--num-training-steps", "12"))
    assert f"from {run_dir / 'train' / 'ckpt-6'} at step 6" in out
    assert f"saved {run_dir / 'train' / 'ckpt-12'} after 6 steps" in out


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    from training.cli import main

    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--cpu-replicas", "2"], "--cpu-replicas: for --strategy mirrored (default runs one replica per machine)"),
        (["--strategy", "multi-worker"], "TF_CONFIG is not set: every worker needs a cluster and its task"),
        (["--strategy", "mirrored", "--eval"], "--strategy mirrored: for training (--eval runs on one device)"),
        (["--cpu-replicas", "0"], "--cpu-replicas"),
        (["--strategy", "ring"], "invalid choice: 'ring'"),
    ],
)
def test_strategy_flags_that_cannot_work_say_why(capsys, monkeypatch, chorales, tmp_path, flags, words):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code, err = run_cli(capsys, "train", "--config", "basic_rnn", "--run-dir", str(tmp_path / "run"),
                        "--sequence-example-file", chorales, *flags)
    assert code == 2 and words in err, err


@pytest.mark.parametrize(
    "tf_config, words",
    [
        ("{not json", "is not JSON"),
        ("{}", "every worker needs a cluster and its task"),
        ('"x"', "every worker needs a cluster and its task"),
        ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}', 'must list "host:port" addresses'),
        ('{"cluster": ["a:1"], "task": {"type": "worker", "index": 0}}', "every worker needs a cluster and its task"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "index 2) is not a place in the cluster (worker: 2)"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": -1}}', "is not a place in the cluster"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "is not a place in the cluster"),
    ],
)
def test_a_tf_config_that_cannot_form_a_cluster_says_why(capsys, monkeypatch, chorales, tmp_path, tf_config, words):
    """TensorFlow would train alone on an empty TF_CONFIG (each task a chief, writing the same run)
    and fail with a traceback on an address without a port."""
    monkeypatch.setenv("TF_CONFIG", tf_config)
    code, err = run_cli(capsys, "train", "--config", "basic_rnn", "--run-dir", str(tmp_path / "run"),
                        "--sequence-example-file", chorales, "--strategy", "multi-worker")
    assert code == 2 and words in err, err
    assert not (tmp_path / "run").exists()


def test_cpu_replicas_are_for_mirrored(capsys, chorales, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 0}}')
    code, err = run_cli(capsys, "train", "--config", "basic_rnn", "--run-dir", str(tmp_path / "run"),
                        "--sequence-example-file", chorales, "--strategy", "multi-worker", "--cpu-replicas", "2")
    assert code == 2 and "--cpu-replicas: for --strategy mirrored (multi-worker runs one replica per worker" in err


def test_the_musicvae_trains_in_float32(capsys, tmp_path):
    code, err = run_cli(capsys, "train", "--config", "cat-mel_2bar_small", "--run-dir", str(tmp_path / "run"),
                        "--sequence-example-file", str(tmp_path / "x.tfrecord"), "--mixed-precision")
    assert code == 2 and "--mixed-precision: for the RNN families (the MusicVAE trains in float32)" in err


def test_a_batch_smaller_than_the_replicas_is_refused(chorales, tmp_path):
    process = start(tmp_path / "run", chorales, "--strategy", "mirrored", "--cpu-replicas", "3", "--hparams", "batch_size=2")
    out, _ = process.communicate(timeout=240)
    assert process.returncode == 2 and "batch_size 2 is smaller than the 3 replicas it is split across" in out


@pytest.fixture(scope="module")
def vae_windows(tmp_path_factory) -> str:
    import tensorflow as tf

    from tests.training.test_vae import melody_sequence
    from training import cli

    folder = tmp_path_factory.mktemp("vae")
    with tf.io.TFRecordWriter(str(folder / "tunes.tfrecord")) as writer:
        for i in range(24):
            rng = np.random.default_rng(i)
            tune = melody_sequence(f"tune{i}", [int(p) for p in rng.choice([60, 62, 64, 65, 67, 69, 71, 72], 12)], bars=6)
            writer.write(tune.SerializeToString())
    assert cli.main(["dataset", "--config", "cat-mel_2bar_small", "--input", str(folder / "tunes.tfrecord"),
                     "--output-dir", str(folder), "--eval-ratio", "0"]) == 0
    return str(folder / "training_vae_melodies.tfrecord")


def test_the_musicvae_trains_mirrored_on_two_cpu_replicas(vae_windows, tmp_path):
    """Each replica draws its own codes, so the runs differ step by step; they learn alike."""
    argv = ["--config", "cat-mel_2bar_small", "--sequence-example-file", vae_windows, "--num-training-steps", "40",
            "--log-every", "1", "--hparams", "batch_size=16,z_size=8,enc_rnn_size=[32],dec_rnn_size=[32],transpose=0,"
            "learning_rate=0.01"]
    curves = {}
    for name, flags in (("one", []), ("two", ["--strategy", "mirrored", "--cpu-replicas", "2"])):
        run_dir = tmp_path / name
        out = finish(subprocess.Popen(
            [sys.executable, "-c", SEEDED_CLI, "train", "--run-dir", str(run_dir), *argv, *flags], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        ))
        curves[name] = np.array([v for _, v in read_scalars(os.path.join(run_dir, "train"))["reconstruction"]])
        assert os.path.exists(run_dir / "train" / "ckpt-40.index")
    assert "2 replicas (CPU:0, CPU:1), 16 sequences per step in all" in out
    one, two = curves["one"], curves["two"]
    assert len(one) == len(two) == 40
    assert one[-5:].mean() < 0.7 * one[:5].mean()  # it learns
    np.testing.assert_allclose(two[:5].mean(), one[:5].mean(), rtol=0.02)  # the same start
    np.testing.assert_allclose(two[-5:].mean(), one[-5:].mean(), rtol=0.1)  # and a like end
