"""The project's own model file: an ``.npz`` of float32 (or float16) weights plus a JSON config.

Weights may be stored as float16 to halve the file (the bundled models are): they are turned
into float32 when the file loads and the engine computes in float32 throughout
(tests/models/test_modelfile_float16.py measures what the rounding costs).

Layout: one array per weight under its canonical name (``lstm_0/kernel``, ``output/bias``,
``attention/...``; see ``live.models.model``) and ``__config__``, a uint8 array holding UTF-8
JSON with ``format``, ``version``, ``config_id``, ``layer_sizes``, ``input_size``,
``num_classes``, ``attn_length``, ``attention_scope`` and ``source``. Loading needs numpy only.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from live.errors import ModelFileError
from live.files import atomic_path
from live.models.model import Model, ModelConfig

CONFIG_KEY = "__config__"


def save(model: Model, path: str | os.PathLike, float16: bool = False) -> None:
    """Write ``model`` to ``path`` (an uncompressed ``.npz``: weights barely compress, and an
    uncompressed file loads at disk speed), atomically. ``float16``: store the weights rounded to
    half precision (ModelFileError if one does not fit: float16 ends at 65504)."""
    write_container(path, model.config.to_json_dict(), model.weights, float16)


def write_container(path: str | os.PathLike, config: dict, weights: dict[str, np.ndarray], float16: bool = False) -> None:
    """The container itself: ``weights`` and the JSON ``config`` (models and MusicVAEs alike)."""
    path = os.fspath(path)
    blob = np.frombuffer(json.dumps(config, sort_keys=True).encode(), np.uint8)
    if float16:
        weights = {name: w.astype(np.float16) for name, w in weights.items()}
        bad = [name for name, w in weights.items() if not np.isfinite(w).all()]
        if bad:
            raise ModelFileError(f"{path}: weights {', '.join(bad)} do not fit in float16; save them as float32")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{CONFIG_KEY: blob}, **weights)


def _check_sizes(path: str) -> None:
    """Refuse a member whose header declares more bytes than the member holds (a damaged or
    hostile file would otherwise make numpy allocate what the header says first)."""
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            with z.open(info) as f:
                try:
                    version = np.lib.format.read_magic(f)
                    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read_header(f, max_header_size=10_000)
                except ValueError as err:
                    raise ModelFileError(f"{path}: {info.filename} is not a numpy array ({err})") from err
            if dtype.hasobject:
                raise ModelFileError(f"{path}: {info.filename} holds Python objects: not a model file")
            declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if declared > info.file_size:
                raise ModelFileError(
                    f"{path}: {info.filename} declares {declared} bytes but holds {info.file_size}: the file is damaged"
                )


def read_config(path: str | os.PathLike) -> dict:
    """The JSON config of a model file, read without loading its weights (the zip member's
    own errors, OSError, KeyError, ValueError or BadZipFile, are the caller's to word)."""
    with zipfile.ZipFile(path) as z, z.open(f"{CONFIG_KEY}.npy") as f:
        return json.loads(np.lib.format.read_array(f, allow_pickle=False).tobytes().decode())


def load(path: str | os.PathLike) -> Model:
    """Read a model file written by ``save``; ModelFileError says what is wrong with a bad one."""
    path = os.fspath(path)
    config_dict, arrays = read_container(path)
    return Model(ModelConfig.from_json_dict(config_dict, path), arrays, where=path)


def read_container(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """(the JSON config, the weights) of a container written by ``write_container``, checked:
    sizes the file can hold, no Python objects, finite weights, a config that is JSON."""
    path = os.fspath(path)
    try:
        _check_sizes(path)
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (FileNotFoundError, ModelFileError):
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ModelFileError(f"{path}: not a readable magenta-live model file ({err})") from err
    bad = [name for name, a in arrays.items() if name != CONFIG_KEY and a.dtype.kind == "f" and not np.isfinite(a).all()]
    if bad:
        raise ModelFileError(f"{path}: weights {', '.join(sorted(bad))} hold NaN or infinite values: the file is damaged")
    if CONFIG_KEY not in arrays:
        raise ModelFileError(f"{path}: an .npz without a magenta-live config ({CONFIG_KEY} is missing)")
    try:
        config_dict = json.loads(arrays.pop(CONFIG_KEY).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{path}: the model config is not valid JSON ({err})") from err
    if not isinstance(config_dict, dict):
        raise ModelFileError(f"{path}: the model config is not a JSON object")
    return config_dict, arrays
