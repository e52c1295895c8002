"""Magenta-family models in numpy: load a model, step it, encode events for it.

>>> import live.models
>>> model = live.models.load("lookback_rnn.mag")      # or a model file (.npz) or a bundled name
>>> model.config_id, model.input_size, model.num_classes
('lookback_rnn', 121, 40)
>>> state = model.initial_state(batch_size=1)
>>> probs, state = model.step(x, state)               # x float32 [1, 121] -> [1, 40]
>>> live.models.save(model, "lookback.npz")          # the project's model file (float16=True: half the size)
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from live.errors import ModelFileError
from live.models.bundled import resolve_model
from live.models.configs import CONFIGS, ConfigSpec, get_config
from live.models.model import Model, ModelConfig
from live.models.modelfile import load as load_npz
from live.models.modelfile import save

logger = logging.getLogger("live.models")

__all__ = ["CONFIGS", "ConfigSpec", "Model", "ModelConfig", "cache_folder", "cached_conversion", "get_config", "load", "save"]


CACHE_BUNDLES = True
"""Keep each ``.mag`` bundle's conversion in the user's cache (``cache_folder``), keyed by the
bundle's content: the next load needs neither the conversion nor TensorFlow. ``--no-cache``
turns it off."""
CACHE_FORMAT = 1  # part of the cache key: a new conversion format makes old entries unused


def cache_folder() -> Path:
    """``$MAGENTA_LIVE_CACHE``, else ``$XDG_CACHE_HOME/magenta-live/models``, else
    ``~/.cache/magenta-live/models``."""
    own = os.environ.get("MAGENTA_LIVE_CACHE")
    if own:
        return Path(own)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "magenta-live" / "models"


def cached_conversion(path: str | os.PathLike) -> Path:
    """Where the conversion of the bundle at ``path`` is kept (named by its SHA-256)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return cache_folder() / f"{digest.hexdigest()[:40]}-v{CACHE_FORMAT}.npz"


def load(path: str | os.PathLike) -> Model:
    """Load a model from a ``.mag`` bundle, a magenta-live model file (.npz) or the name of a
    bundled model (``live.models.bundled``).

    A bundle is converted with TensorFlow the first time and the result kept in the cache
    (``CACHE_BUNDLES``); later loads of the same bundle read the cached model file. Raises
    FileNotFoundError for a missing file and ModelFileError for one that is not a model,
    saying what is wrong with it.
    """
    path = os.fspath(resolve_model(path))
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):
        return load_npz(path)
    if not (path.endswith(".mag") or head[:1] == b"\x0a"):
        raise ModelFileError(f"{path}: neither a magenta-live model file (.npz) nor a Magenta bundle (.mag)")
    cached = cached_conversion(path) if CACHE_BUNDLES else None
    if cached is not None and cached.exists():
        try:
            return load_npz(cached)
        except ModelFileError as err:  # damaged: convert again
            logger.warning("the cached conversion %s is damaged (%s); converting %s again", cached, err, path)
    from live.models.mag import load_mag  # TensorFlow: only for a bundle not converted yet

    model = load_mag(path)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            save(model, cached)
        except OSError as err:  # the cache is a convenience: the model still loads
            logger.warning("could not keep the conversion of %s in %s: %s", path, cached.parent, err)
    return model
