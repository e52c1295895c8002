"""``magenta-live generate``: offline generation to MIDI files (placeholder, being written)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
