"""The Keras twin of the live engine's network, for training.

``EventRNN`` computes exactly what ``live.models.model.Model`` computes step by step in numpy
(``live.models.cells``), over whole padded batches of sequences:

- stacked TensorFlow ``BasicLSTMCell`` layers: one kernel [input + units, 4 * units] over
  [x, h] giving gates in the order i, j, f, o, and 1.0 added to the forget gate before its
  sigmoid at run time (the bias variable itself starts at zero, as in TensorFlow);
- optionally Magenta's ``AttentionCellWrapper`` around layer 0 (scope "first"): the last
  attention read is mixed into the input, the cell runs, its full state (c, h) is the query
  over the last ``attn_length`` outputs, and [cell output, read] is projected to the output
  that joins the window;
- output dropout after every layer while training (``DropoutWrapper(output_keep_prob)``;
  the recurrent state is never dropped);
- a dense layer to the logits.

Weights live in variables whose shapes are the model file's canonical shapes
(``live.models.model.expected_shapes``), so exporting is a copy (``canonical_weights``) and a
live model file can be loaded back (``set_canonical_weights``).

Hyperparameters follow Magenta's ``HParams`` for each configuration (``default_hparams``);
``parse_hparams`` reads the ``--hparams`` string.

This module imports TensorFlow; ``live/`` must never import it.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from live.models import model as live_model
from live.models.configs import (
    DRUMS,
    IMPROV,
    MELODY,
    PERFORMANCE,
    POLYPHONY,
    ConfigSpec,
    get_config,
)
from training.errors import HParamsError

FORGET_BIAS = 1.0  # added to the forget gate at run time, as BasicLSTMCell(forget_bias=1.0)


# --------------------------------------------------------------------------------------------
# Hyperparameters


@dataclass
class HParams:
    """Training hyperparameters, with Magenta's names and meanings.

    Attributes:
        batch_size: sequences per training step.
        rnn_layer_sizes: units of each LSTM layer, bottom first.
        dropout_keep_prob: probability of keeping each layer output while training (1.0: none).
        attn_length: attention window in steps (0: no attention).
        clip_norm: gradients are clipped to this global norm.
        learning_rate: Adam's learning rate.
    """

    batch_size: int = 64
    rnn_layer_sizes: list[int] = field(default_factory=lambda: [128, 128])
    dropout_keep_prob: float = 1.0
    attn_length: int = 0
    clip_norm: float = 3.0
    learning_rate: float = 0.001

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_string(self) -> str:
        """The ``--hparams`` string that gives these values."""
        d = self.to_dict()
        d["rnn_layer_sizes"] = "[" + ",".join(str(u) for u in self.rnn_layer_sizes) + "]"
        return ",".join(f"{k}={v}" for k, v in d.items())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HParams:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise HParamsError(f"unknown hparams {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        hp = cls(**d)
        hp.validate()
        return hp

    def validate(self) -> None:
        """Raise HParamsError when a value is out of range. The upper bounds are far above any
        model this project trains, and below what would exhaust the machine before a step."""
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= MAX_BATCH:
            raise HParamsError(f"batch_size must be an integer from 1 to {MAX_BATCH}, not {self.batch_size!r}")
        sizes = self.rnn_layer_sizes
        if (not isinstance(sizes, list) or not 1 <= len(sizes) <= MAX_LAYERS
                or not all(isinstance(u, int) and 1 <= u <= MAX_UNITS for u in sizes)):
            raise HParamsError(
                f"rnn_layer_sizes must be 1 to {MAX_LAYERS} integers from 1 to {MAX_UNITS}, not {sizes!r}"
            )
        if not 0.0 < self.dropout_keep_prob <= 1.0:
            raise HParamsError(f"dropout_keep_prob must be in (0, 1], not {self.dropout_keep_prob!r}")
        if not isinstance(self.attn_length, int) or not 0 <= self.attn_length <= MAX_ATTN:
            raise HParamsError(f"attn_length must be an integer from 0 to {MAX_ATTN}, not {self.attn_length!r}")
        if not (math.isfinite(self.clip_norm) and self.clip_norm > 0):
            raise HParamsError(f"clip_norm must be a finite number > 0, not {self.clip_norm!r}")
        if not (math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 1):
            raise HParamsError(f"learning_rate must be in (0, 1], not {self.learning_rate!r}")


MAX_BATCH, MAX_LAYERS, MAX_UNITS, MAX_ATTN = 4096, 16, 8192, 1024
"""The hyperparameters' upper bounds (see ``HParams.validate``)."""


