"""``magenta-live-train convert``'s arguments (the work: ``training.convert``)."""

from __future__ import annotations

import argparse

from live.files import check_writable
from training.commands import WORKERS, add_runner_option, beam_runner, workers
from training.records import describe_records


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``convert`` on a ``magenta-live-train`` subparsers object."""
    p = subparsers.add_parser("convert", help="MIDI, MusicXML and ABC files into a TFRecord of NoteSequences")
    p.add_argument("--input-dir", required=True, help="directory of .mid/.midi, .xml/.mxl/.musicxml and .abc files")
    p.add_argument("--output", required=True, help="TFRecord file to write (NoteSequence protos)")
    p.add_argument("--recursive", action="store_true", help="also convert files in subdirectories")
    p.add_argument("--workers", type=WORKERS.argtype, default=2,
                   help="processes (default: %(default)s; at most this machine's cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_runner_option(p)
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``convert``: the summary, then the file (or the shards) written."""
    check_writable(args.output, "--output")
    if args.runner == "beam":
        summary = beam_runner().convert_dir_beam(
            args.input_dir, args.output, args.recursive, args.pipeline_args, workers(args.workers)
        )
    else:
        from training.convert import convert_dir  # TensorFlow loads here, after the arguments are checked

        summary = convert_dir(args.input_dir, args.output, args.recursive, workers(args.workers), not args.quiet)
    print(summary.text())
    print(f"wrote {describe_records(args.output)}")
    return 0
