"""An n-gram baseline over a dataset's labels, to put a trained model's numbers beside.

``python -m training.baseline --train training_melodies.tfrecord --eval eval_melodies.tfrecord``
fits an interpolated Witten-Bell n-gram (default: trigram) over the label sequences of the
training SequenceExamples and reports, on the evaluation examples, the mean negative
log-likelihood per label (nats; a label is one model step, i.e. one event) and the accuracy of
the most likely label, the same two numbers ``magenta-live-train train --eval`` reports for a
network. Each sequence is predicted from its first label on, with "start" padding as context.

Witten-Bell needs no tuning: a context seen ``c`` times followed by ``t`` distinct labels gives
the lower order a weight of ``t / (c + t)``; the lowest order is an add-one unigram, so every
class has a non-zero probability.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from live.files import atomic_write

START = -1  # context padding before a sequence's first label


def read_labels(path: str | os.PathLike) -> list[np.ndarray]:
    """The label sequence of every SequenceExample in a TFRecord file (only labels are parsed)."""
    import tensorflow as tf

    spec = {"labels": tf.io.FixedLenSequenceFeature([], tf.int64)}

    def parse(record):
        _, seq = tf.io.parse_single_sequence_example(record, sequence_features=spec)
        return seq["labels"]

    dataset = tf.data.TFRecordDataset(os.fspath(path)).map(parse)
    return [np.asarray(x) for x in dataset.as_numpy_iterator()]


class NGram:
    """Interpolated Witten-Bell n-gram over class indices 0..num_classes-1."""

    def __init__(self, num_classes: int, order: int = 3) -> None:
        if order < 1:
            raise ValueError(f"order must be at least 1, not {order}")
        self.num_classes = num_classes
        self.order = order
        # counts[k][context tuple of length k] -> Counter of next labels
        self.counts: list[dict[tuple, Counter]] = [defaultdict(Counter) for _ in range(order)]
        self._cache: dict[tuple, np.ndarray] = {}

    def fit(self, sequences: Iterable[Sequence[int]]) -> NGram:
        for seq in sequences:
            history = [START] * (self.order - 1)
            for label in seq:
                label = int(label)
                if not 0 <= label < self.num_classes:
                    raise ValueError(f"label {label} outside 0..{self.num_classes - 1}")
                for k in range(self.order):
                    context = tuple(history[len(history) - k :]) if k else ()
                    self.counts[k][context][label] += 1
                history.append(label)
        self._cache.clear()
        return self

    def distribution(self, context: tuple) -> np.ndarray:
        """P(next label | the last order-1 labels in ``context``), float64 [num_classes]."""
        context = tuple(context[len(context) - (self.order - 1) :]) if self.order > 1 else ()
        cached = self._cache.get(context)
        if cached is not None:
            return cached
        unigram = self.counts[0][()]
        total = sum(unigram.values())
        p = np.ones(self.num_classes)
        for label, n in unigram.items():
            p[label] += n
        p /= total + self.num_classes
        for k in range(1, self.order):
            followers = self.counts[k].get(context[len(context) - k :])
            if not followers:
                continue
            c, t = sum(followers.values()), len(followers)
            higher = np.zeros(self.num_classes)
            for label, n in followers.items():
                higher[label] = n
            p = (higher + t * p) / (c + t)
        self._cache[context] = p
        return p

    def evaluate(self, sequences: Iterable[Sequence[int]]) -> BaselineResult:
        nll, correct, steps = 0.0, 0, 0
        for seq in sequences:
            history = [START] * (self.order - 1)
            for label in seq:
                label = int(label)
                p = self.distribution(tuple(history))
                nll -= math.log(p[label])
                correct += int(np.argmax(p) == label)
                steps += 1
                history.append(label)
        if steps == 0:
            raise ValueError("no labels to evaluate")
        return BaselineResult(self.order, self.num_classes, steps, nll / steps, correct / steps)


@dataclass
class BaselineResult:
    order: int
    num_classes: int
    eval_steps: int
    nll_per_step: float
    accuracy: float

    def text(self) -> str:
        return (
            f"{self.order}-gram baseline on {self.eval_steps} eval steps: NLL {self.nll_per_step:.4f} nats/step "
            f"(perplexity {math.exp(self.nll_per_step):.2f}), accuracy {self.accuracy:.4f}"
        )


def baseline(train_path: str, eval_path: str, num_classes: int | None = None, order: int = 3) -> BaselineResult:
    """Fit on ``train_path``'s labels, score ``eval_path``'s. ``num_classes`` defaults to the
    largest label seen plus one (give the config's class count for a fair smoothing)."""
    train = read_labels(train_path)
    evaluation = read_labels(eval_path)
    if not train:
        raise ValueError(f"{train_path}: no SequenceExamples")
    if not evaluation:
        raise ValueError(f"{eval_path}: no SequenceExamples")
    if num_classes is None:
        num_classes = 1 + max(int(s.max()) for s in train + evaluation if len(s))
    return NGram(num_classes, order).fit(train).evaluate(evaluation)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.baseline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, help="training SequenceExamples (TFRecord)")
    parser.add_argument("--eval", required=True, help="evaluation SequenceExamples (TFRecord)")
    parser.add_argument("--config", help="configuration id: its class count is used for smoothing")
    parser.add_argument("--order", type=int, default=3, help="n of the n-gram (default: %(default)s)")
    parser.add_argument("--json", help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    num_classes = None
    if args.config:
        from live.errors import UnknownConfigError
        from live.models.configs import get_config

        try:
            num_classes = get_config(args.config).make_encoder().num_classes
        except UnknownConfigError as err:
            print(f"baseline: {err}", file=sys.stderr)
            return 2
    for path in (args.train, args.eval):
        if not os.path.exists(path):
            print(f"baseline: no such file: {path}", file=sys.stderr)
            return 2
    try:
        result = baseline(args.train, args.eval, num_classes, args.order)
    except ValueError as err:
        print(f"baseline: {err}", file=sys.stderr)
        return 2
    print(result.text())
    if args.json:
        atomic_write(args.json, json.dumps(asdict(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
