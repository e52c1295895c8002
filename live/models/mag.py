"""Reading Magenta ``.mag`` generator bundles.

A bundle is a ``GeneratorBundle`` protobuf: the generator id (``lookback_rnn``...), a TF1 V1
checkpoint and the model's metagraph. The protobuf envelope is parsed here by hand (it has four
fields), so a file that is not a bundle is recognised without TensorFlow. Reading the checkpoint
and the metagraph needs TensorFlow, which is imported only inside ``read_variables`` and
``read_graph_facts``; ``magenta-live import`` converts a bundle once to the project's model file
so that later loads need numpy only.

Variable names are mapped by pattern, so every naming generation of Magenta's graphs loads:
TF 0.x (``RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Matrix``), TF 1.0 (``.../weights``) and
TF 1.x+ (``rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel``), with the attention wrapper
around the first layer (``cell_0/attention_cell_wrapper/...``, bundles since 2017) or around the
whole stack (``rnn/attention_cell_wrapper/multi_rnn_cell/...``, older ones).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass

import numpy as np

from live.errors import ModelFileError, UnknownConfigError
from live.models.configs import get_config
from live.models.model import LSTM_BIAS, LSTM_KERNEL, OUTPUT_BIAS, OUTPUT_KERNEL, Model, ModelConfig


@dataclass(frozen=True)
class Bundle:
    """The fields of a GeneratorBundle. checkpoint: the V1 checkpoint file's bytes."""

    generator_id: str
    generator_description: str
    bundle_description: str
    checkpoint: bytes
    metagraph: bytes


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("varint runs past the end")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes) -> list[tuple[int, bytes | int]]:
    """Decode one protobuf message's fields as (number, value); only the wire types we meet."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError(f"field {number} wants {size} bytes, {len(buf) - pos} left")
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.append((number, value))
    return out


def read_bundle(path: str | os.PathLike) -> Bundle:
    """Parse the GeneratorBundle envelope. ModelFileError if it is not a complete bundle."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        fields = _fields(data)
        gen_id = gen_desc = bundle_desc = ""
        checkpoints, metagraph = [], b""
        for number, value in fields:
            if number == 1:
                for n, v in _fields(value):
                    if n == 1:
                        gen_id = v.decode()
                    elif n == 2:
                        gen_desc = v.decode()
            elif number == 2:
                checkpoints.append(value)
            elif number == 3:
                metagraph = value
            elif number == 4:
                bundle_desc = next((v.decode() for n, v in _fields(value) if n == 1), "")
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: not a Magenta .mag bundle, or a truncated one ({err})") from err
    if not gen_id or not checkpoints:
        missing = "generator id" if not gen_id else "checkpoint"
        raise ModelFileError(f"{path}: not a Magenta .mag bundle (no {missing} in it)")
    if len(checkpoints) > 1:
        raise ModelFileError(f"{path}: sharded checkpoints ({len(checkpoints)} files) are not supported")
    return Bundle(gen_id, gen_desc, bundle_desc, checkpoints[0], metagraph)


def read_variables(bundle: Bundle, where: str) -> dict[str, np.ndarray]:
    """Every variable of the bundle's checkpoint (TensorFlow's reader, imported here)."""
    from tensorflow.python.training import py_checkpoint_reader  # noqa: PLC0415 (TF only here)

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "model.ckpt")
        with open(ckpt, "wb") as f:
            f.write(bundle.checkpoint)
        try:
            reader = py_checkpoint_reader.NewCheckpointReader(ckpt)
            return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
        except Exception as err:  # TensorFlow raises its own DataLossError and friends
            raise ModelFileError(f"{where}: the checkpoint inside the bundle is unreadable ({err})") from err