# Magenta's HParams for each family (magenta/models/*/..._model.py); sizes and attention length
# come from live.models.configs. Configurations not listed take the family's values.
_FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    MELODY: {"batch_size": 128, "dropout_keep_prob": 0.5, "clip_norm": 5.0},
    IMPROV: {"batch_size": 128, "dropout_keep_prob": 0.5, "clip_norm": 3.0},
    POLYPHONY: {"batch_size": 64, "dropout_keep_prob": 0.5, "clip_norm": 5.0},
    DRUMS: {"batch_size": 128, "dropout_keep_prob": 0.5, "clip_norm": 5.0},
    PERFORMANCE: {"batch_size": 64, "dropout_keep_prob": 1.0, "clip_norm": 3.0},
}
_CONFIG_DEFAULTS: dict[str, dict[str, Any]] = {
    "attention_rnn": {"clip_norm": 3.0},
    "basic_improv": {"clip_norm": 5.0},
    "drum_kit": {"clip_norm": 3.0},
}


def default_hparams(config_id: str) -> HParams:
    """Magenta's default hyperparameters for ``config_id`` (UnknownConfigError if unknown)."""
    spec = get_config(config_id)
    values: dict[str, Any] = {
        "rnn_layer_sizes": list(spec.layer_sizes),
        "attn_length": spec.attn_length,
        "learning_rate": 0.001,
        **_FAMILY_DEFAULTS[spec.family],
        **_CONFIG_DEFAULTS.get(config_id, {}),
    }
    return HParams(**values)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:k])
            start = k + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_hparams(text: str, base: HParams) -> HParams:
    """``base`` with the overrides in ``text`` ("batch_size=64,rnn_layer_sizes=[64,64]").

    Raises HParamsError naming the bad part: unknown names, values that don't parse or have
    the wrong type, values out of range.
    """
    values = base.to_dict()
    for part in _split_top_level(text or ""):
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)", part)
        if not m:
            raise HParamsError(f"cannot parse hparams {text!r}: {part!r} is not name=value")
        name, raw = m.group(1), m.group(2).strip()
        if name not in values:
            raise HParamsError(f"unknown hparam {name!r} in {text!r}; known: {', '.join(sorted(values))}")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError) as err:
            raise HParamsError(f"cannot parse hparam {name}={raw!r} in {text!r}") from err
        default = values[name]
        if isinstance(default, list):
            if isinstance(value, int) and not isinstance(value, bool):
                value = [value]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise HParamsError(f"hparam {name} must be a list of integers such as [64,64], not {raw!r}")
            value = list(value)
        elif isinstance(default, bool) or isinstance(value, bool):
            raise HParamsError(f"hparam {name} must be a number, not {raw!r}")
        elif isinstance(default, int):
            if not isinstance(value, int):
                raise HParamsError(f"hparam {name} must be an integer, not {raw!r}")
        elif isinstance(default, float):
            if not isinstance(value, (int, float)):
                raise HParamsError(f"hparam {name} must be a number, not {raw!r}")
            value = float(value)
        values[name] = value
    return HParams.from_dict(values)


# --------------------------------------------------------------------------------------------
# The network


def _scan(step, sequence: tf.Tensor, carry: tuple[tf.Tensor, ...], out_size: int) -> tf.Tensor:
    """Run ``step(carry, x_t) -> (carry, out_t)`` over time-major ``sequence`` [T, B, ...].

    Returns the outputs [T, B, out_size]. Only the outputs are stacked (not the carries, which
    can be large with attention).
    """
    steps = tf.shape(sequence)[0]
    # Read the inputs through a TensorArray: the gradient of ``sequence[t]`` would be a full
    # [T, B, ...] tensor per step.
    inputs = tf.TensorArray(sequence.dtype, size=steps, element_shape=sequence.shape[1:]).unstack(sequence)
    outputs = tf.TensorArray(sequence.dtype, size=steps, element_shape=tf.TensorShape([None, out_size]))

    def body(t, carry, outputs):
        carry, out = step(carry, inputs.read(t))
        return t + 1, carry, outputs.write(t, out)

    _, _, outputs = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), carry, outputs), swap_memory=True
    )
    return outputs.stack()


