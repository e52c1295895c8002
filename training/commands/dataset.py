"""``magenta-live-train dataset``'s arguments (the work: ``training.dataset``)."""

from __future__ import annotations

import argparse
import os

from live.errors import OutputPathError
from live.models.configs import get_config
from live.models.vae import VAE_CONFIGS
from training.errors import DataError
from live.settings import Number
from training.commands import WORKERS, add_runner_option, beam_runner, workers

EVAL_RATIO = Number("--eval-ratio", 0.0, 0.99, meaning="the share of pieces kept for evaluation")
SEED = Number("--seed", 0, 2**32 - 1, integer=True)
LIMIT = Number("--limit", 1, 10**8, integer=True)
CHUNK_STEPS = Number("--chunk-steps", 1, 100_000, integer=True)
TRANSPOSITION = Number("--transpositions", -24, 24, integer=True, meaning="semitones")
STRETCH = Number("--stretch-factors", 0.5, 2.0)


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(int(TRANSPOSITION.argtype(x)) for x in text.split(","))


def _float_list(text: str) -> tuple[float, ...]:
    return tuple(float(STRETCH.argtype(x)) for x in text.split(","))


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``dataset`` on a ``magenta-live-train`` subparsers object."""
    p = subparsers.add_parser("dataset", help="NoteSequences into training and eval SequenceExamples for a config")
    p.add_argument("--config", required=True, help="configuration id, e.g. attention_rnn, polyphony, drum_kit")
    p.add_argument("--input", required=True, help="TFRecord of NoteSequences (from `convert`)")
    p.add_argument("--output-dir", required=True, help="directory for training_*.tfrecord and eval_*.tfrecord")
    p.add_argument("--eval-ratio", type=EVAL_RATIO.argtype, default=0.1, help="share of pieces for evaluation (default: %(default)s)")
    p.add_argument("--seed", type=SEED.argtype, default=0, help="seed of the train/eval split (default: %(default)s)")
    p.add_argument("--limit", type=LIMIT.argtype, default=None, help="use only the first N NoteSequences")
    p.add_argument("--workers", type=WORKERS.argtype, default=2, help="processes (default: %(default)s)")
    p.add_argument("--transpositions", type=_int_list, help="semitones, e.g. -2,0,2: replaces the family's transpositions")
    p.add_argument("--stretch-factors", type=_float_list, help="performance: time stretches of training pieces, e.g. 1.0")
    p.add_argument(
        "--chunk-steps", type=CHUNK_STEPS.argtype,
        help="cut each encoded sequence into examples of at most this many steps (inputs keep their full history; "
        "cheaper training steps on long polyphony and performance sequences)",
    )
    p.add_argument(
        "--one-time-signature", action="store_true",
        help="keep each piece's first time signature instead of cutting it at every change "
        "(for scores that mark short bars as meter changes, like music21's MusicXML chorales)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_runner_option(p)
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``dataset``: the summary, then the folder written."""
    vae = args.config in VAE_CONFIGS
    if not vae:
        get_config(args.config)  # an unknown id fails before TensorFlow loads
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise OutputPathError(f"--output-dir: {args.output_dir} is a file, not a folder")
    if args.runner == "beam":
        if vae:
            raise DataError(f"--runner beam: not for {args.config} (its dataset is made with --runner local only)")
        if args.limit is not None:
            raise DataError("--limit: not with --runner beam (a Beam pipeline reads its input in no fixed order, "
                            "so it has no first N NoteSequences); leave it out, or use --runner local")
        summary = beam_runner().make_dataset_beam(
            args.config, args.input, args.output_dir, args.eval_ratio, args.seed, args.transpositions,
            args.stretch_factors, args.chunk_steps, args.one_time_signature, args.pipeline_args, workers(args.workers),
        )
    elif vae:
        unused = [flag for flag, value in (("--transpositions", args.transpositions), ("--stretch-factors", args.stretch_factors),
                                           ("--chunk-steps", args.chunk_steps)) if value]
        if unused:
            raise DataError(f"{', '.join(unused)}: not for {args.config} (its windows are two bars; "
                                       "training moves them by -5..+5 semitones: --hparams transpose=N)")
        from live.models.vae import VaeConfig
        from training.vae_data import make_vae_dataset  # TensorFlow loads here

        summary = make_vae_dataset(args.input, args.output_dir, VaeConfig(), args.eval_ratio, args.seed, args.limit)
    else:
        from training.dataset import make_dataset  # TensorFlow loads here

        summary = make_dataset(
            args.config, args.input, args.output_dir, args.eval_ratio, args.seed, args.limit, workers(args.workers),
            not args.quiet, args.transpositions, args.stretch_factors, args.chunk_steps, args.one_time_signature,
        )
    print(summary.text())
    print(f"wrote {args.output_dir}")
    return 0
