"""Files that are not models, or broken ones: a clear ModelFileError naming the file and the fault."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import pytest

import live.models
from live.errors import LiveError, ModelFileError
from live.models.model import FORMAT_VERSION, Model, ModelConfig, expected_shapes
from live.models.modelfile import CONFIG_KEY, save
from harness.synthetic_bundles import (
    BundleSpec,
    build_bundle,
    build_checkpoint_bundle,
    read_bundle_proto,
    write_bundle_proto,
)

FIXTURES = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "magenta_bundles"
BASIC = BundleSpec("basic_rnn", (8,), input_size=38, num_classes=38, seed=3)


def load_error(path: pathlib.Path | str) -> str:
    """Load ``path``, expect ModelFileError (a ValueError too) naming the file; return the message."""
    with pytest.raises(ModelFileError) as info:
        live.models.load(path)
    assert isinstance(info.value, ValueError) and isinstance(info.value, LiveError)
    message = str(info.value)
    assert str(path) in message, message
    return message


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory) -> str:
    """A small valid basic_rnn bundle to break in different ways."""
    return build_bundle(BASIC, tmp_path_factory.mktemp("good") / "basic.mag")


def small_model() -> Model:
    config = ModelConfig("basic_rnn", [8], 38, 38)
    rng = np.random.default_rng(0)
    weights = {k: rng.standard_normal(s).astype(np.float32) for k, s in expected_shapes(config).items()}
    return Model(config, weights)


def rewrite_npz(src: pathlib.Path, dst: pathlib.Path, edit) -> pathlib.Path:
    """Copy an .npz, passing its arrays (name -> array) through ``edit``."""
    with np.load(src) as data:
        arrays = {name: data[name] for name in data.files}
    np.savez(dst, **edit(arrays))
    return dst


# --- not a model at all ---------------------------------------------------------------------


def test_missing_path_is_file_not_found(tmp_path):
    path = tmp_path / "nowhere" / "model.mag"
    with pytest.raises(FileNotFoundError) as info:
        live.models.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", ["notes.txt", "notes.mag", "notes.npz"])
def test_text_file(tmp_path, name):
    path = tmp_path / name
    path.write_text("lookback_rnn\nthis is a text file, not a model\n")
    message = load_error(path)
    assert "not a Magenta .mag bundle" in message or "neither" in message


@pytest.mark.parametrize("name", ["empty.mag", "empty.npz", "empty"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    message = load_error(path)
    assert "not a Magenta .mag bundle" in message or "neither" in message


def test_random_bytes(tmp_path):
    rng = np.random.default_rng(7)
    for i in range(200):
        data = rng.bytes(int(rng.integers(1, 4000)))
        if i % 2:
            data = b"\x0a" + data  # looks like the start of a bundle (field 1, length-delimited)
        path = tmp_path / f"random{i}.mag"
        path.write_bytes(data)
        load_error(path)
    path = tmp_path / "random.bin"
    path.write_bytes(b"\x00" + rng.bytes(999))  # neither a zip nor a bundle's first byte
    assert "neither" in load_error(path)


@pytest.mark.parametrize("fraction", [0.5, 0.01, 0.999])
def test_truncated_real_bundle(tmp_path, fraction):
    data = (FIXTURES / "attention_rnn_64x2.mag").read_bytes()
    path = tmp_path / "attention_rnn_cut.mag"
    path.write_bytes(data[: int(len(data) * fraction)])
    message = load_error(path)
    assert "truncated" in message


# --- bundles with the wrong contents ----------------------------------------------------------


def test_unknown_generator_id(tmp_path):
    path = build_bundle(dataclasses.replace(BASIC, generator_id="melody_rnn_9000"), tmp_path / "unknown.mag")
    message = load_error(path)
    assert "unknown generator id 'melody_rnn_9000'" in message
    assert "lookback_rnn" in message  # it lists the ids it knows


def test_bundle_without_generator_id(tmp_path, good_bundle):
    bundle = read_bundle_proto(good_bundle)
    bundle.generator_details.id = ""
    message = load_error(write_bundle_proto(bundle, tmp_path / "anonymous.mag"))
    assert "no generator id" in message


def test_checkpoint_missing_output_bias(tmp_path):
    path = build_bundle(dataclasses.replace(BASIC, drop=("fully_connected/biases",)), tmp_path / "no_bias.mag")
    message = load_error(path)
    assert "output/bias" in message and "fully_connected/biases" in message


def test_checkpoint_missing_an_attention_variable(tmp_path):
    spec = BundleSpec(
        "attention_rnn", (8, 8), input_size=74, num_classes=40, attn_length=3,
        drop=("rnn/multi_rnn_cell/cell_0/attention_cell_wrapper/attention/attn_v",),
    )
    message = load_error(build_bundle(spec, tmp_path / "no_attn_v.mag"))
    assert "missing attention/attn_v" in message


def test_checkpoint_missing_a_middle_layer(tmp_path):
    rng = np.random.default_rng(0)
    layer = lambda i, rows: {  # noqa: E731
        f"rnn/multi_rnn_cell/cell_{i}/basic_lstm_cell/kernel": rng.standard_normal((rows, 32)).astype(np.float32),
        f"rnn/multi_rnn_cell/cell_{i}/basic_lstm_cell/bias": np.zeros(32, np.float32),
    }
    variables = {
        **layer(0, 38 + 8),
        **layer(2, 16),
        "fully_connected/weights": np.zeros((8, 38), np.float32),
        "fully_connected/biases": np.zeros(38, np.float32),
    }
    message = load_error(build_checkpoint_bundle("basic_rnn", variables, tmp_path / "gap.mag"))
    assert "missing LSTM layer" in message and "[0, 2]" in message


def test_checkpoint_with_a_misshapen_output_layer(tmp_path):
    variables = {
        "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel": np.zeros((38 + 8, 32), np.float32),
        "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias": np.zeros(32, np.float32),
        "fully_connected/weights": np.zeros((10, 38), np.float32),
        "fully_connected/biases": np.zeros(38, np.float32),
    }
    message = load_error(build_checkpoint_bundle("basic_rnn", variables, tmp_path / "misshapen.mag"))
    assert "output/kernel has shape (10, 38), expected (8, 38)" in message


def test_checkpoint_of_another_kind_of_model(tmp_path):
    variables = {"encoder/conv1/kernel": np.zeros((3, 3), np.float32), "global_step": np.int64(10)}
    message = load_error(build_checkpoint_bundle("basic_rnn", variables, tmp_path / "vae.mag"))
    assert "no Magenta RNN variables" in message and "encoder/conv1/kernel" in message


def test_weights_made_for_another_encoding(tmp_path):
    """The generator id says lookback_rnn, but the weights have basic_rnn's input and class sizes."""
    path = build_bundle(dataclasses.replace(BASIC, generator_id="lookback_rnn"), tmp_path / "mislabelled.mag")
    message = load_error(path)
    assert "lookback_rnn" in message
    assert "38 / 38" in message and "121 / 40" in message


