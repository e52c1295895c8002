"""Model files with float16 weights: half the size, computed in float32, and the rounding is harmless."""

from __future__ import annotations

import numpy as np
import pytest

import live.models
from live.engine.stream import Stream
from live.errors import ModelFileError
from live.models.bundled import resolve_model
from live.models.model import Model


@pytest.mark.parametrize("name, mode", [("melody", "call-response"), ("polyphony", "harmonize")])
def test_float16_weights_load_as_float32_and_change_the_music_by_nothing_audible(tmp_path, name, mode):
    full = live.models.load(resolve_model(name, mode))
    full = Model(full.config, {k: v.astype(np.float32) for k, v in full.weights.items()}, where="float32")
    path = tmp_path / "half.npz"
    live.models.save(full, path, float16=True)
    half = live.models.load(path)
    assert all(w.dtype == np.float32 for w in half.weights.values())  # the engine computes in float32
    with np.load(path) as data:
        assert {data[k].dtype for k in data.files if k != "__config__"} == {np.dtype(np.float16)}
    # the same 400 steps through both, teacher-forced with the full model's own draws
    a, b = Stream(full), Stream(half)
    rng = np.random.default_rng(0)
    start = a.encoder.label_to_event(0)  # melody: no event; polyphony: the start of a piece
    a.feed(start)
    b.feed(start)
    kl, agree, nll_a, nll_b = [], 0, 0.0, 0.0
    steps = 400
    for _ in range(steps):
        p, q = a.distribution(), b.distribution()
        kl.append(float(np.sum(p * (np.log(p + 1e-12) - np.log(q + 1e-12)))))
        agree += int(np.argmax(p) == np.argmax(q))
        event, _ = a.sample(rng)
        label = b.encoder.event_to_label(event)
        nll_a -= float(np.log(p[label] + 1e-12))
        nll_b -= float(np.log(q[label] + 1e-12))
        b.feed(event)
    assert max(kl) < 1e-3, max(kl)  # nats: far below what temperature 1.1 changes
    assert agree >= steps - 2
    assert abs(nll_a - nll_b) / steps < 1e-3  # per event


def test_a_weight_too_large_for_float16_is_refused(tmp_path):
    model = live.models.load(resolve_model("melody", "call-response"))
    weights = {k: v.copy() for k, v in model.weights.items()}
    weights["output/bias"][0] = 1e6
    with pytest.raises(ModelFileError, match="output/bias do not fit in float16"):
        live.models.save(Model(model.config, weights, where="big"), tmp_path / "big.npz", float16=True)
    assert not (tmp_path / "big.npz").exists()
