"""Training: every configuration trains, runs resume, eval leaves weights alone, summaries and
metrics are Magenta's, bad input gets a clear message and exit status 2."""

from __future__ import annotations

import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from live.models.configs import CONFIGS
from tests.training.train_data import encode, random_examples, write_examples
from training import cli
from training.errors import HParamsError
from training.model import HParams, default_hparams, parse_hparams
from training.train import (
    METRICS,
    Metrics,
    build,
    evaluate,
    read_run_info,
    read_scalars,
    restore,
    train,
)

quiet = lambda *_: None  # noqa: E731


def tiny_hparams(config_id: str) -> str:
    hp = default_hparams(config_id)
    attn = ",attn_length=3" if hp.attn_length else ""
    return f"batch_size=2,rnn_layer_sizes={[6] * len(hp.rnn_layer_sizes)}".replace(" ", "") + attn


@pytest.mark.parametrize("config_id", sorted(CONFIGS))
def test_every_configuration_trains(tmp_path, config_id):
    data = write_examples(tmp_path / "t.tfrecord", random_examples(config_id, count=3, length=8))
    result = train(str(tmp_path / "run"), config_id, data, tiny_hparams(config_id), num_training_steps=2, log=quiet)
    assert result.step == 2 and result.steps_run == 2
    assert np.isfinite(result.metrics["loss"])
    assert os.path.exists(tmp_path / "run" / "train" / "ckpt-2.index")
    assert read_run_info(str(tmp_path / "run")).config_id == config_id


def test_compact_performance_takes_magentas_index_inputs(tmp_path):
    """performance_with_dynamics_compact data as Magenta writes it: the class index, width 1."""
    examples = random_examples("performance_with_dynamics", count=3, length=10)
    compact = [(x.argmax(axis=1)[:, None].astype(np.float32), y) for x, y in examples]
    data = write_examples(tmp_path / "t.tfrecord", compact)
    run_dir = str(tmp_path / "run")
    train(run_dir, "performance_with_dynamics_compact", data, "batch_size=3,rnn_layer_sizes=[8]", 1, log=quiet)
    # The same data one-hot gives the same evaluation: the index was expanded, not misread.
    onehot = write_examples(tmp_path / "o.tfrecord", examples)
    assert evaluate(run_dir, None, data, log=quiet)["loss"] == pytest.approx(evaluate(run_dir, None, onehot, log=quiet)["loss"])


def _weights(run_dir):
    info = read_run_info(run_dir)
    model, optimizer, step, checkpoint, manager = build(info, run_dir)
    restore(run_dir, model, checkpoint, manager, require=True)
    return model.canonical_weights(), int(step.numpy()), optimizer


def test_resuming_continues_exactly_where_training_stopped(tmp_path):
    """2 + 2 steps give the weights of 4 steps: the optimizer's moments and the step count are
    restored. (Identical sequences and no dropout make the batches and updates deterministic.)"""
    x, y = encode("basic_rnn", [60, -2, 62, 64, -1, 65, -2, 67, 60, 62])
    data = write_examples(tmp_path / "t.tfrecord", [(x, y)] * 4)
    hp = "batch_size=2,rnn_layer_sizes=[8,8],dropout_keep_prob=1.0"
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    keras.utils.set_random_seed(0)
    train(straight, "basic_rnn", data, hp, 4, log=quiet)
    keras.utils.set_random_seed(0)
    train(split, "basic_rnn", data, hp, 2, log=quiet)
    lines = []
    result = train(split, None, data, "", 4, log=lines.append)
    assert result.steps_run == 2 and any("resuming" in line and "step 2" in line for line in lines)
    a, step_a, _ = _weights(straight)
    b, step_b, opt_b = _weights(split)
    assert step_a == step_b == 4 and int(opt_b.iterations.numpy()) == 4
    for name in a:
        np.testing.assert_allclose(b[name], a[name], atol=1e-6, err_msg=name)
    # Asking for a step already reached trains nothing.
    assert train(split, None, data, "", 3, log=quiet).steps_run == 0


