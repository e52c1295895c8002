"""``magenta-live-train``: the training tools (convert, dataset, train, export).

Each subcommand's arguments live in ``training.commands.<name>`` (cheap, no TensorFlow); its
``run`` imports the implementation (``training.<name>``) once the arguments are good. Errors of the ``live.errors.LiveError`` hierarchy
become one line on stderr and exit status 2. What follows a ``--`` is ``args.pipeline_args``: Apache
Beam pipeline options for ``convert`` and ``dataset`` with ``--runner beam``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from live.errors import LiveError
from live.settings import OneLineParser

from training.commands import SUBCOMMANDS


class TrainParser(OneLineParser):
    EXIT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = TrainParser(
        prog="magenta-live-train",
        description="Train Magenta-family models for magenta-live: convert music, make datasets, train, export.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"training.commands.{name}").add_parser(subparsers)
    return parser


# Options whose value is a comma-separated list of numbers that may start with a minus sign.
LIST_OPTIONS = ("--transpositions", "--stretch-factors")
_NUMBER_LIST = re.compile(r"-\d[\d.]*(,-?\d[\d.]*)*")


def join_number_lists(argv: list[str]) -> list[str]:
    """``--transpositions -2,0,2`` as ``--transpositions=-2,0,2``: argparse reads a value that
    starts with a minus sign and is not one plain number as an option of its own."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in LIST_OPTIONS and _NUMBER_LIST.fullmatch(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def split_pipeline_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """``argv`` before the first ``--``, and what follows it: Apache Beam pipeline options for
    ``--runner beam`` (``convert --runner beam ... -- --runner=FlinkRunner``); ``[]`` when none."""
    if "--" not in argv:
        return list(argv), []
    cut = argv.index("--")
    return list(argv[:cut]), list(argv[cut + 1 :])


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    parser = build_parser()
    own, pipeline_args = split_pipeline_args(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(join_number_lists(own))
        args.pipeline_args = pipeline_args
        if pipeline_args and getattr(args, "runner", None) != "beam":
            parser.error(f"{pipeline_args[0]}: options after -- are Apache Beam pipeline options, "
                         "for convert and dataset with --runner beam only")
    except SystemExit as done:  # --help, or a refused argument (its line is printed)
        return int(done.code or 0)
    try:
        return int(args.run(args) or 0)
    except LiveError as err:
        print(f"magenta-live-train {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"magenta-live-train {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"magenta-live-train {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
