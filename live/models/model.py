"""A loaded model: weights plus a versioned config, stepped one time step at a time."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from live.errors import ModelFileError
from live.models import cells
from live.models.configs import ConfigSpec, get_config
from live.models.encodings.base import EventEncoder

FORMAT = "magenta-live-model"
FORMAT_VERSION = 1

# Canonical weight names inside a model (and a model file).
LSTM_KERNEL, LSTM_BIAS = "lstm_{}/kernel", "lstm_{}/bias"
ATTENTION_NAMES = (
    "attention/input/kernel",
    "attention/input/bias",
    "attention/query/kernel",
    "attention/query/bias",
    "attention/attn_w",
    "attention/attn_v",
    "attention/output/kernel",
    "attention/output/bias",
)
OUTPUT_KERNEL, OUTPUT_BIAS = "output/kernel", "output/bias"


@dataclass
class ModelConfig:
    """Everything besides the weights that a model file records.

    Attributes:
        config_id: Magenta configuration id (see ``live.models.configs``).
        layer_sizes: units of each LSTM layer, bottom first.
        input_size: model input width (the encoding's input size).
        num_classes: softmax width (the encoding's class count).
        attn_length: attention window in steps; 0 without attention.
        attention_scope: "first" (wrapper around layer 0) or "stack" (around all layers).
        source: free-form provenance (bundle file, training run, ...).
    """

    config_id: str
    layer_sizes: list[int]
    input_size: int
    num_classes: int
    attn_length: int = 0
    attention_scope: str = "first"
    source: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_json_dict(cls, d: dict[str, Any], where: str = "model file") -> "ModelConfig":
        if d.get("format") != FORMAT:
            raise ModelFileError(f"{where}: not a magenta-live model (format {d.get('format')!r})")
        if d.get("version") != FORMAT_VERSION:
            raise ModelFileError(
                f"{where}: model format version {d.get('version')} is not supported "
                f"(this magenta-live reads version {FORMAT_VERSION})"
            )
        try:
            return cls(
                config_id=str(d["config_id"]),
                layer_sizes=[int(u) for u in d["layer_sizes"]],
                input_size=int(d["input_size"]),
                num_classes=int(d["num_classes"]),
                attn_length=int(d.get("attn_length", 0)),
                attention_scope=str(d.get("attention_scope", "first")),
                source=dict(d.get("source", {})),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{where}: bad model config: {err!r}") from err


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The shape every weight must have for ``config``."""
    sizes, attention = config.layer_sizes, config.attn_length > 0
    wrapped = (1 if config.attention_scope == "first" else len(sizes)) if attention else 0
    a = sizes[wrapped - 1] if attention else 0  # attention size = wrapped cell's output size
    shapes: dict[str, tuple[int, ...]] = {}
    below = config.input_size
    for i, u in enumerate(sizes):
        shapes[LSTM_KERNEL.format(i)] = (below + u, 4 * u)
        shapes[LSTM_BIAS.format(i)] = (4 * u,)
        below = a if attention and i == wrapped - 1 else u
    if attention:
        state = sum(2 * u for u in sizes[:wrapped])
        i = config.input_size
        shapes.update(
            {
                "attention/input/kernel": (i + a, i),
                "attention/input/bias": (i,),
                "attention/query/kernel": (state, a),
                "attention/query/bias": (a,),
                "attention/attn_w": (a, a),
                "attention/attn_v": (a,),
                "attention/output/kernel": (2 * a, a),
                "attention/output/bias": (a,),
            }
        )
    top = a if attention and wrapped == len(sizes) else sizes[-1]
    shapes[OUTPUT_KERNEL] = (top, config.num_classes)
    shapes[OUTPUT_BIAS] = (config.num_classes,)
    return shapes


def weight_problems(expected: dict[str, tuple[int, ...]], weights: dict[str, np.ndarray]) -> list[str]:
    """Every missing, unexpected or misshapen weight of ``weights`` against ``expected`` shapes."""
    problems = [f"missing {n} {s}" for n, s in expected.items() if n not in weights]
    problems += [f"unexpected {n} {tuple(weights[n].shape)}" for n in weights if n not in expected]
    problems += [
        f"{n} has shape {tuple(weights[n].shape)}, expected {s}"
        for n, s in expected.items()
        if n in weights and tuple(weights[n].shape) != s
    ]
    return problems


def check_weights(config: ModelConfig, weights: dict[str, np.ndarray], where: str) -> None:
    """Raise ModelFileError naming every missing, unexpected or misshapen weight."""
    problems = weight_problems(expected_shapes(config), weights)
    if problems:
        raise ModelFileError(f"{where}: weights don't fit {config.config_id} {config.layer_sizes}: " + "; ".join(problems))


class Model:
    """A Magenta-family RNN in numpy.

    >>> model = live.models.load("lookback.mag")
    >>> state = model.initial_state(batch_size=1)
    >>> probs, state = model.step(x, state)   # x float32 [1, input_size] -> [1, num_classes]
    """

    def __init__(self, config: ModelConfig, weights: dict[str, np.ndarray], where: str = "model") -> None:
        self.spec: ConfigSpec = get_config(config.config_id)
        check_weights(config, weights, where)
        self.config = config
        self.weights = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        w = self.weights
        self._layers = [
            cells.prepare_lstm(w[LSTM_KERNEL.format(i)], w[LSTM_BIAS.format(i)]) for i in range(len(config.layer_sizes))
        ]
        self._attention = None
        if config.attn_length:
            self._attention = cells.AttentionParams(
                w_in=w["attention/input/kernel"],
                b_in=w["attention/input/bias"],
                w_query=w["attention/query/kernel"],
                b_query=w["attention/query/bias"],
                w_keys=w["attention/attn_w"],
                v=w["attention/attn_v"],
                w_out=w["attention/output/kernel"],
                b_out=w["attention/output/bias"],
                length=config.attn_length,
            )
        self._w_out = w[OUTPUT_KERNEL]
        self._b_out = w[OUTPUT_BIAS]

    @property
    def config_id(self) -> str:
        return self.config.config_id

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def input_size(self) -> int:
        return self.config.input_size

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def __repr__(self) -> str:
        attn = f", attn_length={self.config.attn_length}" if self.config.attn_length else ""
        return f"Model({self.config_id!r}, layers={self.config.layer_sizes}{attn})"

    def make_encoder(self) -> EventEncoder:
        """A fresh incremental encoder for this model's configuration."""
        encoder = self.spec.make_encoder()
        if (encoder.input_size, encoder.num_classes) != (self.input_size, self.num_classes):
            raise ModelFileError(
                f"{self.config_id}: the model has input {self.input_size} / {self.num_classes} classes "
                f"but the encoding has {encoder.input_size} / {encoder.num_classes}"
            )
        return encoder

    def initial_state(self, batch_size: int = 1) -> cells.State:
        """The zero state for ``batch_size`` streams."""
        a = self.weights["attention/output/bias"].shape[0] if self._attention else 0
        return cells.zero_state(self.config.layer_sizes, batch_size, self._attention, a)

    def logits(self, x: np.ndarray, state: cells.State) -> tuple[np.ndarray, cells.State]:
        """One step. x float32 [B, input_size] -> (logits [B, num_classes], new state)."""
        top, state = cells.rnn_step(self._layers, self._attention, self.config.attention_scope, x, state)
        return top @ self._w_out + self._b_out, state

    def prepare(self, state: cells.State) -> None:
        """Work out what the next step from ``state`` can before its input is known (without
        attention: ``cells.prepare``), so that step costs less when the input comes. Its
        result is the same either way."""
        if self._attention is None:
            cells.prepare(self._layers, state)

    def logits_of_class(self, index: int, state: cells.State) -> tuple[np.ndarray, cells.State]:
        """``logits`` for a batch of one whose input is the one-hot of class ``index`` (an
        encoder with ``one_hot_input``): the same numbers, with the first layer's input
        projection taken as its kernel's row instead of multiplied out (the one-hot times the
        kernel is that row, exactly). -> (logits [1, num_classes], new state)."""
        if self._attention is not None:
            x = np.zeros((1, self.input_size), np.float32)
            x[0, index] = 1.0
            return self.logits(x, state)
        top, state = cells.stack_step(self._layers, self._layers[0].wx[index : index + 1], state)
        return top @ self._w_out + self._b_out, state

    def step(self, x: np.ndarray, state: cells.State, temperature: float = 1.0) -> tuple[np.ndarray, cells.State]:
        """One step. x float32 [B, input_size] -> (softmax of logits / temperature [B, num_classes], new state)."""
        logits, state = self.logits(np.asarray(x, np.float32), state)
        return cells.softmax(logits, temperature), state
