"""The benchmark runner's quick mode produces a complete report (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import DEFAULT_CONFIGS
from benchmarks.engine_step import Timing, history_windows, random_model, sample_rows, time_stream_sample

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "magenta_bundles" / "polyphony_64x3.mag"
HAS_TF = importlib.util.find_spec("tensorflow") is not None
HAS_SYNTHETIC = (ROOT / "harness" / "synthetic_bundles.py").exists()


def run_quick(tmp_path: pathlib.Path, *extra: str) -> str:
    out = tmp_path / "report.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--no-midi", "--output", str(out), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out.read_text(encoding="utf-8")


def section(report: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## `` heading."""
    start = report.index(f"## {heading}\n")
    end = report.find("\n## ", start + 3)
    return report[start : end if end >= 0 else len(report)]


def table_rows(text: str) -> dict[str, list[str]]:
    """First cell -> all cells, for every data row of the Markdown tables in ``text``."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


def number(cell: str) -> float:
    return float(cell.replace(",", "").rstrip("x"))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> str:
    return run_quick(tmp_path_factory.mktemp("bench"))


def test_machine_and_target_sections(report):
    machine = section(report, "Machine")
    assert "pinned to CPU 0" in machine
    assert "set before numpy was imported" in machine
    assert "load average" in machine and f"numpy {np.__version__}" in machine
    target = section(report, "Target")
    assert "under 60 µs: **met**" in target or "under 60 µs: **NOT met**" in target
    assert "overall: **" in target


@pytest.mark.parametrize(
    "heading, columns",
    [("Per-step latency, batch 1", 8), ("Batch 16", 5), ("History independence", None), ("Model file load time", 4)],
)
def test_every_config_has_a_row(report, heading, columns):
    rows = table_rows(section(report, heading))
    for cid in DEFAULT_CONFIGS:
        assert cid in rows, f"{heading}: no row for {cid}"
        if columns:
            assert len(rows[cid]) == columns
    if heading == "Per-step latency, batch 1":
        for cid in DEFAULT_CONFIGS:
            median, p99 = number(rows[cid][5]), number(rows[cid][6])
            assert 0 < median <= p99
            assert rows[cid][7] == "1100"
    if heading == "History independence":
        header = table_rows(section(report, heading))["config"]
        assert header[1:3] == ["engine after 64 µs", "engine after 1024 µs"]
        assert all(number(rows[cid][1]) > 0 and number(rows[cid][2]) > 0 for cid in DEFAULT_CONFIGS)


@pytest.mark.skipif(not HAS_TF, reason="TensorFlow not installed")
def test_metagraph_rows(report):
    rows = table_rows(section(report, "Engine vs. metagraph"))
    expected = (["basic_rnn", "lookback_rnn"] if HAS_SYNTHETIC else []) + (["polyphony_64x3.mag"] if FIXTURE.exists() else [])
    assert expected, "neither synthetic bundles nor the fixture: nothing to compare"
    for label in expected:
        assert label in rows
        engine, metagraph, ratio = number(rows[label][5]), number(rows[label][7]), number(rows[label][9])
        assert engine > 0 and metagraph > 0
        assert ratio == pytest.approx(metagraph / engine, rel=0.05, abs=0.06)
    if HAS_SYNTHETIC:
        assert rows["basic_rnn"][2:5] == ["128x128", "-", "1"]
        history = table_rows(section(report, "History independence"))
        assert number(history["basic_rnn"][3]) > 0 and number(history["basic_rnn"][4]) > 0


def test_breakdown_rows(report):
    parts = section(report, "Where the time goes").split("\n### ")
    rows = table_rows(parts[0])
    for cid in ("basic_rnn", "lookback_rnn", "attention_rnn"):
        assert cid in rows and len(rows[cid]) == 5
    assert parts[1].startswith("`Model.logits` by numpy call")
    calls = table_rows(parts[1])
    assert calls["config"][-2:] == ["output", "Model.logits"]
    for cid in ("basic_rnn", "lookback_rnn"):
        assert len(calls[cid]) == 1 + 2 * 3 + 2  # two layers: matmuls, step, step - matmuls


def test_without_tensorflow_the_numpy_part_still_runs(tmp_path):
    text = run_quick(tmp_path, "--no-tf")
    assert "Skipped: --no-tf was given" in section(text, "Engine vs. metagraph")
    assert "vs. metagraph: **not measured**" in section(text, "Target")
    assert set(DEFAULT_CONFIGS) <= set(table_rows(section(text, "Per-step latency, batch 1")))


def test_history_windows_slice_by_history_length():
    ns = np.arange(1, 201, dtype=np.int64)  # element i: the step taken with i + 1 events of history
    windows = history_windows(ns, (10, 150, 190), 20)
    assert sorted(windows) == [10, 150]  # 190 + 20 steps don't fit
    assert windows[10].ns.tolist() == list(range(10, 30))
    assert Timing(np.array([1000, 3000, 2000], np.int64)).median_us == 2.0


def test_sample_rows_draws_from_the_softmax():
    rng = np.random.default_rng(0)
    logits = np.log(np.array([[0.7, 0.2, 0.1, 1e-12]] * 4000, np.float32))
    counts = np.bincount(sample_rows(logits, 1.0, rng), minlength=4) / 4000
    np.testing.assert_allclose(counts, [0.7, 0.2, 0.1, 0.0], atol=0.03)
    sure = np.full((3, 5), -50.0, np.float32)
    sure[[0, 1, 2], [4, 0, 2]] = 0.0
    assert sample_rows(sure, 0.5, rng).tolist() == [4, 0, 2]


def test_stream_timing_has_one_entry_per_step():
    ns = time_stream_sample(random_model("basic_rnn", (8, 8)), steps=30, warmup=5, rng=np.random.default_rng(1))
    assert ns.shape == (30,) and ns.dtype == np.int64 and (ns > 0).all()


def test_midi_benchmarks_quick_mode_report_every_section(jack_server):
    """The MIDI benchmarks start their own JACK servers; quick mode must still produce each table."""
    from benchmarks import clock, midi_scheduling

    scheduling = midi_scheduling.run(True)
    assert "## Output scheduling" in scheduling and "### Passthrough latency" in scheduling
    assert "| no realtime | idle |" in scheduling
    timing = clock.run(True)
    assert "## Clock" in timing and "### Clock in: lock, tempo and phase error" in timing


def test_live_latency_measures_an_answer(jack_server, melody_model_file):
    """The live benchmark's measurement on one call: every answer note is timed against its grid."""
    from benchmarks import live_latency

    m = live_latency.measure("call-response", str(melody_model_file), 1)
    assert m.notes >= 1 and len(m.grid_errors) == m.notes
    assert len(m.first_errors) == 1 and m.cpu_share > 0
    assert all(-0.001 < e < 0.5 for e in m.grid_errors)  # sent at (not before) its time; a sanity bound


