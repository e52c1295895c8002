"""The ``magenta-live-train`` subcommands' arguments: cheap modules, free of TensorFlow.

Each module here has ``add_parser(subparsers)`` (which sets ``run=...`` as the parser's default)
and ``run(args) -> int``. ``run`` checks what argparse cannot (an output's folder), then imports
its implementation (``training.convert``, ``training.dataset``, ``training.train``,
``training.export``, which import TensorFlow at their top) and calls it with plain values. So
``--help`` and a bad argument answer at once, and the implementations are a library.
"""

from __future__ import annotations

import argparse
import logging
import os
from types import ModuleType

from live.settings import Number
from training.errors import MissingExtraError

SUBCOMMANDS = ("convert", "dataset", "train", "export")
"""In the order ``--help`` lists them: ``training.commands.<name>``."""

WORKERS = Number("--workers", 1, 1024, integer=True, meaning="processes")


def workers(asked: int) -> int:
    """``--workers``: as asked, but never more processes than this machine has cores."""
    return max(1, min(asked, os.cpu_count() or 1))


BEAM_INSTALL_HINT = '--runner beam needs Apache Beam: pip install "magenta-live[beam]"'


def add_runner_option(parser: argparse.ArgumentParser) -> None:
    """``--runner {local,beam}`` on ``convert`` and ``dataset``."""
    parser.add_argument(
        "--runner", choices=("local", "beam"), default="local",
        help="local: a pool of --workers processes (default); beam: an Apache Beam pipeline, Beam's DirectRunner "
        "with --workers processes unless Beam pipeline options after -- say otherwise "
        "(e.g. -- --runner=FlinkRunner --flink_master=HOST:8081); it writes each output as shards NAME-00000-of-0000N",
    )


def beam_runner() -> ModuleType:
    """``training.beam``; MissingExtraError (how to install it) when Apache Beam is not installed."""
    try:
        import apache_beam  # noqa: F401
    except ImportError as err:
        raise MissingExtraError(BEAM_INSTALL_HINT) from err
    # Beam's own INFO and WARNING lines (its workers' start and stop) would bury the summary.
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    from training import beam

    return beam
