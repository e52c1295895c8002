"""Errors of the training tools; all derive from ``live.errors.LiveError`` (one hierarchy).

The CLI turns any ``LiveError`` into a one-line message and exit status 2.
"""

from __future__ import annotations

from live.errors import LiveError


class TrainingError(LiveError, RuntimeError):
    """Training, evaluation or export cannot go on (bad run directory, bad data, ...)."""


class HParamsError(LiveError, ValueError):
    """An ``--hparams`` string that does not parse, names an unknown hyperparameter, or gives a
    value out of range."""


class DataError(LiveError, ValueError):
    """Training data that is missing, empty, or not what the configuration expects."""


class CheckpointMismatchError(TrainingError):
    """A run directory whose checkpoint does not fit the requested network."""


class MissingExtraError(LiveError, ImportError):
    """An optional part of the training tools whose packages (a pip extra) are not installed; the
    message says what to install."""