def test_training_writes_magentas_summaries_and_eval_leaves_weights_alone(tmp_path):
    data = write_examples(tmp_path / "t.tfrecord", random_examples("lookback_rnn", count=6, length=16))
    run_dir = str(tmp_path / "run")
    train(run_dir, "lookback_rnn", data, "batch_size=3,rnn_layer_sizes=[8]", 4, summary_every=2, log=quiet)
    scalars = read_scalars(os.path.join(run_dir, "train"))
    assert set(METRICS) <= set(scalars)
    assert [s for s, _ in scalars["loss"]] == [2, 4]
    before, _, _ = _weights(run_dir)
    files = sorted(os.listdir(os.path.join(run_dir, "train")))
    result = evaluate(run_dir, None, data, log=quiet)
    assert result["step"] == 4 and result["sequences"] == 6
    after, _, _ = _weights(run_dir)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert sorted(os.listdir(os.path.join(run_dir, "train"))) == files  # no new checkpoint
    eval_scalars = read_scalars(os.path.join(run_dir, "eval"))
    assert eval_scalars["loss"] == [(4, pytest.approx(result["loss"]))]
    assert eval_scalars["metrics/perplexity"][0][1] == pytest.approx(np.exp(result["loss"]), rel=1e-5)


def test_metrics_count_only_valid_steps_and_split_events():
    """Magenta's accuracy, event and no-event accuracy, and per-step loss on a hand-made batch."""
    no_event = 1
    steps_per_class = np.array([1.0, 1.0, 3.0], np.float32)  # class 2 lasts three steps
    logits = np.log(
        np.array(
            [
                [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.9, 0.05, 0.05]],  # 4th step padding
                [[0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [0.3, 0.4, 0.3], [0.3, 0.3, 0.4]],
            ],
            np.float32,
        )
    )
    labels = np.array([[0, 1, 0, 2], [2, 1, 1, 0]], np.int64)
    lengths = np.array([3, 4], np.int32)
    sums = Metrics(no_event, steps_per_class).sums(tf.constant(logits), tf.constant(labels), tf.constant(lengths))
    m = Metrics.summarize({k: float(v) for k, v in sums.items()})
    valid = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3)]
    nll = [-logits[b, t, labels[b, t]] for b, t in valid]
    correct = [logits[b, t].argmax() == labels[b, t] for b, t in valid]
    events = [labels[b, t] != no_event for b, t in valid]
    assert m["loss"] == pytest.approx(np.mean(nll), rel=1e-6)
    assert m["metrics/accuracy"] == pytest.approx(np.mean(correct))
    assert m["metrics/event_accuracy"] == pytest.approx(np.mean([c for c, e in zip(correct, events) if e]))
    assert m["metrics/no_event_accuracy"] == pytest.approx(np.mean([c for c, e in zip(correct, events) if not e]))
    steps = sum(steps_per_class[labels[b, t]] for b, t in valid)
    assert m["metrics/loss_per_step"] == pytest.approx(np.sum(nll) / steps, rel=1e-6)


# --- hyperparameters ---------------------------------------------------------------------------


def test_default_hparams_are_magentas():
    assert default_hparams("attention_rnn") == HParams(128, [128, 128], 0.5, 40, 3.0, 0.001)
    assert default_hparams("basic_rnn") == HParams(128, [128, 128], 0.5, 0, 5.0, 0.001)
    assert default_hparams("basic_improv") == HParams(128, [64, 64], 0.5, 0, 5.0, 0.001)
    assert default_hparams("chord_pitches_improv").clip_norm == 3.0
    assert default_hparams("polyphony") == HParams(64, [256, 256, 256], 0.5, 0, 5.0, 0.001)
    assert default_hparams("drum_kit") == HParams(128, [256, 256, 256], 0.5, 32, 3.0, 0.001)
    assert default_hparams("performance_with_dynamics") == HParams(64, [512, 512, 512], 1.0, 0, 3.0, 0.001)


def test_parse_hparams():
    hp = parse_hparams("batch_size=64, rnn_layer_sizes=[64,64],learning_rate=1e-2,clip_norm=2", default_hparams("basic_rnn"))
    assert (hp.batch_size, hp.rnn_layer_sizes, hp.learning_rate, hp.clip_norm) == (64, [64, 64], 0.01, 2.0)
    assert parse_hparams("rnn_layer_sizes=32", hp).rnn_layer_sizes == [32]
    assert parse_hparams("", hp) == hp


