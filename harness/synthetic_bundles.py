"""Synthetic Magenta generator bundles, built with TensorFlow the way Magenta builds them.

The graph follows Magenta's ``events_rnn_graph`` in "generate" mode: an ``inputs`` placeholder
[batch, time, input_size] (or [batch, time, 1] of class indices that the graph expands to a
one-hot, as the compact Performance RNN does), a ``MultiRNNCell`` of TensorFlow's own
``BasicLSTMCell`` layers (each in a ``DropoutWrapper``) run by ``dynamic_rnn``, optionally an
attention wrapper around layer 0 ("first", Magenta since 2017) or around the whole stack
("stack", older bundles), a linear
output layer ``fully_connected/weights|biases``, and ``softmax(logits / temperature)``. The
collections ``inputs``, ``temperature``, ``softmax``, ``initial_state`` and ``final_state`` are
filled as Magenta fills them, so ``harness.metagraph.MetagraphRunner`` can run the result.

TensorFlow 2.21 no longer ships contrib's ``AttentionCellWrapper``; ``AttentionCellWrapper``
below is a small ``RNNCell`` with the same math and the same variable names (see Magenta's
``magenta/contrib/rnn.py`` for the original).

The variables are random (seeded) and saved in a TF1 V1 checkpoint under the names of one of
three TensorFlow generations (``naming``): "tf1x" (``.../basic_lstm_cell/kernel``, today's),
"tf10" (``.../basic_lstm_cell/weights``) or "tf0x" (``RNN/MultiRNNCell/Cell0/BasicLSTMCell/
Linear/Matrix``). The metagraph's saver maps those names back to the graph's variables, so a
renamed bundle still runs through its own metagraph. Optimizer leftovers (``global_step``,
``beta1_power``, ``.../Adam``) are saved beside the weights unless switched off.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from note_seq.protobuf import generator_pb2
from tensorflow.python.ops import rnn_cell_impl  # TF's own BasicLSTMCell / MultiRNNCell (Keras 3 hides them)

tf1 = tf.compat.v1

NAMINGS = ("tf1x", "tf10", "tf0x")


@dataclass(frozen=True)
class BundleSpec:
    """What to build.

    Attributes:
        generator_id: the id written into the bundle (a Magenta config id, or anything).
        layer_sizes: units of each LSTM layer, bottom first.
        input_size: width of the network's input (the encoding's input size).
        num_classes: softmax width.
        batch_size: the batch size baked into the ``inputs`` placeholder.
        attn_length: attention window in steps (0: no attention).
        attention_scope: "first" (wrapper around layer 0) or "stack" (around the MultiRNNCell).
        naming: checkpoint variable names, one of ``NAMINGS``.
        index_input: the placeholder holds class indices [batch, time, 1], expanded by the graph.
        optimizer_variables: also save global_step, beta1/2_power and Adam slots.
        drop: checkpoint names (in the chosen naming) to leave out of the checkpoint.
        seed: seed of the random weights.
        scale: multiplies the weights on the network input and the output layer (larger: peakier softmax).
    """

    generator_id: str
    layer_sizes: tuple[int, ...]
    input_size: int
    num_classes: int
    batch_size: int = 1
    attn_length: int = 0
    attention_scope: str = "first"
    naming: str = "tf1x"
    index_input: bool = False
    optimizer_variables: bool = True
    drop: tuple[str, ...] = ()
    seed: int = 0
    scale: float = 2.5
    description: str = "synthetic test bundle"


class AttentionCellWrapper(rnn_cell_impl.RNNCell):
    """Attention over the last ``attn_length`` outputs of a cell (Cheng et al. 2016).

    State: (wrapped cell's state, last attention read [B, A], window [B, L * A], oldest first).
    Each step mixes the last read into the input (``kernel``/``bias``), runs the cell, scores
    the window with the cell's new full state as the query (``attention/kernel|bias``,
    ``attention/attn_w`` [1, 1, A, V], ``attention/attn_v`` [V]), and projects
    [cell output, read] to the step's output (``attn_output_projection/kernel|bias``), which
    then enters the window. A = V = the wrapped cell's output size.
    """

    def __init__(self, cell: rnn_cell_impl.RNNCell, attn_length: int) -> None:
        super().__init__()
        self._cell = cell
        self._length = attn_length
        self._size = cell.output_size

    @property
    def state_size(self):
        return (self._cell.state_size, self._size, self._size * self._length)

    @property
    def output_size(self) -> int:
        return self._size

    @staticmethod
    def _affine(parts: list[tf.Tensor], units: int) -> tf.Tensor:
        x = tf.concat(parts, axis=1) if len(parts) > 1 else parts[0]
        kernel = tf1.get_variable("kernel", [int(x.shape[1]), units])
        bias = tf1.get_variable("bias", [units])
        return tf.matmul(x, kernel) + bias

    def call(self, inputs, state):
        cell_state, last_read, flat_window = state
        window = tf.reshape(flat_window, [-1, self._length, self._size])  # [B, L, A]
        mixed = self._affine([inputs, last_read], int(inputs.shape[1]))
        cell_out, new_cell_state = self._cell(mixed, cell_state)
        query = tf.concat(tf.nest.flatten(new_cell_state), axis=1)  # [B, S]
        with tf1.variable_scope("attention"):
            attn_w = tf1.get_variable("attn_w", [1, 1, self._size, self._size])
            attn_v = tf1.get_variable("attn_v", [self._size])
            as_image = tf.reshape(window, [-1, self._length, 1, self._size])
            keys = tf.nn.conv2d(as_image, attn_w, strides=[1, 1, 1, 1], padding="SAME")  # [B, L, 1, V]
            y = tf.reshape(self._affine([query], self._size), [-1, 1, 1, self._size])
            scores = tf.reduce_sum(attn_v * tf.tanh(keys + y), axis=[2, 3])  # [B, L]
            weights = tf.reshape(tf.nn.softmax(scores), [-1, self._length, 1, 1])
            read = tf.reshape(tf.reduce_sum(weights * as_image, axis=[1, 2]), [-1, self._size])
        with tf1.variable_scope("attn_output_projection"):
            out = self._affine([cell_out, read], self._size)
        window = tf.concat([window[:, 1:], out[:, None, :]], axis=1)
        return out, (new_cell_state, read, tf.reshape(window, [-1, self._length * self._size]))


def _build_graph(spec: BundleSpec) -> dict:
    """Magenta's generate-mode graph in the current default graph; returns its entry points."""
    b = spec.batch_size
    if spec.index_input:
        inputs = tf1.placeholder(tf.float32, [b, None, 1])
        expanded = tf.one_hot(tf.cast(tf.squeeze(inputs, axis=-1), tf.int64), spec.input_size)
    else:
        inputs = tf1.placeholder(tf.float32, [b, None, spec.input_size])
        expanded = inputs
    layers = [rnn_cell_impl.BasicLSTMCell(u) for u in spec.layer_sizes]
    if spec.attn_length and spec.attention_scope == "first":
        layers[0] = AttentionCellWrapper(layers[0], spec.attn_length)
    # Magenta wraps every layer in a DropoutWrapper (keep probability 1 when generating); it adds no variables
    layers = [rnn_cell_impl.DropoutWrapper(layer, output_keep_prob=1.0) for layer in layers]
    cell = rnn_cell_impl.MultiRNNCell(layers)
    if spec.attn_length and spec.attention_scope == "stack":
        cell = AttentionCellWrapper(cell, spec.attn_length)
    elif spec.attention_scope not in ("first", "stack"):
        raise ValueError(f"attention_scope {spec.attention_scope!r}")
    initial_state = cell.zero_state(b, tf.float32)
    outputs, final_state = tf1.nn.dynamic_rnn(cell, expanded, initial_state=initial_state)
    flat = tf.reshape(outputs, [-1, cell.output_size])
    with tf1.variable_scope("fully_connected"):
        weights = tf1.get_variable("weights", [cell.output_size, spec.num_classes])
        biases = tf1.get_variable("biases", [spec.num_classes])
    logits = tf.matmul(flat, weights) + biases
    temperature = tf1.placeholder(tf.float32, [])
    softmax = tf.reshape(tf.nn.softmax(logits / temperature), [b, -1, spec.num_classes])
    tf1.add_to_collection("inputs", inputs)
    tf1.add_to_collection("temperature", temperature)
    tf1.add_to_collection("softmax", softmax)
    for t in tf.nest.flatten(initial_state):
        tf1.add_to_collection("initial_state", t)
    for t in tf.nest.flatten(final_state):
        tf1.add_to_collection("final_state", t)
    return {"inputs": inputs, "softmax": softmax}


