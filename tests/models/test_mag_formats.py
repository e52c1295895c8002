""".mag import on bundles we have never seen: synthetic Magenta bundles of every family and layout.

Each bundle is built by TensorFlow (``harness.synthetic_bundles``) with its own shapes,
batch size, attention layout and variable-name generation; the reference is the bundle's own
metagraph run with tf.compat.v1, fed the inputs of our encoders for several distinct streams.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

import live.models
from live.models.model import Model
from live.models.modelfile import save
from harness.metagraph import MetagraphRunner
from harness.synthetic_bundles import NAMINGS, BundleSpec, build_bundle, checkpoint_variable_names

REPO = pathlib.Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5
STEPS = 64
CHORDS = ("C", "Am", "F", "G", "Dm", "E", "N.C.", "Bdim", "Caug", "Eb", "G7", "F#m")


@dataclasses.dataclass(frozen=True)
class Case:
    """A bundle layout to build: config id, LSTM sizes, and BundleSpec's other fields."""

    generator_id: str
    layer_sizes: tuple[int, ...]
    batch_size: int = 1
    attn_length: int = 0
    attention_scope: str = "first"
    naming: str = "tf1x"
    index_input: bool = False
    temperature: float = 1.0
    seed: int = 0


CASES = {
    "lookback_3_layers_batch3": Case("lookback_rnn", (32, 48, 24), batch_size=3, seed=1),
    "basic_1_layer": Case("basic_rnn", (20,), seed=2, temperature=0.7),
    "mono_tf10_names": Case("mono_rnn", (16, 16, 16), naming="tf10", seed=3),
    "attention_first_L7_batch2": Case("attention_rnn", (16, 16), batch_size=2, attn_length=7, seed=4),
    "attention_stack_L5_tf0x": Case(
        "attention_rnn", (24, 16), attn_length=5, attention_scope="stack", naming="tf0x", seed=5
    ),
    # 60 = 3 x 20: a layer's state width is a multiple of the attention size
    "attention_stack_L2_tf10": Case(
        "attention_rnn", (60, 20), attn_length=2, attention_scope="stack", naming="tf10", seed=6
    ),
    "attention_first_L1": Case("attention_rnn", (16, 16), attn_length=1, seed=7, temperature=1.5),
    "polyphony_batch2": Case("polyphony", (40, 40), batch_size=2, seed=8),
    "drum_kit_L4": Case("drum_kit", (24, 24, 24), attn_length=4, seed=9),
    "one_drum_batch4": Case("one_drum", (12,), batch_size=4, seed=10),
    "basic_improv": Case("basic_improv", (16, 16), seed=11),
    "chord_pitches_improv_batch2": Case("chord_pitches_improv", (24, 24, 24), batch_size=2, seed=12),
    "attention_improv_stack_L3": Case("attention_improv", (20, 20), attn_length=3, attention_scope="stack", seed=13),
    "performance": Case("performance", (24,), seed=14),
    "performance_with_dynamics": Case("performance_with_dynamics", (32, 32), seed=15),
    "performance_compact_index_input": Case(
        "performance_with_dynamics_compact", (24, 24), batch_size=2, index_input=True, seed=16
    ),
    "performance_modulo": Case("performance_with_dynamics_and_modulo_encoding", (16, 16), seed=17),
    "optional_multiconditioned_performance": Case(
        "optional_multiconditioned_performance_with_dynamics", (16, 16), batch_size=2, seed=18
    ),
}


def encoder_sizes(generator_id: str) -> tuple[int, int]:
    """(input_size, num_classes) of our encoder for the config; skips while it isn't written yet."""
    try:
        encoder = live.models.get_config(generator_id).make_encoder()
    except (ImportError, AttributeError, NotImplementedError) as err:
        pytest.skip(f"no encoder for {generator_id} yet ({err!r}); the bundle can't be loaded without it")
    return encoder.input_size, encoder.num_classes


def bundle_spec(case: Case, **changes) -> BundleSpec:
    input_size, num_classes = encoder_sizes(case.generator_id)
    spec = BundleSpec(
        generator_id=case.generator_id,
        layer_sizes=case.layer_sizes,
        input_size=input_size,
        num_classes=num_classes,
        batch_size=case.batch_size,
        attn_length=case.attn_length,
        attention_scope=case.attention_scope,
        naming=case.naming,
        index_input=case.index_input,
        seed=case.seed,
    )
    return dataclasses.replace(spec, **changes)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """case name -> (BundleSpec, path of its .mag); built once per module, on first use."""
    root = tmp_path_factory.mktemp("bundles")
    cache: dict[str, tuple[BundleSpec, str]] = {}

    def get(name: str) -> tuple[BundleSpec, str]:
        if name not in cache:
            spec = bundle_spec(CASES[name])
            cache[name] = (spec, build_bundle(spec, root / f"{name}.mag"))
        return cache[name]

    return get


