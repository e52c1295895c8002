"""The n-gram baseline: proper distributions, learns what it can, reads real SequenceExamples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from tests.corpus import bach_chorales
from training import baseline as baseline_mod
from training.baseline import NGram, baseline, read_labels
from training.dataset import make_dataset


def test_distributions_sum_to_one_and_cover_every_class():
    model = NGram(5, order=3).fit([[0, 1, 2, 3, 0, 1, 2, 3], [4, 4, 4]])
    for context in [(), (0,), (0, 1), (3, 0), (2, 2), (9, 9)]:
        p = model.distribution(context)
        assert p.shape == (5,)
        assert math.isclose(p.sum(), 1.0, rel_tol=1e-12)
        assert (p > 0).all()


def test_learns_a_deterministic_cycle():
    cycle = [0, 1, 2, 3] * 50
    result = NGram(4, order=3).fit([cycle]).evaluate([cycle])
    # After the first two labels the context fixes the next one.
    assert result.accuracy > 0.95
    assert result.nll_per_step < 0.2


def test_unigram_of_uniform_data_is_near_log_classes():
    rng = np.random.default_rng(0)
    train = [rng.integers(8, size=5000)]
    test = [rng.integers(8, size=2000)]
    result = NGram(8, order=1).fit(train).evaluate(test)
    assert abs(result.nll_per_step - math.log(8)) < 0.02


def test_rejects_labels_outside_the_classes():
    with pytest.raises(ValueError, match="outside"):
        NGram(3).fit([[0, 3]])


def test_on_a_real_dataset_beats_uniform(tmp_path):
    seqs = tmp_path / "chorales.tfrecord"
    with tf.io.TFRecordWriter(str(seqs)) as w:
        for s in bach_chorales(8):
            w.write(s.SerializeToString())
    make_dataset("attention_rnn", seqs, tmp_path, eval_ratio=0.3, seed=1, workers=1, progress=False)
    train = tmp_path / "training_melodies.tfrecord"
    evaluation = tmp_path / "eval_melodies.tfrecord"
    labels = read_labels(train)
    assert labels and all(x.dtype == np.int64 for x in labels)
    result = baseline(str(train), str(evaluation), num_classes=40, order=3)
    assert result.eval_steps == sum(len(x) for x in read_labels(evaluation)) > 0
    assert result.nll_per_step < math.log(40)
    assert 0.0 < result.accuracy < 1.0
    out = tmp_path / "b.json"
    code = baseline_mod.main(["--train", str(train), "--eval", str(evaluation), "--config", "attention_rnn",
                              "--json", str(out)])
    assert code == 0
    assert json.loads(out.read_text())["nll_per_step"] == pytest.approx(result.nll_per_step)


def test_bad_input_exits_2(tmp_path, capsys):
    code = baseline_mod.main(["--train", str(tmp_path / "no.tfrecord"), "--eval", str(tmp_path / "no.tfrecord")])
    assert code == 2
    assert "no such file" in capsys.readouterr().err
    code = baseline_mod.main(["--train", "x", "--eval", "y", "--config", "nope_rnn"])
    assert code == 2
    assert "unknown configuration" in capsys.readouterr().err
