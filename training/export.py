"""``magenta-live-train export``: a training run's latest checkpoint -> the live model file.

The network's variables already have the model file's canonical shapes (``training.model``),
so export restores the checkpoint into a fresh network and copies each weight under its name.
The model file's ``source`` records where it came from: ``trained_on`` (free text, e.g. the
data set and split; ``--trained-on``), ``steps`` (the checkpoint's global step), ``hparams``,
``checkpoint`` and ``tool``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from training.errors import TrainingError


def export(run_dir: str, output: str, trained_on: str = "", extra_source: dict[str, Any] | None = None, float16: bool = False) -> str:
    """Write the live model file of ``run_dir``'s latest checkpoint to ``output``; return its path.

    Raises TrainingError when ``run_dir`` is not a run or has no checkpoint, and
    CheckpointMismatchError when the checkpoint does not fit the run's configuration.
    """
    from live.models import save
    from training.train import build, read_run_info, restore

    info = read_run_info(run_dir)
    if info is None:
        raise TrainingError(f"{run_dir} is not a training run directory (no run.json): train first")
    model, _, step, checkpoint, manager = build(info, run_dir)
    path = restore(run_dir, model, checkpoint, manager, require=True, weights_only=True)
    source: dict[str, Any] = {
        "tool": "magenta-live-train",
        "trained_on": trained_on,
        "steps": int(step.numpy()),
        "hparams": info.hparams.to_dict(),
        "checkpoint": os.path.basename(path),
        **(extra_source or {}),
    }
    live = model.to_live_model(info.config_id, source)
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise TrainingError(f"cannot write {output}: directory {directory} does not exist")
    save(live, output, float16)
    return output


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``export`` with the ``magenta-live-train`` command line."""
    p = subparsers.add_parser(
        "export",
        help="write a run's latest checkpoint as a live model file (.npz)",
        description="Write RUN_DIR's latest checkpoint as the model file magenta-live loads.",
    )
    p.add_argument("--run-dir", required=True, help="a directory trained by `magenta-live-train train`")
    p.add_argument("--output", required=True, help="model file to write, e.g. model.npz")
    p.add_argument("--trained-on", default="", help="what the model was trained on (recorded in the file)")
    p.add_argument("--float16", action="store_true",
                   help="store the weights at half precision: half the file; the engine computes in float32")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = export(args.run_dir, args.output, args.trained_on, float16=args.float16)
    from live.models.modelfile import load

    model = load(out)
    print(f"wrote {out}: {model!r}, step {model.config.source.get('steps')}, {os.path.getsize(out)} bytes")
    return 0
