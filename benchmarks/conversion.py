"""Conversion rate of ``magenta-live-train convert``: files per second into NoteSequences.

    .venv/bin/python -m benchmarks.conversion                 # full: the section on stdout
    .venv/bin/python -m benchmarks.conversion --quick
    .venv/bin/python -m benchmarks.conversion --update benchmarks/RESULTS.md   # replace this section only

Real files from music21's corpus, per kind: Bach chorales as MusicXML (``.mxl``), the same
chorales as MIDI files (written by note-seq), and single-tune ABC files (Ryan's Mammoth).
Three figures per kind: the rate of a whole ``magenta-live-train convert`` run with two worker
processes (the command's default), as its summary reports it (starting the pool, converting,
writing the TFRecord), median of a few runs; the same with ``--runner beam`` (Apache Beam's
DirectRunner, two worker processes in ``multi_processing`` mode: starting the workers, converting,
writing the shards), on the same files; and the time of each file converted alone in this
process (``file_to_sequences``, readers already imported), median and 99th percentile.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import platform
import shutil
import statistics
import sys
import tempfile
import time

HEADING = "## Conversion rate"
FULL = {"files": 150, "runs": 3}
QUICK = {"files": 6, "runs": 1}


def _prepare(root: pathlib.Path, count: int) -> dict[str, pathlib.Path]:
    import music21
    import note_seq

    corpus = pathlib.Path(music21.__file__).resolve().parent / "corpus"
    dirs = {kind: root / kind for kind in ("musicxml", "midi", "abc")}
    for d in dirs.values():
        d.mkdir()
    for p in sorted((corpus / "bach").glob("bwv*.mxl"))[:count]:
        shutil.copy(p, dirs["musicxml"] / p.name)
        seq = note_seq.musicxml_file_to_sequence_proto(str(p))
        note_seq.sequence_proto_to_midi_file(seq, str(dirs["midi"] / (p.stem + ".mid")))
    for p in sorted((corpus / "ryansMammoth").glob("*.abc"))[:count]:
        shutil.copy(p, dirs["abc"] / p.name)
    return dirs


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def _command_rate(input_dir: pathlib.Path, output: pathlib.Path, runner: str = "local") -> float:
    """Files per second of one ``magenta-live-train convert --runner RUNNER --workers 2`` run, from its
    summary line (pool or workers' start, conversion and writing; not the interpreter's own start)."""
    import re
    import subprocess

    cmd = [sys.executable, "-m", "training.cli", "convert", "--input-dir", str(input_dir), "--output", str(output),
           "--quiet", "--runner", runner, "--workers", "2"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env,
                          cwd=pathlib.Path(__file__).resolve().parents[1])
    m = re.search(r"\(([0-9.]+) s, ([0-9.]+) files/s\)", proc.stdout)
    if not m:
        raise RuntimeError(f"no summary in the convert output: {proc.stdout[-300:]}")
    return float(m.group(2))


def measure(quick: bool) -> dict[str, dict]:
    from training.convert import file_to_sequences, find_music_files

    settings = QUICK if quick else FULL
    beam = importlib.util.find_spec("apache_beam") is not None  # the [beam] extra
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        dirs = _prepare(root, settings["files"])
        for kind, d in dirs.items():
            files = find_music_files(d)
            for p in files[:2]:  # warm up the readers' imports
                file_to_sequences(p)
            per_file = []
            for p in files:
                t0 = time.perf_counter()
                file_to_sequences(p)
                per_file.append(time.perf_counter() - t0)
            rates, beam_rates = [], []
            for _ in range(settings["runs"]):  # each run as the command runs: a fresh process
                rates.append(_command_rate(d, root / f"{kind}.tfrecord"))
                if beam:
                    beam_rates.append(_command_rate(d, root / f"{kind}-beam.tfrecord", "beam"))
            results[kind] = {
                "files": len(files),
                "rate_median": statistics.median(rates),
                "rates": rates,
                "beam_rates": beam_rates,
                "file_median_ms": 1000 * statistics.median(per_file),
                "file_p99_ms": 1000 * _percentile(per_file, 0.99),
            }
    return results


def _rates(rates: list[float]) -> str:
    """``median (run, run, ...)`` files/s, or a dash for no runs."""
    if not rates:
        return "-"
    return f"{statistics.median(rates):.1f} ({', '.join(f'{x:.1f}' for x in rates)})"


def section(quick: bool) -> str:
    results = measure(quick)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    lines = [
        HEADING,
        "",
        (
            f"`python -m benchmarks.conversion{' --quick' if quick else ''}`, {time.strftime('%Y-%m-%d')}, "
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load average {load[0]:.2f} at the end (a shared machine)."
        ),
        "",
        (
            "| files | count | convert, 2 workers: files/s (median of runs) "
            "| --runner beam, DirectRunner, 2 workers: files/s | one file alone: median | p99 |"
        ),
        "|---|---|---|---|---|---|",
    ]
    names = {"musicxml": "MusicXML chorales (.mxl)", "midi": "MIDI (chorales via note-seq)", "abc": "ABC tunes (music21)"}
    for kind, r in results.items():
        lines.append(
            f"| {names[kind]} | {r['files']} | {_rates(r['rates'])} | {_rates(r['beam_rates'])} "
            f"| {r['file_median_ms']:.1f} ms | {r['file_p99_ms']:.1f} ms |"
        )
    lines += [
        "",
        (
            "A whole run includes starting two worker processes (each imports note-seq and music21 on its "
            "first file) and writing the TFRecord, so small folders convert below the per-file rate. "
            "A Beam run starts two SDK worker processes (each imports Beam, note-seq and music21) and "
            "writes shards; its column shows a dash where the [beam] extra is not installed."
        ),
    ]
    return "\n".join(lines) + "\n"


def run(quick: bool) -> str:
    """The section, measured in a child process with every CPU (``benchmarks.run`` pins itself)."""
    import subprocess

    root = pathlib.Path(__file__).resolve().parents[1]
    code = (
        "import os, sys; os.sched_setaffinity(0, range(os.cpu_count())) "
        "if hasattr(os, 'sched_setaffinity') else None; from benchmarks.conversion import main; sys.exit(main())"
    )
    cmd = [sys.executable, "-c", code]
    if quick:
        cmd.append("--quick")
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return f"{HEADING}\n\nFailed: {tail[0]}\n"
    return proc.stdout


def replace_section(report: str, text: str) -> str:
    """``report`` with its conversion section replaced by ``text`` (appended when absent)."""
    start = report.find(HEADING + "\n")
    if start < 0:
        return report.rstrip("\n") + "\n\n" + text
    end = report.find("\n## ", start + len(HEADING))
    rest = report[end + 1 :] if end >= 0 else ""
    return report[:start] + text + ("\n" + rest if rest else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conversion", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few files, one run")
    parser.add_argument("--update", metavar="RESULTS_MD", help="replace (or add) this section in a report file")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    text = section(args.quick)
    if args.update:
        path = pathlib.Path(args.update)
        path.write_text(replace_section(path.read_text(encoding="utf-8"), text), encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