def read_graph_facts(bundle: Bundle, where: str = "bundle") -> dict[str, int]:
    """Sizes only the metagraph records: the baked-in batch size and each state tensor's width."""
    if not bundle.metagraph:
        return {}
    import tensorflow as tf  # noqa: PLC0415 (TF only here)

    with tempfile.TemporaryDirectory() as tmp:
        meta = os.path.join(tmp, "model.ckpt.meta")
        with open(meta, "wb") as f:
            f.write(bundle.metagraph)
        graph = tf.Graph()
        with graph.as_default():
            try:
                tf.compat.v1.train.import_meta_graph(meta, clear_devices=True)
            except Exception as err:  # TensorFlow raises OSError, DecodeError, ValueError...
                raise ModelFileError(f"{where}: the metagraph inside the bundle is unreadable ({err})") from err
        inputs = graph.get_collection("inputs")
        facts = {"batch_size": int(inputs[0].shape[0])} if inputs and inputs[0].shape[0] is not None else {}
        facts["state_widths"] = [int(t.shape[1]) for t in graph.get_collection("initial_state")]
        return facts


_SEGMENTS = {
    "RNN": "rnn",
    "MultiRNNCell": "multi_rnn_cell",
    "BasicLSTMCell": "basic_lstm_cell",
    "AttentionCellWrapper": "attention_cell_wrapper",
    "Attention": "attention",
    "AttnW": "attn_w",
    "AttnV": "attn_v",
    "AttnOutputProjection": "attn_output_projection",
    "Matrix": "kernel",
    "weights": "kernel",
    "Bias": "bias",
    "biases": "bias",
}
_IGNORED = re.compile(r"(^|/)(global_step|beta\d_power)$|/(Adam|adam|Momentum|RMSProp)(_\d+)?$")
_LSTM = re.compile(r"cell_(\d+)/(?:attention_cell_wrapper/)?basic_lstm_cell/(kernel|bias)$")
_ATTENTION = {
    "attention_cell_wrapper/kernel": "attention/input/kernel",
    "attention_cell_wrapper/bias": "attention/input/bias",
    "attention_cell_wrapper/attention/kernel": "attention/query/kernel",
    "attention_cell_wrapper/attention/bias": "attention/query/bias",
    "attention_cell_wrapper/attention/attn_w": "attention/attn_w",
    "attention_cell_wrapper/attention/attn_v": "attention/attn_v",
    "attention_cell_wrapper/attn_output_projection/kernel": "attention/output/kernel",
    "attention_cell_wrapper/attn_output_projection/bias": "attention/output/bias",
}


def normalize_name(name: str) -> str:
    """A variable name in today's TensorFlow spelling: ``RNN/MultiRNNCell/Cell0/...`` -> ``rnn/multi_rnn_cell/cell_0/...``."""
    out = []
    for seg in name.split("/"):
        if seg == "Linear":
            continue
        m = re.fullmatch(r"Cell(\d+)", seg)
        out.append(f"cell_{m.group(1)}" if m else _SEGMENTS.get(seg, seg))
    return "/".join(out)


def canonical_weights(variables: dict[str, np.ndarray], where: str) -> tuple[dict[str, np.ndarray], str]:
    """Map checkpoint variables to canonical weight names; returns (weights, attention scope)."""
    weights: dict[str, np.ndarray] = {}
    scope = "first"
    unknown = []
    for raw, value in variables.items():
        if _IGNORED.search(raw):
            continue
        name = normalize_name(raw)
        canonical = None
        if name.endswith("fully_connected/kernel"):
            canonical = OUTPUT_KERNEL
        elif name.endswith("fully_connected/bias"):
            canonical = OUTPUT_BIAS
        elif m := _LSTM.search(name):
            canonical = (LSTM_KERNEL if m.group(2) == "kernel" else LSTM_BIAS).format(int(m.group(1)))
            if "attention_cell_wrapper/multi_rnn_cell" in name:
                scope = "stack"
        elif "attention_cell_wrapper/" in name:
            tail = name[name.index("attention_cell_wrapper/") :]
            canonical = _ATTENTION.get(tail)
        if canonical is None:
            unknown.append(raw)
            continue
        if canonical == "attention/attn_w":
            value = value.reshape(value.shape[-2], value.shape[-1])  # [1, 1, A, V] conv -> [A, V]
        if canonical in weights:
            raise ModelFileError(f"{where}: two checkpoint variables map to {canonical}")
        weights[canonical] = np.asarray(value, np.float32)
    if unknown and not weights:
        raise ModelFileError(f"{where}: no Magenta RNN variables in the checkpoint (it has {sorted(unknown)[:5]})")
    return weights, scope