def test_corrupt_checkpoint_inside_bundle(tmp_path, good_bundle):
    bundle = read_bundle_proto(good_bundle)
    bundle.checkpoint_file[0] = bundle.checkpoint_file[0][: len(bundle.checkpoint_file[0]) // 2]
    message = load_error(write_bundle_proto(bundle, tmp_path / "cut_checkpoint.mag"))
    assert "checkpoint inside the bundle is unreadable" in message


def test_corrupt_metagraph_inside_bundle(tmp_path, good_bundle):
    bundle = read_bundle_proto(good_bundle)
    bundle.metagraph_file = bundle.metagraph_file[: len(bundle.metagraph_file) // 3]
    message = load_error(write_bundle_proto(bundle, tmp_path / "cut_metagraph.mag"))
    assert "metagraph inside the bundle is unreadable" in message


def test_sharded_checkpoint(tmp_path, good_bundle):
    bundle = read_bundle_proto(good_bundle)
    bundle.checkpoint_file.append(bundle.checkpoint_file[0])
    message = load_error(write_bundle_proto(bundle, tmp_path / "sharded.mag"))
    assert "sharded" in message


# --- model files (.npz) -----------------------------------------------------------------------


def test_npz_that_is_not_ours(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, x=np.arange(10), y=np.ones((3, 3)))
    message = load_error(path)
    assert CONFIG_KEY in message and "without a magenta-live config" in message


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 0, None])
def test_npz_with_another_format_version(tmp_path, version):
    good = tmp_path / "good.npz"
    save(small_model(), good)

    def set_version(arrays):
        config = json.loads(arrays[CONFIG_KEY].tobytes().decode())
        config["version"] = version
        arrays[CONFIG_KEY] = np.frombuffer(json.dumps(config).encode(), np.uint8)
        return arrays

    path = rewrite_npz(good, tmp_path / "other_version.npz", set_version)
    message = load_error(path)
    assert f"model format version {version} is not supported" in message
    assert f"reads version {FORMAT_VERSION}" in message


def test_npz_of_another_format(tmp_path):
    good = tmp_path / "good.npz"
    save(small_model(), good)
    blob = np.frombuffer(json.dumps({"format": "keras", "version": 1}).encode(), np.uint8)
    path = rewrite_npz(good, tmp_path / "keras.npz", lambda a: {**a, CONFIG_KEY: blob})
    assert "not a magenta-live model (format 'keras')" in load_error(path)


def test_npz_with_config_that_is_not_json(tmp_path):
    good = tmp_path / "good.npz"
    save(small_model(), good)
    blob = np.frombuffer(b"\xff\xfe{not json", np.uint8)
    path = rewrite_npz(good, tmp_path / "bad_json.npz", lambda a: {**a, CONFIG_KEY: blob})
    assert "not valid JSON" in load_error(path)


def test_npz_missing_a_weight(tmp_path):
    good = tmp_path / "good.npz"
    save(small_model(), good)
    path = rewrite_npz(good, tmp_path / "no_bias.npz", lambda a: {k: v for k, v in a.items() if k != "output/bias"})
    message = load_error(path)
    assert "missing output/bias (38,)" in message


def test_npz_with_a_misshapen_weight(tmp_path):
    good = tmp_path / "good.npz"
    save(small_model(), good)
    path = rewrite_npz(good, tmp_path / "wide.npz", lambda a: {**a, "lstm_0/kernel": np.zeros((46, 33), np.float32)})
    assert "lstm_0/kernel has shape (46, 33), expected (46, 32)" in load_error(path)


def test_truncated_npz(tmp_path):
    good = tmp_path / "good.npz"
    save(small_model(), good)
    data = good.read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[: len(data) // 2])
    assert "not a readable magenta-live model file" in load_error(path)


def test_good_files_still_load(tmp_path, good_bundle):
    """The files broken above load when intact (so the errors come from the damage)."""
    model = live.models.load(good_bundle)
    assert (model.config_id, model.config.layer_sizes, model.input_size) == ("basic_rnn", [8], 38)
    save(small_model(), tmp_path / "good.npz")
    assert live.models.load(tmp_path / "good.npz").config.layer_sizes == [8]
