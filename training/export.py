"""``magenta-live-train export``: a training run's latest checkpoint -> the live model file.

The network's variables already have the model file's canonical shapes (``training.model``),
so export restores the checkpoint into a fresh network and copies each weight under its name.
The model file's ``source`` records where it came from: ``trained_on`` (free text, e.g. the
data set and split; ``--trained-on``), ``steps`` (the checkpoint's global step), ``hparams``,
``checkpoint`` and ``tool``.
"""

from __future__ import annotations

import os
from typing import Any

from live.models import save
from training.errors import TrainingError
from training.train import build, read_run_info, restore


def export(run_dir: str, output: str, trained_on: str = "", extra_source: dict[str, Any] | None = None, float16: bool = False) -> str:
    """Write the live model file of ``run_dir``'s latest checkpoint to ``output``; return its path.

    Raises TrainingError when ``run_dir`` is not a run or has no checkpoint, and
    CheckpointMismatchError when the checkpoint does not fit the run's configuration.
    """

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
