"""What every recipe does: raw data -> NoteSequences -> SequenceExamples -> trained, evaluated,
exported model in ``live/models/bundled/NAME.npz``, with a report of the numbers.

Work files go under ``build/recipes/`` (ignored by git): converted corpora are shared between
recipes in ``build/recipes/data/`` and reused when present (``--fresh`` redoes them). Each step
runs the command-line tool in a subprocess at ``nice 10`` so the machine stays usable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build" / "recipes"
DATA = BUILD / "data"
BUNDLED = REPO / "live" / "models" / "bundled"


def music21_corpus() -> Path:
    """The folder of music21's bundled corpus (Bach chorales, folk collections, ...)."""
    import music21

    return Path(music21.__file__).resolve().parent / "corpus"


def sh(args: list[str], log: Path | None = None) -> float:
    """Run ``args`` at nice 10, echoing its output (and appending it to ``log``); seconds taken."""
    cmd = ["nice", "-n", "10", *map(str, args)]
    print("+ " + " ".join(cmd), flush=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    start = time.perf_counter()
    with (
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO, env=env, text=True) as proc,
        open(log if log else os.devnull, "a") as out,
    ):
        for line in proc.stdout:
            sys.stdout.write(line)
            out.write(line)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"recipe step failed (exit {proc.returncode}): {' '.join(cmd)}")
    return seconds


def tool(*args: str) -> list[str]:
    """A ``magenta-live-train`` command line run with this Python."""
    return [sys.executable, "-m", "training.cli", *args]


def convert(name: str, input_dir: Path, fresh: bool = False) -> Path:
    """``DATA/name.tfrecord`` from ``input_dir`` (recursive), converted once and then reused."""
    DATA.mkdir(parents=True, exist_ok=True)
    out = DATA / f"{name}.tfrecord"
    if fresh or not out.exists():
        sh(tool("convert", "--input-dir", str(input_dir), "--recursive", "--output", str(out), "--quiet"), DATA / f"{name}.log")
    return out


def link_dir(name: str, sources: dict[str, Path]) -> Path:
    """A folder ``DATA/raw/name`` of symlinks to ``sources`` (link name -> folder), for convert."""
    d = DATA / "raw" / name
    d.mkdir(parents=True, exist_ok=True)
    for link, target in sources.items():
        p = d / link
        if p.is_symlink() or p.exists():
            p.unlink()
        p.symlink_to(target)
    return d


@dataclass
class Recipe:
    """One bundled model: its name, configuration, data and training budget."""

    name: str
    config: str
    trained_on: str
    hparams: str
    steps: int
    eval_ratio: float = 0.1
    limit: int | None = None
    dataset_args: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    float16: bool = False  # export the weights at half precision (the engine computes in float32)

    def build(self, sequences: Path, fresh: bool = False, steps: int | None = None) -> dict:
        """dataset -> baseline -> train -> eval -> export; returns (and writes) the report."""
        from live.models.configs import get_config
        from training.dataset import OUTPUT_NAMES

        work = BUILD / self.name
        work.mkdir(parents=True, exist_ok=True)
        log = work / "log.txt"
        family = get_config(self.config).family
        ds = work / "dataset"
        train_file = ds / f"training_{OUTPUT_NAMES[family]}.tfrecord"
        eval_file = ds / f"eval_{OUTPUT_NAMES[family]}.tfrecord"
        report: dict = {"name": self.name, "config": self.config, "trained_on": self.trained_on, "notes": self.notes,
                        "dataset_args": self.dataset_args}
        if fresh or not train_file.exists():
            args = ["dataset", "--config", self.config, "--input", str(sequences), "--output-dir", str(ds),
                    "--eval-ratio", str(self.eval_ratio), "--quiet"]
            if self.limit:
                args += ["--limit", str(self.limit)]
            args += self.dataset_args
            sh(tool(*args), work / "dataset.txt")
        report["dataset_summary"] = (work / "dataset.txt").read_text().strip().splitlines()[-40:] if (work / "dataset.txt").exists() else []
        if fresh or not (work / "baseline.json").exists():
            sh([sys.executable, "-m", "training.baseline", "--train", train_file, "--eval", eval_file,
                "--config", self.config, "--json", work / "baseline.json"], log)
        report["baseline"] = json.loads((work / "baseline.json").read_text())
        run_dir = work / "run"
        if fresh and run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        total = steps or self.steps
        previous = json.loads((work / "report.json").read_text()) if (work / "report.json").exists() and not fresh else {}
        seconds = sh(tool("train", "--config", self.config, "--run-dir", str(run_dir),
                                          "--sequence-example-file", str(train_file), "--hparams", self.hparams,
                                          "--num-training-steps", str(total), "--checkpoint-every", "200",
                                          "--log-every", "100"), log)
        # A rerun with more steps resumes the run: wall time adds up over the sessions.
        report["train_sessions"] = previous.get("train_sessions", []) + [{"to_step": total, "seconds": round(seconds, 1)}]
        report["train_seconds"] = sum(x["seconds"] for x in report["train_sessions"])
        sh(tool("train", "--eval", "--run-dir", str(run_dir), "--sequence-example-file", str(eval_file),
                "--metrics-json", str(work / "eval.json")), log)
        report["eval"] = json.loads((work / "eval.json").read_text())
        report["hparams"] = self.hparams
        report["steps"] = total
        report["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
        report["date"] = time.strftime("%Y-%m-%d")
        BUNDLED.mkdir(parents=True, exist_ok=True)
        out = BUNDLED / f"{self.name}.npz"
        export = ["export", "--run-dir", str(run_dir), "--output", str(out), "--trained-on", self.trained_on]
        sh(tool(*export, *(["--float16"] if self.float16 else [])), log)
        report["size_bytes"] = out.stat().st_size
        (work / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(json.dumps({k: report[k] for k in ("name", "baseline", "eval", "train_seconds", "size_bytes")}, indent=2))
        return report


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--fresh", action="store_true", help="redo conversion and dataset even if their files exist")
    p.add_argument("--steps", type=int, help="override the number of training steps")
    return p.parse_args()
