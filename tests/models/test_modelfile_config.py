"""A model file whose config is malformed, or that lacks a tensor its configuration needs, is
refused at load with one line saying what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest

from live.errors import ModelFileError
from live.models import save
from live.models.bundled import resolve_model
from live.models.modelfile import CONFIG_KEY, load


def _rewrite(path, arrays) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.fixture()
def arrays(tmp_path):
    path = tmp_path / "m.npz"
    save(load(resolve_model(None, "drums")), path)
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda a: a.update({CONFIG_KEY: np.frombuffer(b"{not json", np.uint8)}), "not valid JSON"),
        (lambda a: a.update({CONFIG_KEY: np.frombuffer(json.dumps({"format": "x"}).encode(), np.uint8)}), "not a magenta-live model"),
        (lambda a: a.pop("output/bias"), "output/bias"),
        (lambda a: a.update({"output/bias": a["output/bias"][:-1]}), "output/bias"),
    ],
)
def test_a_broken_model_file_is_refused_saying_why(tmp_path, arrays, change, words):
    change(arrays)
    path = tmp_path / "broken.npz"
    _rewrite(path, arrays)
    with pytest.raises(ModelFileError, match=words) as err:
        load(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
