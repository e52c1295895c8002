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
