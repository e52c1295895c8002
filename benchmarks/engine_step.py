"""Engine timings in numpy only: per-step latency, batched steps, history, model file loads.

Every timing is a series of ``time.perf_counter_ns`` differences, one per step (or per load);
``Timing`` summarizes one as median and 99th percentile in microseconds. The models have random
weights at a configuration's default sizes (timing doesn't depend on the values); the weights
are scaled by fan-in so the LSTMs are not saturated and the softmax is neither flat nor one-hot.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import cProfile
import gc
import os
import pstats
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import live.models
from benchmarks import DEFAULT_CONFIGS  # noqa: F401  (re-exported)
from live.engine.sampling import sample_class
from live.engine.stream import Stream
from live.models import cells
from live.models.configs import IMPROV, get_config
from live.models.model import Model, ModelConfig, expected_shapes

# The chord progression fed to improv models: one chord per bar of 16 steps.
IMPROV_CHORDS = ("C", "Am", "F", "G7")

_clock = time.perf_counter_ns


@dataclass(frozen=True)
class Timing:
    """One series of measurements. ns: int64 nanoseconds, one per step (or per call)."""

    ns: np.ndarray

    @property
    def n(self) -> int:
        return int(self.ns.size)

    @property
    def median_us(self) -> float:
        """Median in microseconds."""
        return float(np.median(self.ns)) / 1e3

    @property
    def p99_us(self) -> float:
        """99th percentile in microseconds."""
        return float(np.percentile(self.ns, 99)) / 1e3


def random_model(config_id: str, layer_sizes: tuple[int, ...] | None = None, seed: int = 0) -> Model:
    """A Model of ``config_id`` with random weights; default sizes unless ``layer_sizes`` is given."""
    spec = get_config(config_id)
    encoder = spec.make_encoder()
    config = ModelConfig(
        config_id=config_id,
        layer_sizes=list(layer_sizes or spec.layer_sizes),
        input_size=encoder.input_size,
        num_classes=encoder.num_classes,
        attn_length=spec.attn_length,
        source={"benchmark": "random weights"},
    )
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in expected_shapes(config).items():
        fan_in = shape[0] if len(shape) >= 2 else 1
        amplitude = (4.0 if name.startswith("output/") else 2.0) / np.sqrt(fan_in) if len(shape) >= 2 else 0.5
        weights[name] = rng.uniform(-amplitude, amplitude, shape).astype(np.float32)
    return Model(config, weights, where=f"random {config_id}")


def controls_for(model: Model, steps: int) -> list[Any]:
    """The control of each step: chords for improv models (a chord per bar), None otherwise."""
    if model.family != IMPROV:
        return [None] * steps
    return [IMPROV_CHORDS[(i // 16) % len(IMPROV_CHORDS)] for i in range(steps)]


def primed_stream(model: Model) -> Stream:
    """A stream that has been fed one default event (so it can sample)."""
    stream = Stream(model)
    stream.feed(stream.encoder.default_event, controls_for(model, 1)[0])
    return stream


def time_stream_sample(
    model: Model, steps: int, warmup: int, rng: np.random.Generator, temperature: float = 1.0
) -> np.ndarray:
    """Time ``Stream.sample`` (draw + encode + model step), one call per step, batch of one.

    The warmup steps run on a fork, so the timed stream starts right after its first event:
    element i of the result (ns) is the step taken with i + 1 events of history.
    """
    stream = primed_stream(model)
    controls = controls_for(model, max(steps, warmup))
    twin = stream.fork()
    for i in range(warmup):
        twin.sample(rng, temperature, controls[i])
    del twin
    sample = stream.sample
    out = [0] * steps
    gc.collect()
    for i in range(steps):
        control = controls[i]
        t0 = _clock()
        sample(rng, temperature, control)
        out[i] = _clock() - t0
    return np.array(out, np.int64)


def history_windows(step_ns: np.ndarray, points: tuple[int, ...], window: int) -> dict[int, Timing]:
    """Steps taken after h events of history, h in ``points``: the ``window`` steps from there on."""
    return {h: Timing(step_ns[h - 1 : h - 1 + window]) for h in points if h - 1 + window <= step_ns.size}


def sample_rows(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """One class per row of logits [B, C] from softmax(logits / temperature) (inverse CDF)."""
    z = logits / temperature if temperature != 1.0 else logits
    p = np.exp(z - z.max(axis=1, keepdims=True))
    cdf = np.cumsum(p, axis=1)
    u = rng.random((logits.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=1), logits.shape[1] - 1)


def time_batch_step(
    model: Model, batch: int, steps: int, warmup: int, rng: np.random.Generator, temperature: float = 1.0
) -> np.ndarray:
    """Time ``Model.logits`` on a [batch, input] array plus vectorized sampling of every row.

    No encoder: the next input of each row is the one-hot of its sampled class (modulo the input
    width). Result: ns per batch step.
    """
    state = model.initial_state(batch)
    x = np.zeros((batch, model.input_size), np.float32)
    rows = np.arange(batch)
    x[rows, 0] = 1.0
    width = model.input_size
    out = [0] * steps
    gc.collect()
    for i in range(warmup + steps):
        t0 = _clock()
        logits, state = model.logits(x, state)
        index = sample_rows(logits, temperature, rng)
        x.fill(0.0)
        x[rows, index % width] = 1.0
        t1 = _clock()
        if i >= warmup:
            out[i - warmup] = t1 - t0
    return np.array(out, np.int64)


def time_breakdown(
    model: Model, steps: int, warmup: int, rng: np.random.Generator, temperature: float = 1.0
) -> dict[str, Timing]:
    """Split a ``Stream.sample`` step into its parts, timed separately on every step.

    sample: ``sample_class`` on the logits; encode: ``label_to_event`` + ``append`` +
    ``encode_input``; model: ``Model.logits`` at batch 1; total: the three together.
    """
    stream = primed_stream(model)
    encoder, state, logits = stream.encoder, stream.state, stream.logits
    x = np.zeros((1, model.input_size), np.float32)
    controls = controls_for(model, warmup + steps)
    parts = {"sample": [], "encode": [], "model": [], "total": []}
    gc.collect()
    for i in range(warmup + steps):
        t0 = _clock()
        index, _ = sample_class(logits, temperature, rng)
        t1 = _clock()
        encoder.append(encoder.label_to_event(index))
        encoder.encode_input(x[0], controls[i])
        t2 = _clock()
        out, state = model.logits(x, state)
        logits = out[0]
        t3 = _clock()
        if i >= warmup:
            parts["sample"].append(t1 - t0)
            parts["encode"].append(t2 - t1)
            parts["model"].append(t3 - t2)
            parts["total"].append(t3 - t0)
    return {name: Timing(np.array(v, np.int64)) for name, v in parts.items()}


def _median_call_ns(fn: Callable[[], Any], calls: int, warmup: int) -> Timing:
    for _ in range(warmup):
        fn()
    out = [0] * calls
    for i in range(calls):
        t0 = _clock()
        fn()
        out[i] = _clock() - t0
    return Timing(np.array(out, np.int64))


def time_model_parts(model: Model, calls: int, warmup: int) -> dict[str, Timing] | None:
    """Split ``Model.logits`` (batch 1, no attention) into its numpy calls, each timed alone.

    For each LSTM layer i: ``layer i matmuls`` (x @ wx and h @ wh) and ``layer i step``
    (the whole ``cells.lstm_step``: matmuls + bias + tanh + gate arithmetic); ``output``: the
    output layer's matmul and bias; ``Model.logits``: the whole step. Reads the model's
    prepared weights (private attributes); returns None for attention models or if they moved.
    """
    layers, w_out, b_out = (getattr(model, a, None) for a in ("_layers", "_w_out", "_b_out"))
    if model.config.attn_length or layers is None or w_out is None:
        return None
    state = model.initial_state(1)
    x = np.zeros((1, model.input_size), np.float32)
    x[0, 0] = 1.0
    parts: dict[str, Timing] = {}
    below = x
    for i, p in enumerate(layers):
        c = np.full((1, p.units), 0.1, np.float32)
        h = np.full((1, p.units), 0.1, np.float32)
        xi = below
        parts[f"layer {i} matmuls"] = _median_call_ns(lambda: (xi @ p.wx, h @ p.wh), calls, warmup)
        parts[f"layer {i} step"] = _median_call_ns(lambda: cells.lstm_step(p, xi, c, h), calls, warmup)
        below = h
    top = below
    parts["output"] = _median_call_ns(lambda: top @ w_out + b_out, calls, warmup)
    parts["Model.logits"] = _median_call_ns(lambda: model.logits(x, state), calls, warmup)
    return parts


def profile_stream(model: Model, steps: int, rng: np.random.Generator, top: int = 15) -> list[tuple[str, float, float, float]]:
    """cProfile ``steps`` ``Stream.sample`` calls. Returns the ``top`` functions by own time as
    (function, calls per step, own µs per step, cumulative µs per step); cProfile's own overhead
    inflates every figure, so compare them with each other, not with the timings.
    """
    stream = primed_stream(model)
    controls = controls_for(model, steps)
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(steps):
        stream.sample(rng, 1.0, controls[i])
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.items():
        where = f"{os.path.basename(filename)}:{line}({name})" if line else name
        rows.append((where, calls / steps, own / steps * 1e6, cumulative / steps * 1e6))
    rows.sort(key=lambda r: -r[2])
    return rows[:top]


def time_load(model: Model, reps: int, directory: str) -> tuple[Timing, int]:
    """Save ``model`` as a model file (.npz) in ``directory``, then time ``live.models.load`` of it.

    Returns (one timing per load, file size in bytes).
    """
    path = os.path.join(directory, f"{model.config_id}.npz")
    live.models.save(model, path)
    out = []
    for _ in range(reps):
        t0 = _clock()
        live.models.load(path)
        out.append(_clock() - t0)
    return Timing(np.array(out, np.int64)), os.path.getsize(path)
