"""Rebuild the bundled MusicVAE (``cat-mel_2bar_small`` design) from music21's folk tunes.

``python -m training.recipes.vae [--steps N]``: the melody recipe's converted folk tunes
(``build/recipes/data/folk-all.tfrecord``, converted here if missing; 10% of tunes held out by
the same hash) -> two-bar melody windows -> MusicVAE -> ``live/models/bundled/vae.npz``
(float16 weights) with ``build/recipes/vae/report.json``. Magenta's design and loss (free
bits 0, beta up to 0.2), trained with each window moved by a random -5..+5 semitones; smaller
than Magenta's release for this 2-core machine (encoder 256 each way instead of 512, latent
code 128 instead of 256, batches of 64 instead of 512), and with the KL weight rising to
``max_beta`` within the run (``beta_rate`` 0.999: 0.19 at step 3000) instead of over Magenta's
hundreds of thousands of steps: with Magenta's 0.99999 it would still be 0.006 at step 3000,
the codes would carry hundreds of nats, and a code drawn from the prior (``--sample``, strays
1) would decode to noise. A rerun with more steps resumes.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

from training.recipes.common import BUILD, BUNDLED, convert, link_dir, music21_corpus, parse_args, sh, tool
from training.recipes.melody import FOLK

NAME = "vae"
CONFIG = "cat-mel_2bar_small"
HPARAMS = "batch_size=64,z_size=128,enc_rnn_size=[256],dec_rnn_size=[256,256],beta_rate=0.999"
STEPS = 3000
TRAINED_ON = ("music21 corpus folk tunes (O'Neill's 1850, Ryan's Mammoth, Aird's Airs, Nottingham sample, misc folk, "
              "Essen; ABC), two-bar windows; 10% of tunes held out")


def main() -> None:
    args = parse_args(__doc__)
    corpus = music21_corpus()
    sequences = convert("folk-all", link_dir("folk-all", {name: corpus / name for name in FOLK}), args.fresh)
    work = BUILD / NAME
    work.mkdir(parents=True, exist_ok=True)
    data, run = work / "dataset", work / "run"
    train_file, eval_file = data / "training_vae_melodies.tfrecord", data / "eval_vae_melodies.tfrecord"
    if args.fresh or not train_file.exists():
        sh(tool("dataset", "--config", CONFIG, "--input", str(sequences), "--output-dir", str(data), "--eval-ratio", "0.1"),
           work / "dataset.txt")
    steps = args.steps or STEPS
    previous = json.loads((work / "report.json").read_text()) if (work / "report.json").exists() and not args.fresh else {}
    seconds = sh(tool("train", "--config", CONFIG, "--run-dir", str(run), "--sequence-example-file", str(train_file),
                      "--hparams", HPARAMS, "--num-training-steps", str(steps), "--checkpoint-every", "250",
                      "--log-every", "50"), work / "log.txt")
    sh(tool("train", "--eval", "--run-dir", str(run), "--sequence-example-file", str(eval_file),
            "--metrics-json", str(work / "eval.json")), work / "log.txt")
    out = BUNDLED / f"{NAME}.npz"
    sh(tool("export", "--run-dir", str(run), "--output", str(out), "--trained-on", TRAINED_ON, "--float16"), work / "log.txt")
    sessions = previous.get("train_sessions", []) + [{"to_step": steps, "seconds": round(seconds, 1)}]
    report = {
        "name": NAME, "config": CONFIG, "hparams": HPARAMS, "steps": steps, "trained_on": TRAINED_ON,
        "dataset_summary": (work / "dataset.txt").read_text().strip().splitlines()[-12:] if (work / "dataset.txt").exists() else [],
        "eval": json.loads((work / "eval.json").read_text()), "train_sessions": sessions,
        "train_seconds": sum(s["seconds"] for s in sessions), "size_bytes": os.path.getsize(out),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}", "date": time.strftime("%Y-%m-%d"),
    }
    (work / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(json.dumps({k: report[k] for k in ("eval", "train_seconds", "size_bytes")}, indent=2), file=sys.stdout)


if __name__ == "__main__":
    main()