_TF0X_SEGMENTS = {
    "rnn": "RNN",
    "multi_rnn_cell": "MultiRNNCell",
    "basic_lstm_cell": "BasicLSTMCell",
    "attention_cell_wrapper": "AttentionCellWrapper",
    "attention": "Attention",
    "attn_w": "AttnW",
    "attn_v": "AttnV",
    "attn_output_projection": "AttnOutputProjection",
    "kernel": "Linear/Matrix",
    "bias": "Linear/Bias",
}


def checkpoint_name(graph_name: str, naming: str) -> str:
    """A variable's name as a bundle of the given TensorFlow generation stores it."""
    if naming == "tf1x" or graph_name.startswith("fully_connected/"):
        return graph_name
    segments = graph_name.split("/")
    if naming == "tf10":
        return "/".join({"kernel": "weights", "bias": "biases"}.get(s, s) for s in segments)
    if naming == "tf0x":
        out = []
        for s in segments:
            m = re.fullmatch(r"cell_(\d+)", s)
            out.append(f"Cell{m.group(1)}" if m else _TF0X_SEGMENTS.get(s, s))
        return "/".join(out)
    raise ValueError(f"naming {naming!r}; one of {NAMINGS}")


def _random_value(rng: np.random.Generator, spec: BundleSpec, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Seeded uniform weights: inputs drive the cells strongly, the recurrence stays contractive.

    Rows that multiply the network input (mostly one-hot) get a fixed amplitude, so the input
    moves the state whatever its width; rows that multiply dense activations are scaled by
    their fan-in; recurrent rows are kept small so that float32 rounding does not grow from
    step to step (a chaotic random network would make any two float32 implementations drift
    apart); the output layer is large so that the softmax is far from flat.
    """
    s = spec.scale
    if len(shape) == 1:
        amplitude = np.full(shape, 2.0 / np.sqrt(shape[0]) if name.endswith("attn_v") else 0.5)
    elif name.startswith("fully_connected/"):
        amplitude = np.full(shape, 4.0 * s / np.sqrt(shape[0]))
    elif name.endswith("basic_lstm_cell/kernel"):
        units = shape[1] // 4
        below = shape[0] - units
        raw_input = not spec.attn_length and "/cell_0/" in name
        amplitude = np.empty(shape)
        amplitude[:below] = s if raw_input else 2.0 / np.sqrt(below)
        amplitude[below:] = 1.0 / np.sqrt(units)
    elif name.endswith("attention_cell_wrapper/kernel"):  # [input + attention read, input]
        amplitude = np.full(shape, 2.0 / np.sqrt(shape[0]))
        amplitude[: spec.input_size] = s
    else:  # attention: attn_w [1, 1, A, V], query and output projections
        amplitude = np.full(shape, 2.0 / np.sqrt(shape[-2]))
    return (rng.uniform(-1.0, 1.0, shape) * amplitude).astype(np.float32)


def build_bundle(spec: BundleSpec, path: str | os.PathLike) -> str:
    """Build ``spec``'s graph, give it random weights and write a GeneratorBundle to ``path``."""
    path = os.fspath(path)
    rng = np.random.default_rng(spec.seed)
    graph = tf.Graph()
    with graph.as_default(), tempfile.TemporaryDirectory() as tmp:
        _build_graph(spec)
        model_vars = tf1.global_variables()
        names = {v: checkpoint_name(v.op.name, spec.naming) for v in model_vars}
        saved = {names[v]: v for v in model_vars if names[v] not in spec.drop}
        missing = set(spec.drop) - set(names.values())
        if missing:
            raise ValueError(f"drop names not in the graph: {sorted(missing)} (have {sorted(names.values())})")
        extras: dict[str, tuple[tf.Variable, np.ndarray]] = {}
        if spec.optimizer_variables:
            extras["global_step"] = (tf1.Variable(np.int64(0), name="opt_global_step"), np.int64(12345))
            for k in (1, 2):
                extras[f"beta{k}_power"] = (tf1.Variable(np.float32(0), name=f"opt_beta{k}"), np.float32(0.9**k))
            for v in model_vars:
                for slot in ("Adam", "Adam_1"):
                    value = rng.standard_normal(v.shape).astype(np.float32)
                    extras[f"{names[v]}/{slot}"] = (tf1.Variable(value, name="opt_slot"), value)
        saver = tf1.train.Saver(
            var_list={**saved, **{name: var for name, (var, _) in extras.items()}},
            write_version=tf1.train.SaverDef.V1,
        )
        with tf1.Session(graph=graph) as sess:
            for v in model_vars:
                value = _random_value(rng, spec, v.op.name, tuple(v.shape))
                sess.run(v.initializer, {v.initial_value: value})
            for var, value in extras.values():
                sess.run(var.initializer, {var.initial_value: value})
            ckpt = os.path.join(tmp, "model.ckpt")
            saver.save(sess, ckpt, write_meta_graph=True)
        with open(ckpt, "rb") as f:
            checkpoint = f.read()
        with open(ckpt + ".meta", "rb") as f:
            metagraph = f.read()
    bundle = generator_pb2.GeneratorBundle()
    bundle.generator_details.id = spec.generator_id
    bundle.generator_details.description = f"synthetic {spec.generator_id}"
    bundle.checkpoint_file.append(checkpoint)
    bundle.metagraph_file = metagraph
    bundle.bundle_details.description = spec.description
    write_bundle_proto(bundle, path)
    return path


def read_bundle_proto(path: str | os.PathLike) -> generator_pb2.GeneratorBundle:
    """A bundle file as note-seq's GeneratorBundle protobuf (to edit in tests)."""
    bundle = generator_pb2.GeneratorBundle()
    with open(path, "rb") as f:
        bundle.ParseFromString(f.read())
    return bundle


def write_bundle_proto(bundle: generator_pb2.GeneratorBundle, path: str | os.PathLike) -> str:
    with open(path, "wb") as f:
        f.write(bundle.SerializeToString())
    return os.fspath(path)


def checkpoint_variable_names(path: str | os.PathLike) -> list[str]:
    """Names stored in a bundle's checkpoint (TensorFlow's reader)."""
    from tensorflow.python.training import py_checkpoint_reader

    bundle = read_bundle_proto(path)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "model.ckpt")
        with open(ckpt, "wb") as f:
            f.write(bundle.checkpoint_file[0])
        return sorted(py_checkpoint_reader.NewCheckpointReader(ckpt).get_variable_to_shape_map())


def build_checkpoint_bundle(
    generator_id: str, variables: dict[str, np.ndarray], path: str | os.PathLike, metagraph: bytes = b""
) -> str:
    """A bundle whose V1 checkpoint holds exactly ``variables`` (name -> value), no graph around them."""
    graph = tf.Graph()
    with graph.as_default(), tempfile.TemporaryDirectory() as tmp:
        tf_vars = {name: tf1.Variable(value, name=f"v{i}") for i, (name, value) in enumerate(variables.items())}
        saver = tf1.train.Saver(var_list=tf_vars, write_version=tf1.train.SaverDef.V1)
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            ckpt = os.path.join(tmp, "model.ckpt")
            saver.save(sess, ckpt, write_meta_graph=False)
        with open(ckpt, "rb") as f:
            checkpoint = f.read()
    bundle = generator_pb2.GeneratorBundle()
    bundle.generator_details.id = generator_id
    bundle.checkpoint_file.append(checkpoint)
    bundle.metagraph_file = metagraph
    return write_bundle_proto(bundle, path)