@pytest.mark.parametrize(
    "text, words",
    [
        ("batch_size=sixty", "batch_size"),
        ("batch_size=6.5", "integer"),
        ("rnn_layer_sizes=[64,", "rnn_layer_sizes"),
        ("rnn_layer_sizes=[]", "1 to 16 integers"),
        ("rnn_layer_sizes=[64,-1]", "integers from 1 to 8192"),
        ("num_layers=3", "unknown hparam 'num_layers'"),
        ("batch_size", "not name=value"),
        ("dropout_keep_prob=0", "dropout_keep_prob"),
        ("learning_rate=True", "number"),
    ],
)
def test_bad_hparams_say_what_is_wrong(text, words):
    with pytest.raises(HParamsError, match=words.replace("[", r"\[")):
        parse_hparams(text, default_hparams("basic_rnn"))


# --- command line and bad input ---------------------------------------------------------------


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture()
def melody_data(tmp_path):
    return write_examples(tmp_path / "melody.tfrecord", random_examples("basic_rnn", count=4, length=10))


def test_train_and_eval_from_the_command_line(tmp_path, capsys, melody_data):
    run_dir = str(tmp_path / "run")
    code, out = run_cli(
        capsys, "train", "--config", "basic_rnn", "--run-dir", run_dir, "--sequence-example-file", melody_data,
        "--hparams", "batch_size=2,rnn_layer_sizes=[8]", "--num-training-steps", "3", "--log-every", "1",
    )
    assert code == 0, out
    assert "step 3: loss" in out
    metrics = tmp_path / "m.json"
    code, out = run_cli(
        capsys, "train", "--run-dir", run_dir, "--sequence-example-file", melody_data, "--eval", "--metrics-json", str(metrics)
    )
    assert code == 0, out
    assert json.loads(metrics.read_text())["step"] == 3


