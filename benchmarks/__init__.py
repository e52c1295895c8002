"""Speed benchmarks of the engine: ``python -m benchmarks.run`` writes ``benchmarks/RESULTS.md``.

Nothing here imports numpy at package import time: ``benchmarks.run`` must set the BLAS thread
variables before numpy loads. TensorFlow is imported only by ``benchmarks.metagraph_step``.
"""

# One configuration per family (two more for melody), benchmarked at Magenta's default sizes.
DEFAULT_CONFIGS = (
    "basic_rnn",
    "lookback_rnn",
    "attention_rnn",
    "chord_pitches_improv",
    "polyphony",
    "drum_kit",
    "performance_with_dynamics",
)


def replace_section(report: str, heading: str, text: str) -> str:
    """``report`` with the section under ``heading`` (a "## " line, up to the next one) replaced
    by ``text``, or with ``text`` appended when the report has no such section: for the
    benchmarks that can be rerun alone (``--update benchmarks/RESULTS.md``)."""
    start = report.find(heading + "\n")
    if start < 0:
        return report.rstrip("\n") + "\n\n" + text
    end = report.find("\n## ", start + len(heading))
    rest = report[end + 1 :] if end >= 0 else ""
    return report[:start] + text + ("\n" + rest if rest else "")


def update_report(path: str, heading: str, text: str) -> None:
    """Replace (or add) one section of the report file at ``path``."""
    import pathlib

    report = pathlib.Path(path)
    report.write_text(replace_section(report.read_text(encoding="utf-8"), heading, text), encoding="utf-8")


def section_main(doc: str, heading: str, run, quick_help: str, argv: list[str] | None = None) -> int:
    """The command line of a benchmark that writes one report section: ``--quick`` (``quick_help``
    says what it measures then), ``--update RESULTS_MD`` (replace that section), else the section
    on stdout; progress goes to stderr. ``run(quick, log)`` returns the section's text."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--update", metavar="RESULTS_MD", help="replace (or add) this section in a report file")
    args = parser.parse_args(argv)
    text = run(args.quick, log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.update:
        update_report(args.update, heading, text)
    else:
        sys.stdout.write(text)
    return 0
