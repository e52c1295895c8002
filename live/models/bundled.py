"""The small models shipped inside the package, and how a ``--model`` value is resolved.

Each bundled model is a magenta-live model file ``live/models/bundled/<name>.npz`` whose
config ``source`` says what it was trained on (written by ``training/recipes/``; see
docs/MODELS.md). ``--model`` takes a bundled name or a path to a model file or ``.mag`` bundle.
Every daemon mode has a bundled default, so no mode needs ``--model``.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from live.errors import ModelFileError

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"

DEFAULT_FOR_MODE = {
    "call-response": "melody",
    "continue": "melody",
    "improv": "improv",
    "harmonize": "polyphony",
    "drums": "drums",
    "duet": "performance",
    "vary": "vae",
    "morph": "vae",
}
"""The bundled model each daemon mode uses when ``--model`` is not given."""


@dataclass(frozen=True)
class BundledModel:
    """One shipped model: its name, file, configuration and provenance."""

    name: str
    path: Path
    config_id: str
    size_bytes: int
    trained_on: str
    kind: str = "rnn"  # "rnn" (the agents play it) or "vae" (a MusicVAE: `magenta-live generate`)


def _read_config(path: Path) -> dict:
    """The JSON config of a model file, read without loading the weights."""
    from live.models.modelfile import read_config

    try:
        return read_config(path)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise ModelFileError(f"{path}: a broken bundled model file ({err})") from err


def bundled_models() -> list[BundledModel]:
    """The bundled models, sorted by name (empty if none are installed)."""
    models = []
    for path in sorted(BUNDLED_DIR.glob("*.npz")):
        config = _read_config(path)
        source = config.get("source") or {}
        kind = "vae" if config.get("format") == "magenta-live-vae" else "rnn"
        models.append(
            BundledModel(path.stem, path, config.get("config_id", "?"), path.stat().st_size, str(source.get("trained_on", "")), kind)
        )
    return models


def resolve_model(name_or_path: str | os.PathLike | None, mode: str = "call-response") -> Path:
    """The file a ``--model`` value means: a bundled name, or an existing path.

    ``None`` gives the bundled default of ``mode``. Raises FileNotFoundError (listing the
    bundled names) for a value that is neither.
    """
    if name_or_path is None:
        if mode not in DEFAULT_FOR_MODE:
            raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(DEFAULT_FOR_MODE)}")
        name_or_path = DEFAULT_FOR_MODE[mode]
    text = os.fspath(name_or_path)
    bundled = BUNDLED_DIR / f"{text}.npz"
    if os.sep not in text and "/" not in text and bundled.exists():
        return bundled
    if os.path.exists(text):
        return Path(text)
    names = ", ".join(m.name for m in bundled_models()) or "none installed"
    raise FileNotFoundError(f"no model {text!r}: not a bundled model ({names}) and no such file")