class MagentaLSTMCell(keras.layers.Layer):
    """TensorFlow's ``BasicLSTMCell``: kernel [input + units, 4 * units] (gates i, j, f, o), bias
    [4 * units], forget bias 1.0 added at run time:

        i, j, f, o = split([x, h] @ kernel + bias)
        c' = c * sigmoid(f + 1.0) + sigmoid(i) * tanh(j);  h' = tanh(c') * sigmoid(o)
    """

    def __init__(self, input_size: int, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input_size, self.units = input_size, units
        self.kernel = self.add_weight(shape=(input_size + units, 4 * units), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(4 * units,), initializer="zeros", name="bias")
        self.built = True

    def call(self, inputs: tf.Tensor, initial_state: tuple[tf.Tensor, tf.Tensor] | None = None) -> tf.Tensor:
        """The whole layer over inputs [B, T, input_size] -> outputs h [B, T, U], from a zero
        state or ``initial_state`` (c [B, U], h [B, U]).

        Runs TensorFlow's fused BlockLSTM op (contrib's LSTMBlockFusedCell, made to be a drop-in
        for BasicLSTMCell: same kernel layout, gate order and forget bias), several times faster
        than a loop of ``step`` on the CPU.
        """
        x = tf.transpose(inputs, [1, 0, 2])  # [T, B, I]
        if initial_state is None:
            zeros = tf.zeros([tf.shape(inputs)[0], self.units], inputs.dtype)
            initial_state = (zeros, zeros)
        zu = tf.zeros([self.units], inputs.dtype)
        out = tf.raw_ops.BlockLSTM(
            seq_len_max=tf.cast(tf.shape(x)[0], tf.int64), x=x, cs_prev=initial_state[0], h_prev=initial_state[1],
            w=self.kernel, wci=zu, wcf=zu, wco=zu, b=self.bias, forget_bias=FORGET_BIAS, cell_clip=-1.0,
            use_peephole=False,
        )
        return tf.transpose(out.h, [1, 0, 2])


class AttentionLSTM(keras.layers.Layer):
    """Magenta's ``AttentionCellWrapper`` around one ``MagentaLSTMCell`` (scope "first").

    Weights (canonical names): ``attention/input/kernel`` [I + A, I] and ``/bias`` mix the last
    read into the input; ``attention/query/kernel`` [2A, A] and ``/bias`` project the cell's
    state (c, h) to the query; ``attention/attn_w`` [A, A] projects window entries to keys;
    ``attention/attn_v`` [A] scores; ``attention/output/kernel`` [2A, A] and ``/bias`` project
    [cell output, read] to the output. A = the cell's units.
    """

    def __init__(self, input_size: int, units: int, attn_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input_size, self.units, self.attn_length = input_size, units, attn_length
        i, a = input_size, units
        self.cell = MagentaLSTMCell(i, a, name="lstm_0")
        w = lambda shape, name, init="glorot_uniform": self.add_weight(shape=shape, initializer=init, name=name)  # noqa: E731
        self.input_kernel = w((i + a, i), "input_kernel")
        self.input_bias = w((i,), "input_bias", "zeros")
        self.query_kernel = w((2 * a, a), "query_kernel")
        self.query_bias = w((a,), "query_bias", "zeros")
        self.attn_w = w((a, a), "attn_w")
        self.attn_v = self.add_weight(
            shape=(a,), initializer=keras.initializers.RandomUniform(-(3.0 / a) ** 0.5, (3.0 / a) ** 0.5), name="attn_v"
        )
        self.output_kernel = w((2 * a, a), "output_kernel")
        self.output_bias = w((a,), "output_bias", "zeros")
        self.built = True

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        """inputs [B, T, input_size] from a zero state -> attention outputs [B, T, A].

        Per step (as ``live.models.cells.rnn_step``): x' = [x, read] @ W_in + b_in; the cell
        steps on x'; query = [c, h] @ W_q + b_q; scores = tanh(keys + query) @ v over the
        window; read = softmax(scores) @ window; out = [h, read] @ W_out + b_out; out and its
        key out @ attn_w replace the oldest window entry. The window is kept as a ring (slot
        t mod L), not shifted like the numpy engine's: a read doesn't depend on the order of the
        entries, and overwriting one slot is much cheaper to differentiate. The parts of the cell's gate
        pre-activation that don't depend on the state are computed for all steps at once:
        (x @ W_in_x + b_in) @ K_x + bias, and [read, h] @ [W_in_read @ K_x; K_h] per step.
        """
        i, a, length = self.input_size, self.units, self.attn_length
        batch = tf.shape(inputs)[0]
        cell = self.cell
        k_x, k_h = cell.kernel[:i], cell.kernel[i:]
        x_part = tf.tensordot(inputs, self.input_kernel[:i], 1) + self.input_bias  # [B, T, I]
        gates_x = tf.transpose(tf.tensordot(x_part, k_x, 1) + cell.bias, [1, 0, 2])  # [T, B, 4A]
        recurrent = tf.concat([tf.matmul(self.input_kernel[i:], k_x), k_h], axis=0)  # [2A, 4A]
        # Variables read once, outside the loop (reads inside it slow the gradient down).
        w_q, b_q, v = tf.identity(self.query_kernel), tf.identity(self.query_bias), tf.identity(self.attn_v)
        w_out, b_out, w_k = tf.identity(self.output_kernel), tf.identity(self.output_bias), tf.identity(self.attn_w)

        slots = tf.range(length)

        def step(carry, gates_t):
            c, h, read, window, keys, oldest = carry
            z = gates_t + tf.matmul(tf.concat([read, h], 1), recurrent)
            ig, j, f, o = tf.split(z, 4, axis=1)
            c = c * tf.sigmoid(f + FORGET_BIAS) + tf.sigmoid(ig) * tf.tanh(j)
            h = tf.tanh(c) * tf.sigmoid(o)
            y = tf.matmul(tf.concat([c, h], 1), w_q) + b_q  # [B, A]
            scores = tf.linalg.matvec(tf.tanh(keys + y[:, None, :]), v)  # [B, L]
            weights = tf.nn.softmax(scores, axis=1)
            read = tf.linalg.matvec(window, weights, transpose_a=True)  # [B, A]
            out = tf.matmul(tf.concat([h, read], 1), w_out) + b_out
            # The window is a ring: the new output replaces the oldest entry in place.
            replace = tf.equal(slots, oldest)[None, :, None]  # [1, L, 1]
            window = tf.where(replace, out[:, None, :], window)
            keys = tf.where(replace, tf.matmul(out, w_k)[:, None, :], keys)
            return (c, h, read, window, keys, (oldest + 1) % length), out

        z = lambda *shape: tf.zeros(shape, inputs.dtype)  # noqa: E731
        carry = (z(batch, a), z(batch, a), z(batch, a), z(batch, length, a), z(batch, length, a), tf.constant(0))
        return tf.transpose(_scan(step, gates_x, carry, a), [1, 0, 2])


class EventRNN(keras.Model):
    """Magenta's event-sequence RNN: inputs [B, T, input_size] -> logits [B, T, num_classes]."""

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        layer_sizes: list[int],
        attn_length: int = 0,
        dropout_keep_prob: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_size, self.num_classes = input_size, num_classes
        self.layer_sizes, self.attn_length = list(layer_sizes), attn_length
        self.dropout_keep_prob = dropout_keep_prob
        self.attention = AttentionLSTM(input_size, layer_sizes[0], attn_length, name="attention") if attn_length else None
        self.lstms = []
        below = input_size
        for k, units in enumerate(layer_sizes):
            if k == 0 and self.attention is not None:
                self.lstms.append(self.attention.cell)
            else:
                self.lstms.append(MagentaLSTMCell(below, units, name=f"lstm_{k}"))
            # An attribute per layer, so tf.train.Checkpoint tracks it (lists are not tracked).
            setattr(self, f"lstm_{k}", self.lstms[-1])
            below = units
        self.output_kernel = self.add_weight(shape=(below, num_classes), initializer="glorot_uniform", name="output_kernel")
        self.output_bias = self.add_weight(shape=(num_classes,), initializer="zeros", name="output_bias")
        self.built = True

    @classmethod
    def for_config(cls, config_id: str, hparams: HParams) -> EventRNN:
        """The network of ``config_id`` with ``hparams``' sizes (the encoder gives input/classes)."""
        encoder = get_config(config_id).make_encoder()
        return cls(
            encoder.input_size,
            encoder.num_classes,
            hparams.rnn_layer_sizes,
            hparams.attn_length,
            hparams.dropout_keep_prob,
            name=config_id,
        )

    def _dropout(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        if training and self.dropout_keep_prob < 1.0:
            return tf.nn.dropout(x, rate=1.0 - self.dropout_keep_prob)
        return x

    def call(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        """inputs float32 [B, T, input_size] -> logits [B, T, num_classes], from a zero state.

        Steps past a sequence's length see padding; their outputs are garbage to be masked,
        and cannot affect earlier steps.
        """
        x = tf.cast(inputs, self.compute_dtype)  # float16 under mixed precision (the logits too)
        for k, lstm in enumerate(self.lstms):
            x = self.attention(x) if k == 0 and self.attention is not None else lstm(x)
            x = self._dropout(x, training)
        return tf.tensordot(x, self.output_kernel, 1) + self.output_bias

    # --- canonical weights (live model file names) ------------------------------------------

    def _named_variables(self) -> dict[str, Any]:
        named: dict[str, Any] = {}
        for k, lstm in enumerate(self.lstms):
            named[live_model.LSTM_KERNEL.format(k)] = lstm.kernel
            named[live_model.LSTM_BIAS.format(k)] = lstm.bias
        if self.attention is not None:
            att = self.attention
            named.update(
                {
                    "attention/input/kernel": att.input_kernel,
                    "attention/input/bias": att.input_bias,
                    "attention/query/kernel": att.query_kernel,
                    "attention/query/bias": att.query_bias,
                    "attention/attn_w": att.attn_w,
                    "attention/attn_v": att.attn_v,
                    "attention/output/kernel": att.output_kernel,
                    "attention/output/bias": att.output_bias,
                }
            )
        named[live_model.OUTPUT_KERNEL] = self.output_kernel
        named[live_model.OUTPUT_BIAS] = self.output_bias
        return named

    def model_config(self, config_id: str, source: dict[str, Any] | None = None) -> live_model.ModelConfig:
        """The live ``ModelConfig`` of this network."""
        return live_model.ModelConfig(
            config_id=config_id,
            layer_sizes=list(self.layer_sizes),
            input_size=self.input_size,
            num_classes=self.num_classes,
            attn_length=self.attn_length,
            attention_scope="first",
            source=dict(source or {}),
        )

    def canonical_weights(self) -> dict[str, np.ndarray]:
        """Every weight as float32 numpy under its live model file name."""
        return {name: np.asarray(keras.ops.convert_to_numpy(v), np.float32) for name, v in self._named_variables().items()}

    def set_canonical_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Assign weights given under live model file names (shapes must match exactly)."""
        named = self._named_variables()
        for name, var in named.items():
            value = np.asarray(weights[name], np.float32)
            if tuple(value.shape) != tuple(var.shape):
                raise ValueError(f"{name}: shape {value.shape}, the network has {tuple(var.shape)}")
            var.assign(value)

    def to_live_model(self, config_id: str, source: dict[str, Any] | None = None) -> live_model.Model:
        """The numpy engine's ``Model`` with these weights."""
        return live_model.Model(self.model_config(config_id, source), self.canonical_weights(), where=f"{config_id} network")


def event_labels(spec: ConfigSpec) -> tuple[int, np.ndarray]:
    """(no-event label, steps per class) for ``spec``'s encoding.

    The no-event label is the class of the encoder's default event (Magenta's
    ``default_event_label``; used for event / no-event accuracy). Steps per class is how many
    time steps each class lasts (1 except performance time shifts; for loss per step).
    """
    encoder = spec.make_encoder()
    no_event = int(encoder.event_to_label(encoder.default_event))
    steps = np.ones(encoder.num_classes, np.float32)
    one_hot = getattr(encoder, "one_hot", None) or getattr(getattr(encoder, "target", None), "one_hot", None)
    if spec.family == PERFORMANCE and one_hot is not None:
        steps = np.array(
            [one_hot.event_to_num_steps(one_hot.decode_event(c)) for c in range(encoder.num_classes)], np.float32
        )
    return no_event, steps
