"""``magenta-live-train``: the training tools (convert, dataset, train, export).

Each subcommand lives in its own module with ``add_parser(subparsers)`` (which sets
``run=...`` as the parser's default) and ``run(args) -> int``. A module that is not there
(yet) is left out of the command line. Errors of the ``live.errors.LiveError`` hierarchy
become one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from live.errors import LiveError

# In the order ``--help`` lists them.
SUBCOMMAND_MODULES = ("training.convert", "training.dataset", "training.train", "training.export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="magenta-live-train",
        description="Train Magenta-family models for magenta-live: convert music, make datasets, train, export.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # that subcommand is not built (yet)
                continue
            raise
        add_parser = getattr(module, "add_parser", None)
        if add_parser is not None:
            add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    parser = build_parser()
    args = parser.parse_args(argv)
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