def test_help_lists_the_subcommands(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "export" in out


def expect_error(capsys, words: str, *argv: str) -> str:
    code, out = run_cli(capsys, *argv)
    assert code == 2, out
    assert "Traceback" not in out
    assert "error:" in out and words in out, out
    return out


def test_unknown_configuration(tmp_path, capsys, melody_data):
    expect_error(
        capsys, "unknown configuration 'melody_rnn'",
        "train", "--config", "melody_rnn", "--run-dir", str(tmp_path / "r"), "--sequence-example-file", melody_data,
    )
    assert not (tmp_path / "r").exists()


def test_hparams_that_dont_parse(tmp_path, capsys, melody_data):
    expect_error(
        capsys, "rnn_layer_sizes",
        "train", "--config", "basic_rnn", "--run-dir", str(tmp_path / "r"), "--sequence-example-file", melody_data,
        "--hparams", "rnn_layer_sizes=[64,",
    )


def test_run_dir_with_a_checkpoint_of_another_shape(tmp_path, capsys, melody_data):
    run_dir = str(tmp_path / "run")
    train(run_dir, "basic_rnn", melody_data, "batch_size=2,rnn_layer_sizes=[8]", 1, log=quiet)
    args = ["train", "--run-dir", run_dir, "--sequence-example-file", melody_data, "--num-training-steps", "2"]
    expect_error(capsys, "rnn_layer_sizes=[8]", *args, "--hparams", "rnn_layer_sizes=[16]")
    expect_error(capsys, "trains basic_rnn, not lookback_rnn", *args, "--config", "lookback_rnn")
    # Without run.json (copied checkpoints, say) the checkpoint itself is checked.
    os.remove(os.path.join(run_dir, "run.json"))
    out = expect_error(capsys, "does not fit", *args, "--config", "basic_rnn", "--hparams", "rnn_layer_sizes=[16]")
    assert "lstm_0/kernel is (46, 32), the network needs (54, 64)" in out
    expect_error(capsys, "does not fit", *args, "--config", "basic_rnn", "--hparams", "rnn_layer_sizes=[8],attn_length=4")


def test_missing_empty_and_foreign_sequence_example_files(tmp_path, capsys):
    run = ["train", "--config", "basic_rnn", "--run-dir", str(tmp_path / "r"), "--sequence-example-file"]
    expect_error(capsys, "does not exist", *run, str(tmp_path / "nope.tfrecord"))
    empty = tmp_path / "empty.tfrecord"
    empty.write_bytes(b"")
    expect_error(capsys, "empty", *run, str(empty))
    text = tmp_path / "notes.txt"
    text.write_text("not a tfrecord at all\n" * 10)
    expect_error(capsys, "not a TFRecord", *run, str(text))
    drums = write_examples(tmp_path / "drums.tfrecord", random_examples("drum_kit", count=2, length=6))
    expect_error(capsys, "width [518], but basic_rnn takes 38", *run, drums)
    with tf.io.TFRecordWriter(str(tmp_path / "other.tfrecord")) as w:
        w.write(tf.train.Example().SerializeToString())
    expect_error(capsys, "without 'inputs' and 'labels'", *run, str(tmp_path / "other.tfrecord"))


def test_labels_out_of_range(tmp_path, capsys):
    x, y = encode("basic_rnn", [60, 62, 64, 65])
    data = write_examples(tmp_path / "t.tfrecord", [(x, y + 100)])
    expect_error(
        capsys, "labels within 0..37",
        "train", "--config", "basic_rnn", "--run-dir", str(tmp_path / "r"), "--sequence-example-file", data,
        "--hparams", "batch_size=1,rnn_layer_sizes=[4]", "--num-training-steps", "1",
    )


def test_eval_before_training(tmp_path, capsys, melody_data):
    expect_error(
        capsys, "train first",
        "train", "--config", "basic_rnn", "--run-dir", str(tmp_path / "r"), "--sequence-example-file", melody_data, "--eval",
    )


def test_training_learns_a_repeated_melody(tmp_path):
    """A real chorale melody, trained on alone, becomes far more likely: gradients are right."""
    from tests.training.train_data import chorale_melodies

    x, y = encode("basic_rnn", chorale_melodies(1)[0])
    data = write_examples(tmp_path / "t.tfrecord", [(x, y)] * 4)
    run_dir = str(tmp_path / "run")
    hp = "batch_size=4,rnn_layer_sizes=[32],dropout_keep_prob=1.0,learning_rate=0.02"
    train(run_dir, "basic_rnn", data, hp, 1, log=quiet)
    before = evaluate(run_dir, None, data, log=quiet)
    train(run_dir, None, data, "", 200, log=quiet)
    after = evaluate(run_dir, None, data, log=quiet)
    assert after["loss"] < 0.5 * before["loss"]
    assert after["metrics/accuracy"] > before["metrics/accuracy"]
    assert after["metrics/event_accuracy"] > 0.15  # notes, not just "hold" (chance is about 1/36)


@pytest.mark.parametrize(
    "text, words",
    [
        ("batch_size=1000000000", "batch_size must be an integer from 1 to 4096"),  # once a segfault
        ("rnn_layer_sizes=[100000]", "rnn_layer_sizes must be 1 to 16 integers from 1 to 8192"),
        ("rnn_layer_sizes=[8]*17", "cannot parse"),
        ("attn_length=100000", "attn_length must be an integer from 0 to 1024"),
        ("learning_rate=2", "learning_rate must be in (0, 1]"),
        ("clip_norm=1e400", "clip_norm must be a finite number"),
    ],
)
def test_hparams_have_upper_bounds(text, words):
    with pytest.raises(HParamsError, match=re.escape(words)):
        parse_hparams(text, default_hparams("basic_rnn"))


def test_the_plain_name_of_beams_shards_trains(tmp_path):
    """`dataset --runner beam` writes NAME-00000-of-00002 ...: train takes NAME, and every shard."""
    from training.train import sequence_example_files

    name = str(tmp_path / "training_melodies.tfrecord")
    examples = random_examples("basic_rnn", 6, 10)
    shards = [write_examples(f"{name}-{i:05d}-of-00002", examples[i::2]) for i in range(2)]
    assert sequence_example_files(name) == shards
    assert sequence_example_files(f"{name}*") == shards  # a glob, as before
    result = train(str(tmp_path / "run"), "basic_rnn", name, "batch_size=2,rnn_layer_sizes=[8]", 3, log=quiet)
    assert result.step == 3
    os.remove(shards[1])
    with pytest.raises(Exception, match="1 of its 2 shards"):
        sequence_example_files(name)