# --- inputs from our own encoders -------------------------------------------------------------


def soprano_melody(steps: int) -> list[int]:
    from tests.models.test_reference_bundles import soprano_events

    return soprano_events(steps)[:steps]


def control_for(config_id: str, step: int, rng: np.random.Generator):
    """A control value for conditional configurations (None for the others)."""
    spec = live.models.get_config(config_id)
    if spec.family == "improv":
        return CHORDS[(step // 8 + int(rng.integers(2))) % len(CHORDS)]
    if "conditioned" not in config_id:
        return None
    density = float(rng.uniform(0.0, 40.0))
    histogram = tuple(float(v) for v in rng.random(12))
    if config_id.startswith("density_"):
        return (density,)
    if config_id.startswith("pitch_"):
        return (histogram,)
    if config_id.startswith("optional_"):
        return (bool(step % 5 == 0), (density, histogram))
    return (density, histogram)


def stream_inputs(model: Model, steps: int, seed: int, events: list | None = None) -> np.ndarray:
    """Inputs [steps, input_size] from our encoder: ``events`` if given, else random valid events."""
    rng = np.random.default_rng(seed)
    encoder = model.make_encoder()
    rows = []
    for t in range(steps):
        event = events[t] if events is not None else encoder.label_to_event(int(rng.integers(encoder.num_classes)))
        encoder.append(event)
        rows.append(encoder.input_vector(control_for(model.config_id, t, rng)))
    return np.array(rows, np.float32)


def batch_inputs(model: Model, batch: int, steps: int, seed: int) -> np.ndarray:
    """[batch, steps, input_size]: a real chorale melody in stream 0 for melody models, random streams otherwise."""
    melody = soprano_melody(steps) if model.family in ("melody", "improv") else None
    return np.stack([stream_inputs(model, steps, seed * 100 + b, melody if b == 0 else None) for b in range(batch)])


def engine_probs(model: Model, inputs: np.ndarray, temperature: float) -> np.ndarray:
    """Step all streams together one step at a time: [batch, steps, num_classes]."""
    state = model.initial_state(inputs.shape[0])
    out = []
    for t in range(inputs.shape[1]):
        probs, state = model.step(inputs[:, t], state, temperature)
        out.append(probs)
    return np.stack(out, axis=1)


def metagraph_probs(path: str, inputs: np.ndarray, temperature: float, index_input: bool = False) -> np.ndarray:
    """The bundle's own graph on the same streams (one row per stream): [batch, steps, num_classes]."""
    runner = MetagraphRunner(path)
    try:
        assert runner.batch_size == inputs.shape[0]
        feed = inputs.argmax(axis=-1)[..., None].astype(np.float32) if index_input else inputs
        return runner.session.run(runner.softmax, {runner.inputs: feed, runner.temperature: temperature})
    finally:
        runner.close()


# --- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_unseen_bundle_matches_its_metagraph(name, bundles):
    case = CASES[name]
    spec, path = bundles(name)
    model = live.models.load(path)

    assert model.config_id == case.generator_id
    assert model.config.layer_sizes == list(case.layer_sizes)
    assert (model.input_size, model.num_classes) == (spec.input_size, spec.num_classes)
    assert model.config.attn_length == case.attn_length
    if case.attn_length:
        assert model.config.attention_scope == case.attention_scope
        assert model.config.source["attn_length_from"] == "metagraph"
    assert model.config.source["batch_size"] == case.batch_size

    inputs = batch_inputs(model, case.batch_size, STEPS, case.seed)
    ours = engine_probs(model, inputs, case.temperature)
    theirs = metagraph_probs(path, inputs, case.temperature, case.index_input)
    assert ours.shape == theirs.shape == (case.batch_size, STEPS, model.num_classes)
    np.testing.assert_allclose(ours, theirs, atol=TOLERANCE, rtol=0)
    # the reference is not degenerate: it changes over time, so a wrong model would show
    assert np.abs(np.diff(theirs, axis=1)).max() > 1e-2
    assert theirs.max(axis=-1).mean() > 1.5 / model.num_classes


def test_wrong_attention_length_is_detected(bundles):
    """The comparison above can fail: the same weights with a window one step longer disagree."""
    case = CASES["attention_stack_L5_tf0x"]
    _, path = bundles("attention_stack_L5_tf0x")
    model = live.models.load(path)
    inputs = batch_inputs(model, 1, STEPS, case.seed)
    theirs = metagraph_probs(path, inputs, 1.0)
    wrong = Model(dataclasses.replace(model.config, attn_length=case.attn_length + 1), model.weights)
    assert np.abs(engine_probs(wrong, inputs, 1.0) - theirs).max() > 1e-3


@pytest.mark.parametrize("scope", ["first", "stack"])
def test_variable_names_of_every_tensorflow_generation_load_alike(scope, tmp_path):
    """TF 0.x (Linear/Matrix), TF 1.0 (weights/biases) and TF 1.x+ (kernel/bias) names give one model."""
    base = bundle_spec(Case("attention_improv", (12, 10), attn_length=3, attention_scope=scope, seed=21))
    models = {}
    for naming in NAMINGS:
        path = build_bundle(dataclasses.replace(base, naming=naming), tmp_path / f"{naming}.mag")
        names = checkpoint_variable_names(path)
        assert {"global_step", "beta1_power", "beta2_power"} <= set(names)
        assert any(n.endswith("/Adam_1") for n in names)
        if naming == "tf0x":
            assert any(n.startswith("RNN/") and n.endswith("/Linear/Matrix") for n in names)
        if naming == "tf10":
            assert any(n.endswith("basic_lstm_cell/weights") for n in names)
        models[naming] = live.models.load(path)
    reference = models["tf1x"]
    assert sorted(reference.weights) == sorted(
        ["lstm_0/kernel", "lstm_0/bias", "lstm_1/kernel", "lstm_1/bias", "output/kernel", "output/bias"]
        + [n for n in reference.weights if n.startswith("attention/")]
    )
    assert len([n for n in reference.weights if n.startswith("attention/")]) == 8
    for naming, model in models.items():
        assert model.config.attention_scope == scope, naming
        assert (model.config.layer_sizes, model.config.attn_length) == ([12, 10], 3), naming
        assert sorted(model.weights) == sorted(reference.weights), naming
        for key, value in reference.weights.items():
            np.testing.assert_array_equal(model.weights[key], value, err_msg=f"{naming}: {key}")


@pytest.mark.parametrize(
    "name", ["lookback_3_layers_batch3", "attention_stack_L5_tf0x", "drum_kit_L4", "performance_compact_index_input"]
)
def test_import_round_trip_loads_without_tensorflow(name, bundles, tmp_path):
    """``magenta-live import``: .mag -> model file; the model file gives identical probabilities, numpy only."""
    case = CASES[name]
    _, path = bundles(name)
    from_mag = live.models.load(path)
    npz = tmp_path / f"{name}.npz"
    save(from_mag, npz)
    from_npz = live.models.load(npz)
    assert dataclasses.asdict(from_npz.config) == dataclasses.asdict(from_mag.config)
    assert sorted(from_npz.weights) == sorted(from_mag.weights)

    inputs = batch_inputs(from_mag, case.batch_size, STEPS, case.seed)
    expected = engine_probs(from_mag, inputs, case.temperature)
    np.testing.assert_array_equal(engine_probs(from_npz, inputs, case.temperature), expected)

    np.save(tmp_path / "inputs.npy", inputs)
    np.save(tmp_path / "expected.npy", expected)
    code = f"""
import sys, time
import numpy as np
t0 = time.perf_counter()
import live.models
t1 = time.perf_counter()
m = live.models.load({str(npz)!r})
t2 = time.perf_counter()
inputs = np.load({str(tmp_path / "inputs.npy")!r})
state = m.initial_state(inputs.shape[0])
rows = []
for t in range(inputs.shape[1]):
    p, state = m.step(inputs[:, t], state, {case.temperature!r})
    rows.append(p)
np.testing.assert_array_equal(np.stack(rows, axis=1), np.load({str(tmp_path / "expected.npy")!r}))
assert 'tensorflow' not in sys.modules and 'note_seq' not in sys.modules, sorted(sys.modules)
print(f"import {{t1 - t0:.3f}} s, load {{t2 - t1:.4f}} s")
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    started = time.perf_counter()
    live.models.load(npz)
    print(f"{name}: {os.path.getsize(npz)} bytes; in a fresh process {result.stdout.strip()}; "
          f"here load {time.perf_counter() - started:.4f} s")
