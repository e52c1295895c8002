"""A .mag bundle is converted once: the next start reads the cached model file, without TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from tests.conftest import FIXTURE_BUNDLES

BUNDLE = FIXTURE_BUNDLES / "attention_rnn_64x2.mag"

LOAD = (
    "import sys, time\n"
    "import live.models\n"
    "live.models.CACHE_BUNDLES = sys.argv[2] == 'cache'\n"
    "t = time.perf_counter()\n"
    "m = live.models.load(sys.argv[1])\n"
    "print('tensorflow' in sys.modules, m.config_id, round(time.perf_counter() - t, 3))\n"
)


def _load(cache_dir, mode: str = "cache") -> list[str]:
    done = subprocess.run([sys.executable, "-c", LOAD, str(BUNDLE), mode], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MAGENTA_LIVE_CACHE": str(cache_dir)})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_a_bundle_is_converted_once_then_loaded_without_tensorflow(tmp_path):
    first = _load(tmp_path)
    assert first[:2] == ["True", "attention_rnn"]  # converted with TensorFlow
    kept = list(tmp_path.iterdir())
    assert len(kept) == 1 and kept[0].suffix == ".npz"
    second = _load(tmp_path)
    assert second[:2] == ["False", "attention_rnn"]  # the cached conversion: no TensorFlow
    assert float(second[2]) < 1.0

    import live.models
    from live.models.mag import load_mag

    os.environ["MAGENTA_LIVE_CACHE"], saved = str(tmp_path), os.environ["MAGENTA_LIVE_CACHE"]
    try:
        assert live.models.cached_conversion(BUNDLE) == kept[0]
        cached, fresh = live.models.load(BUNDLE), load_mag(BUNDLE)
    finally:
        os.environ["MAGENTA_LIVE_CACHE"] = saved
    assert sorted(cached.weights) == sorted(fresh.weights)
    assert all(np.array_equal(cached.weights[k], fresh.weights[k]) for k in fresh.weights)


def test_a_damaged_cache_entry_is_converted_again_and_no_cache_skips_it(tmp_path):
    _load(tmp_path)
    (entry,) = tmp_path.iterdir()
    entry.write_bytes(b"PK\x03\x04 not a zip any more")
    assert _load(tmp_path)[:2] == ["True", "attention_rnn"]
    assert _load(tmp_path)[:1] == ["False"]
    assert _load(tmp_path, "no-cache")[:1] == ["True"]
