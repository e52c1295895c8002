"""Training speed: steps per second and sequences per second of ``magenta-live-train train``.

    .venv/bin/python -m benchmarks.training                  # full: the section on stdout
    .venv/bin/python -m benchmarks.training --quick
    .venv/bin/python -m benchmarks.training --update benchmarks/RESULTS.md   # replace this section only

What is timed is the training step that ``training.train.train`` runs (``make_train_step``:
forward, masked cross-entropy, gradients, global-norm clipping, one Adam update), fed by the
same ``tf.data`` pipeline (``make_dataset``: TFRecord of SequenceExamples, shuffle, padded
batches, prefetch), at Magenta's default sizes and batch size for each configuration. Each
step is timed on its own (wall clock, ``time.perf_counter``) after warmup steps that include
tracing. The data are random sequences of a fixed length (the encoding's input width, one-hot
inputs, random labels): speed depends on shapes, not on content.

``benchmarks.run`` calls ``run(quick)``, which measures in a child process so TensorFlow gets
every core (the runner pins itself to one and limits BLAS threads for the engine figures).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from benchmarks import update_report

HEADING = "## Training speed"
FULL = {"configs": ("basic_rnn", "lookback_rnn", "attention_rnn"), "length": 128, "steps": 12, "warmup": 2}
QUICK = {"configs": ("basic_rnn",), "length": 32, "steps": 3, "warmup": 1}


def _random_records(path: str, config_id: str, count: int, length: int, seed: int = 0) -> int:
    """Write ``count`` random SequenceExamples of ``length`` steps; return the input width."""
    import numpy as np
    import tensorflow as tf

    from live.models.configs import get_config

    encoder = get_config(config_id).make_encoder()
    rng = np.random.default_rng(seed)
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(count):
            inputs = np.zeros((length, encoder.input_size), np.float32)
            inputs[np.arange(length), rng.integers(encoder.input_size, size=length)] = 1.0
            example = tf.train.SequenceExample()
            lists = example.feature_lists.feature_list
            for row in inputs:
                lists["inputs"].feature.add().float_list.value.extend(row.tolist())
            for label in rng.integers(encoder.num_classes, size=length):
                lists["labels"].feature.add().int64_list.value.append(int(label))
            writer.write(example.SerializeToString())
    return encoder.input_size


def measure(config_id: str, length: int, steps: int, warmup: int, strategy: str = "default", cpu_replicas: int = 1,
            mixed_precision: bool = False) -> dict:
    """Time ``steps`` training steps of ``config_id`` at its default hparams on sequences of
    ``length`` steps, as ``train --strategy STRATEGY --cpu-replicas N [--mixed-precision]`` runs
    them; returns per-step seconds and the shapes. Call it in a fresh process (the strategy is
    made before TensorFlow starts)."""
    from training.train import make_strategy

    distribution = make_strategy(strategy, cpu_replicas)
    import keras
    import tensorflow as tf

    from live.models.configs import get_config
    from training.model import default_hparams, event_labels
    from training.train import Metrics, RunInfo, build, make_dataset, make_train_step

    hp = default_hparams(config_id)
    if mixed_precision:
        keras.config.set_dtype_policy("mixed_float16")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.tfrecord")
        width = _random_records(path, config_id, max(2 * hp.batch_size, 64), length)
        info = RunInfo(config_id, hp, width, get_config(config_id).make_encoder().num_classes)
        with distribution.scope():
            model, optimizer, step, _, _ = build(info, tmp, mixed_precision)
        dataset = distribution.experimental_distribute_dataset(make_dataset([path], width, width, hp.batch_size, training=True))
        metrics = Metrics(*event_labels(get_config(config_id)))
        train_step = make_train_step(model, optimizer, step, metrics, hp, distribution, dataset.element_spec)
        batches = iter(dataset)
        t0 = time.perf_counter()
        for _ in range(warmup):
            float(train_step(*next(batches))["ce"])
        warm_s = time.perf_counter() - t0
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            float(train_step(*next(batches))["ce"])  # float(): wait for the step to finish
            times.append(time.perf_counter() - t)
    return {
        "config": config_id,
        "layers": hp.rnn_layer_sizes,
        "attn": hp.attn_length,
        "batch": hp.batch_size,
        "length": length,
        "times": times,
        "warmup_s": warm_s,
        "threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
        "strategy": strategy,
        "replicas": distribution.num_replicas_in_sync,
        "mixed_precision": mixed_precision,
    }


# The strategy comparison: one configuration, one child process per row.
STRATEGY_ROWS = (
    ("default", 1, False),
    ("mirrored", 2, False),
    ("default", 1, True),
)


def _median_p99(times: list[float]) -> tuple[float, float]:
    import numpy as np

    return float(np.median(times)), float(np.percentile(times, 99))


def render(results: list[dict], settings: dict, elapsed: float) -> str:
    lines = [HEADING, ""]
    lines.append(
        f"`python -m benchmarks.training{' --quick' if settings is QUICK else ''}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {elapsed:.0f} s"
        f"{' (quick run: few steps, rough numbers)' if settings is QUICK else ''}. "
        "One training step of `magenta-live-train train` (forward, masked cross-entropy, gradients, "
        "global-norm clipping, Adam) fed by its tf.data pipeline, at Magenta's default sizes and batch size, "
        f"on random sequences of {settings['length']} steps; {settings['steps']} steps timed one by one after "
        f"{settings['warmup']} warmup steps (tracing included in warmup). TensorFlow on every core "
        f"({os.cpu_count()}), load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} at the end: "
        "the machine is shared, so other jobs slow some steps."
    )
    lines += [
        "",
        "| config | layers | attn | batch | steps per sequence | median s per step | p99 s per step | steps/s | sequences/s | time steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        med, p99 = _median_p99(r["times"])
        lines.append(
            f"| {r['config']} | {'x'.join(map(str, r['layers']))} | {r['attn'] or '-'} | {r['batch']} | {r['length']} "
            f"| {med:.3f} | {p99:.3f} | {1 / med:.2f} | {r['batch'] / med:.1f} "
            f"| {r['batch'] * r['length'] / med:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def section(quick: bool) -> str:
    """Measure in this process and return the Markdown section."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    settings = QUICK if quick else FULL
    t0 = time.perf_counter()
    results = []
    for config_id in settings["configs"]:
        print(f"[benchmarks] training: {config_id}", file=sys.stderr, flush=True)
        results.append(measure(config_id, settings["length"], settings["steps"], settings["warmup"]))
    rows = []
    for strategy, replicas, mixed in STRATEGY_ROWS:
        print(f"[benchmarks] training: --strategy {strategy}, {replicas} replica{'s' if replicas > 1 else ''}{', mixed precision' if mixed else ''}",
              file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", "benchmarks.training", "--row", f"{strategy},{replicas},{int(mixed)}"]
        cmd += ["--quick"] if quick else []
        proc = subprocess.run(cmd, cwd=pathlib.Path(__file__).resolve().parents[1], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"--strategy {strategy} row failed: {proc.stderr.strip().splitlines()[-1:]}")
        rows.append(json.loads(proc.stdout))
    return render(results, settings, time.perf_counter() - t0) + render_strategies(rows)


def render_strategies(rows: list[dict]) -> str:
    """The one-vs-two-replicas table."""
    first = rows[0]
    lines = [
        "",
        f"Strategies, {first['config']} at the same sizes: each row a fresh process (`train --strategy ... "
        "--cpu-replicas N [--mixed-precision]`); the batch is the global batch, split across the replicas. "
        f"On this {os.cpu_count()}-core machine both CPU replicas share the same cores, so two replicas show the "
        "strategy's cost, not a speed-up; float16 on a CPU is slower than float32 (it is for GPUs).",
        "",
        "| strategy | replicas | precision | batch | median s per step | p99 s per step | sequences/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        med, p99 = _median_p99(r["times"])
        lines.append(
            f"| {r['strategy']} | {r['replicas']} | {'mixed float16' if r['mixed_precision'] else 'float32'} | {r['batch']} "
            f"| {med:.3f} | {p99:.3f} | {r['batch'] / med:.1f} |"
        )
    return "\n".join(lines) + "\n"


def run(quick: bool) -> str:
    """The section, measured in a child process with every CPU and default thread settings."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS") and k != "VECLIB_MAXIMUM_THREADS"}
    root = pathlib.Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-c", "import os, sys; os.sched_setaffinity(0, range(os.cpu_count())) "
           "if hasattr(os, 'sched_setaffinity') else None; from benchmarks.training import main; sys.exit(main())"]
    if quick:
        cmd.append("--quick")
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return f"{HEADING}\n\nFailed: {tail[0]}\n"
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps of one configuration")
    parser.add_argument("--update", metavar="RESULTS_MD", help="replace (or add) this section in a report file")
    parser.add_argument("--row", metavar="STRATEGY,REPLICAS,MIXED", help="measure one strategy row; print it as JSON")
    args = parser.parse_args(argv)
    if args.row:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        strategy, replicas, mixed = args.row.split(",")
        settings = QUICK if args.quick else FULL
        print(json.dumps(measure(settings["configs"][0], settings["length"], settings["steps"], settings["warmup"],
                                 strategy, int(replicas), mixed == "1")))
        return 0
    text = section(args.quick)
    if args.update:
        update_report(args.update, HEADING, text)
        print(f"[benchmarks] updated {args.update}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
