"""The same models run through their own TensorFlow metagraph, as Magenta runs them.

Two ways Magenta steps a model:

- its generation loop: one ``session.run`` per step on a [batch, 1, input] array, the
  ``final_state`` of one call fed back as the ``initial_state`` of the next
  (``time_engine_and_metagraph``);
- its MIDI interface: every answer regenerates from the whole captured phrase, so each step
  re-runs all of the history through the graph from the zero state (``time_rerun``).

Only ``session.run`` (and building its feed dict) is timed for the metagraph; Magenta's own
encoding and sampling in Python would come on top. This module imports TensorFlow; load it only
when TensorFlow is installed.
"""

from __future__ import annotations

import gc
import os
import pathlib
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import live.models  # noqa: E402
from benchmarks.engine_step import Timing, controls_for, primed_stream  # noqa: E402
from live.models.configs import get_config  # noqa: E402
from harness.metagraph import MetagraphRunner  # noqa: E402

warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
tf.get_logger().setLevel("ERROR")

TF_VERSION = tf.__version__
FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "magenta_bundles"
_clock = time.perf_counter_ns


def synthetic_available() -> bool:
    """True when harness/synthetic_bundles.py (Magenta-format bundle builder) is importable."""
    try:
        import harness.synthetic_bundles  # noqa: F401
    except ImportError:
        return False
    return True


def build_default_bundle(config_id: str, directory: str, batch_size: int = 1) -> str:
    """A Magenta-format bundle (metagraph + V1 checkpoint, random weights) at default sizes."""
    from harness.synthetic_bundles import BundleSpec, build_bundle

    spec = get_config(config_id)
    encoder = spec.make_encoder()
    bundle = BundleSpec(
        generator_id=config_id,
        layer_sizes=tuple(spec.layer_sizes),
        input_size=encoder.input_size,
        num_classes=encoder.num_classes,
        batch_size=batch_size,
        attn_length=spec.attn_length,
        optimizer_variables=False,
    )
    return build_bundle(bundle, os.path.join(directory, f"{config_id}.mag"))


def _one_hot_pool(rng: np.random.Generator, size: int, batch: int, width: int, steps: int) -> np.ndarray:
    """``size`` random one-hot inputs [size, batch, steps, width] (the values don't change the cost)."""
    pool = np.zeros((size, batch, steps, width), np.float32)
    idx = rng.integers(0, width, (size, batch, steps))
    np.put_along_axis(pool, idx[..., None], 1.0, axis=3)
    return pool


class _Stepper:
    """Magenta's generation loop on one runner: one session.run per step, state carried."""

    def __init__(self, runner: MetagraphRunner, rng: np.random.Generator) -> None:
        self.runner = runner
        width = int(runner.inputs.shape[-1])
        self.pool = _one_hot_pool(rng, 16, runner.batch_size, width, 1)
        self.state = runner.zero_state()
        self.fetches = [runner.softmax, runner.final_state]
        self.i = 0

    def step(self) -> None:
        r = self.runner
        feed = {r.inputs: self.pool[self.i % 16], r.temperature: 1.0}
        feed.update(zip(r.initial_state, self.state))
        _, self.state = r.session.run(self.fetches, feed)
        self.i += 1


def time_engine_and_metagraph(
    path: str, steps: int, block: int, warmup: int, rng: np.random.Generator
) -> dict:
    """Time the bundle's model in the engine (``Stream.sample``) and its metagraph (one
    ``session.run`` per step, state fed back), alternating blocks of ``block`` steps so both see
    the same machine load. Returns engine/metagraph Timings, the metagraph's batch size and the
    loaded Model.
    """
    model = live.models.load(path)
    runner = MetagraphRunner(path)
    try:
        stepper = _Stepper(runner, rng)
        stream = primed_stream(model)
        controls = controls_for(model, steps + warmup)
        for i in range(warmup):
            stepper.step()
            stream.sample(rng, 1.0, controls[i])
        ours, theirs = [], []
        done = 0
        gc.collect()
        while done < steps:
            n = min(block, steps - done)
            for i in range(done, done + n):
                control = controls[warmup + i]
                t0 = _clock()
                stream.sample(rng, 1.0, control)
                ours.append(_clock() - t0)
            for _ in range(n):
                t0 = _clock()
                stepper.step()
                theirs.append(_clock() - t0)
            done += n
        return {
            "engine": Timing(np.array(ours, np.int64)),
            "metagraph": Timing(np.array(theirs, np.int64)),
            "batch_size": runner.batch_size,
            "model": model,
        }
    finally:
        runner.close()


def time_rerun(path: str, histories: tuple[int, ...], reps: int, rng: np.random.Generator) -> dict[int, Timing]:
    """One step the MIDI-interface way: the whole phrase of h + 1 steps through the metagraph
    from the zero state (one session.run), for each h in ``histories``."""
    runner = MetagraphRunner(path)
    try:
        width = int(runner.inputs.shape[-1])
        fetches = [runner.softmax, runner.final_state]
        out = {}
        for h in histories:
            phrase = _one_hot_pool(rng, 1, runner.batch_size, width, h + 1)[0]
            feed = {runner.inputs: phrase, runner.temperature: 1.0}
            runner.session.run(fetches, feed)  # warmup
            times = []
            for _ in range(reps):
                t0 = _clock()
                runner.session.run(fetches, feed)
                times.append(_clock() - t0)
            out[h] = Timing(np.array(times, np.int64))
        return out
    finally:
        runner.close()
