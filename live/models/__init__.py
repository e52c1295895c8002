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

import os

from live.errors import ModelFileError
from live.models.bundled import resolve_model
from live.models.configs import CONFIGS, ConfigSpec, get_config
from live.models.model import Model, ModelConfig
from live.models.modelfile import load as load_npz
from live.models.modelfile import save

__all__ = ["CONFIGS", "ConfigSpec", "Model", "ModelConfig", "get_config", "load", "save"]


def load(path: str | os.PathLike) -> Model:
    """Load a model from a ``.mag`` bundle (needs TensorFlow), a magenta-live model file (.npz)
    or the name of a bundled model (``live.models.bundled``).

    Raises FileNotFoundError for a missing file and ModelFileError for one that is not a
    model, saying what is wrong with it.
    """
    path = os.fspath(resolve_model(path))
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):
        return load_npz(path)
    if path.endswith(".mag") or head[:1] == b"\x0a":
        from live.models.mag import load_mag

        return load_mag(path)
    raise ModelFileError(f"{path}: neither a magenta-live model file (.npz) nor a Magenta bundle (.mag)")
