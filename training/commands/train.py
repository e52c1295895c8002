"""``magenta-live-train train``'s arguments (the work: ``training.train``)."""

from __future__ import annotations

import argparse
import json
import os

from live.files import atomic_write, check_writable
from live.models.configs import get_config
from live.models.vae import VAE_CONFIGS
from live.settings import Number
from training.errors import TrainingError

VAE_RUN_FILE = "vae_run.json"  # training.vae.RUN_FILE: a MusicVAE's run directory
STEPS = Number("--num-training-steps", 1, 10**9, integer=True, meaning="the global step to train to")
STRATEGIES = ("default", "mirrored", "multi-worker")
"""``--strategy``'s choices (training.train.make_strategy makes them)."""
CPU_REPLICAS = Number("--cpu-replicas", 1, 64, integer=True, meaning="logical CPU devices")
EVERY = {name: Number(f"--{name}", 1, 10**9, integer=True, meaning="steps") for name in ("summary-every", "checkpoint-every", "log-every")}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train`` with the ``magenta-live-train`` command line."""
    p = subparsers.add_parser(
        "train",
        help="train a configuration's network on SequenceExamples (or evaluate it with --eval)",
        description="Train (or with --eval, evaluate) a network; checkpoints and TensorBoard summaries under RUN_DIR.",
    )
    p.add_argument("--config", help="configuration id, e.g. attention_rnn (optional when RUN_DIR exists)")
    p.add_argument("--run-dir", required=True, help="directory for run.json, train/ checkpoints and summaries, eval/")
    p.add_argument(
        "--sequence-example-file", required=True, help="TFRecord of SequenceExamples (a path, a glob, or several with commas)"
    )
    p.add_argument("--hparams", default="", help='overrides, e.g. "batch_size=64,rnn_layer_sizes=[64,64]"')
    p.add_argument("--num-training-steps", type=STEPS.argtype, default=20000, help="train until this global step (default 20000)")
    p.add_argument("--eval", action="store_true", help="evaluate the latest checkpoint into RUN_DIR/eval instead")
    p.add_argument("--metrics-json", help="with --eval: also write the metrics to this JSON file")
    p.add_argument("--summary-every", type=EVERY["summary-every"].argtype, default=10, help="steps between TensorBoard summaries (default 10)")
    p.add_argument("--checkpoint-every", type=EVERY["checkpoint-every"].argtype, default=100, help="steps between checkpoints (default 100)")
    p.add_argument("--log-every", type=EVERY["log-every"].argtype, default=10, help="steps between progress lines (default 10)")
    p.add_argument(
        "--strategy", choices=STRATEGIES, default="default",
        help="default: one device; mirrored: every GPU of this machine, the batch split between them; "
        "multi-worker: several machines as TF_CONFIG describes them (see docs/TRAINING.md)",
    )
    p.add_argument("--cpu-replicas", type=CPU_REPLICAS.argtype, default=1,
                   help="with mirrored on a machine without GPUs: split the CPU into N replicas "
                   "(to try the strategy; not faster)")
    p.add_argument("--mixed-precision", action="store_true",
                   help="float16 compute with float32 weights (fast on GPUs with tensor cores); exports stay float32")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``train`` (or ``--eval``)."""
    vae = args.config in VAE_CONFIGS or (args.config is None and os.path.exists(os.path.join(args.run_dir, VAE_RUN_FILE)))
    if args.config is not None and not vae:
        get_config(args.config)  # an unknown id fails before TensorFlow loads
    if args.metrics_json:
        check_writable(args.metrics_json, "--metrics-json")
    distributed = [flag for flag, used in (("--strategy " + args.strategy, args.strategy != "default"),
                                           ("--cpu-replicas", args.cpu_replicas > 1),
                                           ("--mixed-precision", args.mixed_precision)) if used]
    if distributed and args.eval:
        raise TrainingError(f"{', '.join(distributed)}: for training (--eval runs on one device)")
    if vae and args.mixed_precision:
        raise TrainingError("--mixed-precision: for the RNN families (the MusicVAE trains in float32)")
    if vae:
        from training.vae import evaluate_vae, train_vae  # TensorFlow loads here

        if args.eval:
            result = evaluate_vae(args.run_dir, args.sequence_example_file)
            print(json.dumps(result, indent=2, sort_keys=True))
            if args.metrics_json:
                atomic_write(args.metrics_json, json.dumps(result, indent=2, sort_keys=True) + "\n")
        else:
            train_vae(args.run_dir, args.sequence_example_file, args.hparams, args.num_training_steps,
                      checkpoint_every=args.checkpoint_every, log_every=args.log_every, strategy=args.strategy,
                      cpu_replicas=args.cpu_replicas)
        return 0
    from training.train import evaluate, train  # TensorFlow loads here

    if args.eval:
        result = evaluate(args.run_dir, args.config, args.sequence_example_file, args.hparams)
        if args.metrics_json:
            atomic_write(args.metrics_json, json.dumps(result, indent=2, sort_keys=True) + "\n")
    else:
        train(
            args.run_dir, args.config, args.sequence_example_file, args.hparams, args.num_training_steps,
            summary_every=args.summary_every, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
            strategy=args.strategy, cpu_replicas=args.cpu_replicas, mixed_precision=args.mixed_precision,
        )
    return 0
