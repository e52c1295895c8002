"""Print the numbers of the recipes' last runs (``build/recipes/*/report.json``) as Markdown,
for docs/MODELS.md: ``python -m training.recipes.report``."""

from __future__ import annotations

import json
import math

from training.recipes.common import BUILD

ORDER = ("melody", "polyphony", "improv", "drums", "performance")


def _row(r: dict) -> str:
    ev, base = r["eval"], r["baseline"]
    return (
        f"| {r['name']} | {r['config']} | {r['steps']} | {r['train_seconds'] / 60:.1f} min "
        f"| {ev['loss']:.3f} ({math.exp(ev['loss']):.2f}) | {ev['metrics/accuracy']:.3f} "
        f"| {base['nll_per_step']:.3f} ({math.exp(base['nll_per_step']):.2f}) | {base['accuracy']:.3f} "
        f"| {base['eval_steps']} | {r['size_bytes'] / 1e6:.2f} MB |"
    )


def main() -> None:
    reports = {}
    for name in ORDER:
        path = BUILD / name / "report.json"
        if path.exists():
            reports[name] = json.loads(path.read_text())
    print("| model | config | steps | train wall time | eval NLL/event (perplexity) | eval accuracy "
          "| trigram NLL (perplexity) | trigram accuracy | eval events | size |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in reports.values():
        print(_row(r))
    for r in reports.values():
        print(f"\n### {r['name']}\n")
        print(f"hparams `{r['hparams']}`; dataset options `{' '.join(r.get('dataset_args', [])) or '(Magenta defaults)'}`")
        for line in r.get("dataset_summary", []):
            if line.startswith("  ") or "NoteSequences (" in line:
                print(f"    {line.strip()}")


if __name__ == "__main__":
    main()
