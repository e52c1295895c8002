"""The training speed benchmark runs the real training step and reports its section (no timing
is asserted)."""

from __future__ import annotations

import pytest

from benchmarks import training as bench


def test_measure_and_render_a_training_step():
    result = bench.measure("basic_rnn", length=6, steps=2, warmup=1)
    assert result["batch"] == 128 and result["layers"] == [128, 128]
    assert len(result["times"]) == 2 and all(t > 0 for t in result["times"])
    text = bench.render([result], bench.QUICK, 1.0)
    assert text.startswith(bench.HEADING + "\n")
    row = next(line for line in text.splitlines() if line.startswith("| basic_rnn"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:5] == ["128x128", "-", "128", "6"]
    steps_per_s, sequences_per_s = float(cells[7]), float(cells[8])
    assert sequences_per_s == pytest.approx(128 * steps_per_s, rel=0.02)


def test_replace_section_touches_only_its_own_section():
    from benchmarks import replace_section

    H = bench.HEADING
    report = "# R\n\n## A\n\na\n\n## Training speed\n\nold\n\n## B\n\nb\n"
    new = replace_section(report, H, "## Training speed\n\nnew\n")
    assert new == "# R\n\n## A\n\na\n\n## Training speed\n\nnew\n\n## B\n\nb\n"
    assert replace_section("# R\n\n## A\n\na\n", H, "## Training speed\n\nx\n") == "# R\n\n## A\n\na\n\n## Training speed\n\nx\n"
    last = replace_section("# R\n\n## Training speed\n\nold\n", H, "## Training speed\n\nnew\n")
    assert last == "# R\n\n## Training speed\n\nnew\n"


def test_a_strategy_row_measures_two_replicas_in_a_fresh_process():
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.training", "--row", "mirrored,2,0", "--quick"], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout)
    assert row["strategy"] == "mirrored" and row["replicas"] == 2 and len(row["times"]) == bench.QUICK["steps"]
    text = bench.render_strategies([row])
    cells = [c.strip() for c in text.strip().splitlines()[-1].strip("|").split("|")]
    assert cells[:4] == ["mirrored", "2", "float32", "128"]
    assert float(cells[6]) == pytest.approx(128 / float(cells[4]), rel=0.05)
