"""The ``magenta-live-train`` subcommands' arguments: cheap modules, free of TensorFlow.

Each module here has ``add_parser(subparsers)`` (which sets ``run=...`` as the parser's default)
and ``run(args) -> int``. ``run`` checks what argparse cannot (an output's folder), then imports
its implementation (``training.convert``, ``training.dataset``, ``training.train``,
``training.export``, which import TensorFlow at their top) and calls it with plain values. So
``--help`` and a bad argument answer at once, and the implementations are a library.
"""

from __future__ import annotations

import os

from live.settings import Number

SUBCOMMANDS = ("convert", "dataset", "train", "export")
"""In the order ``--help`` lists them: ``training.commands.<name>``."""

WORKERS = Number("--workers", 1, 1024, integer=True, meaning="processes")


def workers(asked: int) -> int:
    """``--workers``: as asked, but never more processes than this machine has cores."""
    return max(1, min(asked, os.cpu_count() or 1))