_MAGENTA_NAMES = {
    OUTPUT_KERNEL: "fully_connected/weights",
    OUTPUT_BIAS: "fully_connected/biases",
    LSTM_KERNEL.format(0): "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel",
}


def model_from_variables(
    generator_id: str, variables: dict[str, np.ndarray], facts: dict, where: str, source: dict
) -> Model:
    """Build a Model from checkpoint variables, inferring sizes from the weights' shapes."""
    try:
        spec = get_config(generator_id)
    except UnknownConfigError as err:
        raise ModelFileError(f"{where}: unknown generator id {generator_id!r}: {err}") from err
    weights, scope = canonical_weights(variables, where)
    layer_ids = sorted(int(n.split("/")[0][5:]) for n in weights if n.startswith("lstm_") and n.endswith("/bias"))
    if not layer_ids or layer_ids != list(range(len(layer_ids))):
        raise ModelFileError(f"{where}: missing LSTM layer variables (found layers {layer_ids})")
    for required in (OUTPUT_KERNEL, OUTPUT_BIAS, LSTM_KERNEL.format(0)):
        if required not in weights:
            raise ModelFileError(f"{where}: the checkpoint has no variable for {required} ({_MAGENTA_NAMES[required]})")
    sizes = [weights[LSTM_BIAS.format(i)].shape[0] // 4 for i in layer_ids]
    input_size = weights[LSTM_KERNEL.format(0)].shape[0] - sizes[0]
    attn_length = 0
    if any(n.startswith("attention/") for n in weights):
        if "attention/output/bias" not in weights:
            raise ModelFileError(f"{where}: missing variable for attention/output/bias")
        a = weights["attention/output/bias"].shape[0]
        # The flattened state is every layer's c and h, the last attention read [A] and the
        # window [L * A], whichever layer the wrapper sits on: L is what remains.
        widths = facts.get("state_widths", [])
        window = sum(widths) - 2 * sum(sizes) - a
        found = bool(widths) and window > 0 and window % a == 0
        attn_length = window // a if found else spec.attn_length
        source = {**source, "attn_length_from": "metagraph" if found else "configuration default"}
    config = ModelConfig(
        config_id=spec.config_id,
        layer_sizes=sizes,
        input_size=input_size,
        num_classes=weights[OUTPUT_BIAS].shape[0],
        attn_length=attn_length,
        attention_scope=scope,
        source={**source, **({"batch_size": facts["batch_size"]} if "batch_size" in facts else {})},
    )
    model = Model(config, weights, where=where)
    try:
        model.make_encoder()  # checks the weights against the configuration's encoding sizes
    except ModelFileError as err:
        raise ModelFileError(f"{where}: {err}") from err
    return model


def load_mag(path: str | os.PathLike) -> Model:
    """Load a ``.mag`` bundle as a Model (needs TensorFlow; see ``magenta-live import``)."""
    path = os.fspath(path)
    bundle = read_bundle(path)
    try:
        get_config(bundle.generator_id)
    except UnknownConfigError as err:
        raise ModelFileError(f"{path}: unknown generator id {bundle.generator_id!r}: {err}") from err
    variables = read_variables(bundle, path)
    facts = read_graph_facts(bundle, path)
    source = {"bundle": os.path.basename(path), "description": bundle.bundle_description or bundle.generator_description}
    return model_from_variables(bundle.generator_id, variables, facts, path, source)