def test_the_musical_quality_section_has_every_row(report):
    text = section(report, "Musical quality: answers in the player's key")
    rows = table_rows(text)
    for setting in ("--key auto (default)", "--key C (not transposed)", "--scale-lock 1"):
        assert any(cells[0] == "melody (bundled)" and cells[1] == setting for cells in _all_rows(text)), setting
    for cells in _all_rows(text):
        if cells[0] == "melody (bundled)":
            ratio = float(cells[3])
            assert 0.0 <= ratio <= 1.0
    heldout = [cells for cells in _all_rows(text) if len(cells) == 8 and cells[0] == "melody (bundled)"]
    assert [cells[1] for cells in heldout] == ["--key auto (default)", "--key C (not transposed)"]  # real calls
    assert all(0.0 <= float(cells[7]) <= 1.0 for cells in heldout)
    assert "free" in rows and "--key auto" in rows  # harmonize and improv tables
    assert "hits per bar" in text and "snare hits on beats 2 and 4" in text


def _all_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("|---")]


def test_the_faults_benchmark_reports_every_fault():
    """Quick mode: two JACK restarts, a flood past RtMidi's queue, a small fuzzing campaign; in a
    process of its own, as the benchmark runs (tests.jack.in_own_process says why)."""
    from tests.jack import in_own_process

    run = in_own_process("from benchmarks import faults; print(faults.run(True, log=lambda m: None))", timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    text = run.stdout[run.stdout.index("## Faults"):]
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| fault")]
    assert len(rows) == 5, rows
    assert "0 never came back" in rows[0] and rows[1].endswith("| 0 | 0 |") and rows[2].endswith("| 0 | 0 |"), \
        "\n".join(line for line in run.stderr.splitlines() if "XRun" not in line)[-6000:]
    assert "unaccounted 0 |" in rows[3] and "tracebacks 0 |" in rows[4]


def test_the_musicvae_section_has_batch_1_and_8(report):
    text = section(report, "MusicVAE: encode and decode a two-bar phrase")
    rows = [cells for cells in _all_rows(text) if cells[0] != "model"]
    assert [cells[1] for cells in rows if cells[0].startswith("bundled")] == ["1", "8"]
    for cells in rows:
        median, p99 = (float(x) for x in cells[2].split(" / "))
        assert 0 < median <= p99
