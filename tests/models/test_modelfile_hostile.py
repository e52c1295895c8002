"""Model files that would play nonsense or exhaust memory are refused at load, naming the cause."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from live.errors import ModelFileError
from live.models import save
from live.models.modelfile import load
from live.models.bundled import resolve_model


@pytest.fixture()
def model():
    return load(resolve_model(None, "drums"))


def test_a_nan_weight_is_refused_with_its_name(tmp_path, model):
    weights = dict(model.weights)
    name = sorted(weights)[1]
    weights[name] = weights[name].copy()
    weights[name].flat[7] = np.nan
    model.weights = weights
    path = tmp_path / "nan.npz"
    save(model, path)
    with pytest.raises(ModelFileError, match=f"weights {name} hold NaN or infinite values"):
        load(path)


def test_a_header_declaring_a_huge_array_is_refused_before_allocating(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2**20, 2**20)})
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("output/bias.npy", header.getvalue() + b"\0" * 16)
    with pytest.raises(ModelFileError, match=r"output/bias.npy declares 4398046511104 bytes but holds [0-9]+"):
        load(path)


def test_save_leaves_no_temporary_file_and_keeps_the_old_file_on_failure(tmp_path, model):
    path = tmp_path / "m.npz"
    save(model, path)
    before = path.read_bytes()
    model.weights = {**model.weights, "output/bias": np.full_like(model.weights["output/bias"], 1e6)}
    with pytest.raises(ModelFileError, match="do not fit in float16"):
        save(model, path, float16=True)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.npz"]
