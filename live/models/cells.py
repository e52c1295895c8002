"""The numeric core: Magenta's RNN cells as pure numpy functions, one time step at a time.

Shapes: B = batch (streams stepping together), I = input size, U = units of a layer,
A = attention size (the wrapped cell's output size), V = attention vector size (= A in
Magenta), L = attention length (steps remembered), C = output classes.

The LSTM is TensorFlow's BasicLSTMCell: one kernel over [x, h] giving gates in the order
i (input), j (new input), f (forget), o (output); the forget gate gets +1.0 before its sigmoid.
``prepare_lstm`` rearranges a kernel once so a step needs two matmuls and a single tanh:
sigmoid(z) = 0.5 + 0.5 * tanh(z / 2), so the i, f, o columns are pre-halved and the forget
bias is folded into the bias.

Attention is the AttentionCellWrapper Magenta uses (Cheng et al. 2016): it mixes the last
attention read into the input, runs the wrapped cell, attends over the last L outputs with the
cell's full state as the query, and projects [output, read] to the new output, which joins
the window. Attention weights don't depend on the order of the window, but the window is kept
oldest-first like TensorFlow's, so states can be compared with a metagraph's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class LSTMParams:
    """One BasicLSTMCell, rearranged for stepping. See ``prepare_lstm``."""

    wx: np.ndarray  # [I, 4U] input part of the kernel, i/f/o columns halved
    wh: np.ndarray  # [U, 4U] recurrent part
    b: np.ndarray  # [4U] bias, forget bias folded in, i/f/o halved
    units: int


def prepare_lstm(kernel: np.ndarray, bias: np.ndarray, forget_bias: float = 1.0) -> LSTMParams:
    """Rearrange a TensorFlow BasicLSTMCell kernel [I + U, 4U] and bias [4U] for ``lstm_step``."""
    units = kernel.shape[1] // 4
    scale = np.full(4 * units, 0.5, np.float32)
    scale[units : 2 * units] = 1.0  # j goes through tanh itself
    b = bias.astype(np.float32).copy()
    b[2 * units : 3 * units] += forget_bias
    k = kernel.astype(np.float32) * scale
    input_size = kernel.shape[0] - units
    return LSTMParams(
        wx=np.ascontiguousarray(k[:input_size]),
        wh=np.ascontiguousarray(k[input_size:]),
        b=b * scale,
        units=units,
    )


def lstm_step(
    p: LSTMParams, x: np.ndarray, c: np.ndarray, h: np.ndarray, hw: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One BasicLSTMCell step. x [B, I], c [B, U], h [B, U] -> (new c [B, U], new h [B, U])."""
    return lstm_step_projected(p, x @ p.wx, c, h, hw)


def recurrent_term(p: LSTMParams, h: np.ndarray) -> np.ndarray:
    """The part of a step's gates that does not depend on its input: h [B, U] -> [B, 4U]
    (h @ p.wh + p.b). It can be worked out before the input is known (``prepare``)."""
    return h @ p.wh + p.b


def lstm_step_projected(
    p: LSTMParams, xw: np.ndarray, c: np.ndarray, h: np.ndarray, hw: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``lstm_step`` with the input already projected: xw [B, 4U] = x @ p.wx. A one-hot input's
    projection is a row of ``p.wx``, and a whole known sequence's is one matmul, so callers that
    know their inputs ahead (MusicVAE's encoder) skip a matmul per step. ``hw``: the
    ``recurrent_term`` of h when it was worked out ahead (the same numbers either way)."""
    u = p.units
    t = np.tanh(xw + (recurrent_term(p, h) if hw is None else hw))  # [B, 4U]: tanh of j, tanh(z/2) of i, f, o
    g = 0.5 * t + 0.5  # sigmoid of i, f, o (the j columns are unused)
    c = c * g[:, 2 * u : 3 * u] + g[:, :u] * t[:, u : 2 * u]
    h = np.tanh(c) * g[:, 3 * u :]
    return c, h


@dataclass(frozen=True)
class AttentionParams:
    """AttentionCellWrapper weights (names as in TensorFlow in the comments)."""

    w_in: np.ndarray  # [I + A, I]   attention_cell_wrapper/kernel: mixes the last read into x
    b_in: np.ndarray  # [I]
    w_query: np.ndarray  # [S, V]    attention/kernel: S = size of the wrapped cell's full state
    b_query: np.ndarray  # [V]
    w_keys: np.ndarray  # [A, V]     attention/attn_w (a 1x1 convolution)
    v: np.ndarray  # [V]             attention/attn_v
    w_out: np.ndarray  # [A + A, A]  attn_output_projection/kernel: [cell output, read] -> output
    b_out: np.ndarray  # [A]
    length: int  # L, steps in the attention window


def attention_read(
    p: AttentionParams, query: np.ndarray, window: np.ndarray, keys: np.ndarray
) -> np.ndarray:
    """Attend over the window. query [B, S], window [B, L, A], keys [B, L, V] -> read [B, A]."""
    y = query @ p.w_query + p.b_query  # [B, V]
    scores = np.tanh(keys + y[:, None, :]) @ p.v  # [B, L]
    scores -= scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("bl,bla->ba", weights, window)  # [B, A]


def attention_push(
    p: AttentionParams, output: np.ndarray, window: np.ndarray, keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Drop the oldest step of the window and append ``output`` [B, A] with its key [B, V]."""
    window = np.concatenate([window[:, 1:], output[:, None, :]], axis=1)  # [B, L, A]
    keys = np.concatenate([keys[:, 1:], (output @ p.w_keys)[:, None, :]], axis=1)  # [B, L, V]
    return window, keys


@dataclass
class State:
    """The recurrent state of B streams.

    A step makes a new State and never writes into an old one's arrays, so a State may be
    kept as it is to go back to (harmonize's ``_Mark``).

    c, h: one [B, U] array per LSTM layer. With attention: ``read`` [B, A] the last attention
    read, ``window`` [B, L, A] the last L outputs of the wrapped cell (oldest first) and ``keys``
    [B, L, V] their projections (cached so a step projects only the newest output).
    hw: without attention, each layer's ``recurrent_term`` [B, 4U] once ``prepare`` has worked
    it out (None until then; a copy, ``take`` or ``stack`` leaves it out).
    """

    c: list[np.ndarray]
    h: list[np.ndarray]
    read: np.ndarray | None = None
    window: np.ndarray | None = None
    keys: np.ndarray | None = None
    hw: list[np.ndarray] | None = None

    @property
    def batch_size(self) -> int:
        return self.c[0].shape[0]

    def _map(self, fn: Callable[[np.ndarray], np.ndarray]) -> "State":
        opt = lambda a: None if a is None else fn(a)  # noqa: E731
        return State([fn(a) for a in self.c], [fn(a) for a in self.h], opt(self.read), opt(self.window), opt(self.keys))

    def copy(self) -> "State":
        """An independent copy (for forking a stream)."""
        return self._map(np.copy)

    def take(self, rows: np.ndarray | list[int]) -> "State":
        """A state made of the given batch rows, in that order (for beam search)."""
        idx = np.asarray(rows, dtype=np.intp)
        return self._map(lambda a: a[idx])

    @staticmethod
    def stack(states: list["State"]) -> "State":
        """Concatenate states along the batch axis (to step several streams together)."""
        first = states[0]
        cat = lambda name: None if getattr(first, name) is None else np.concatenate([getattr(s, name) for s in states])  # noqa: E731
        return State(
            [np.concatenate([s.c[i] for s in states]) for i in range(len(first.c))],
            [np.concatenate([s.h[i] for s in states]) for i in range(len(first.h))],
            cat("read"),
            cat("window"),
            cat("keys"),
        )


def zero_state(
    layer_sizes: list[int], batch_size: int, attention: AttentionParams | None, attention_size: int = 0
) -> State:
    """All-zero state, like TensorFlow's ``cell.zero_state``."""
    z = lambda *shape: np.zeros(shape, np.float32)  # noqa: E731
    state = State([z(batch_size, u) for u in layer_sizes], [z(batch_size, u) for u in layer_sizes])
    if attention is not None:
        v = attention.w_keys.shape[1]
        state.read = z(batch_size, attention_size)
        state.window = z(batch_size, attention.length, attention_size)
        state.keys = z(batch_size, attention.length, v)
    return state


def rnn_step(
    layers: list[LSTMParams],
    attention: AttentionParams | None,
    attention_scope: str,
    x: np.ndarray,
    state: State,
) -> tuple[np.ndarray, State]:
    """One step of the stacked cell. x [B, I] -> (top output [B, U_last or A], new state).

    attention_scope: "first" (the wrapper around layer 0, as Magenta builds since 2017) or
    "stack" (around the whole stack, as older bundles have it); ignored without attention.
    """
    if attention is None:
        return stack_step(layers, x @ layers[0].wx, state)
    c, h = list(state.c), list(state.h)
    new = State(c, h)

    x = np.concatenate([x, state.read], axis=1) @ attention.w_in + attention.b_in  # [B, I]
    wrapped = layers[:1] if attention_scope == "first" else layers
    for i, p in enumerate(wrapped):
        c[i], h[i] = lstm_step(p, x, c[i], h[i])
        x = h[i]
    query = np.concatenate([a for i in range(len(wrapped)) for a in (c[i], h[i])], axis=1)  # [B, S]
    read = attention_read(attention, query, state.window, state.keys)
    out = np.concatenate([x, read], axis=1) @ attention.w_out + attention.b_out  # [B, A]
    new.read = read
    new.window, new.keys = attention_push(attention, out, state.window, state.keys)
    x = out
    for i in range(len(wrapped), len(layers)):
        c[i], h[i] = lstm_step(layers[i], x, c[i], h[i])
        x = h[i]
    return x, new


def stack_step(layers: list[LSTMParams], xw: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """One step of a stack of LSTM layers (no attention), the first layer's input already
    projected: xw [B, 4U] = x @ layers[0].wx (for a one-hot x, a row of that kernel).
    -> (top output [B, U_last], new state)."""
    c, h = list(state.c), list(state.h)
    hw = state.hw or [None] * len(layers)
    c[0], h[0] = lstm_step_projected(layers[0], xw, c[0], h[0], hw[0])
    for i in range(1, len(layers)):
        c[i], h[i] = lstm_step(layers[i], h[i - 1], c[i], h[i], hw[i])
    return h[-1], State(c, h)


def prepare(layers: list[LSTMParams], state: State) -> None:
    """Work out ``state.hw`` (each layer's ``recurrent_term``) ahead of the next step, which then
    costs about half its multiplications (and touches half the weights) when its input comes.
    A memo of numbers the state already fixes: the next step's result is the same."""
    if state.hw is None:
        state.hw = [recurrent_term(p, h) for p, h in zip(layers, state.h)]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax over the last axis of logits / temperature (temperature > 0)."""
    z = logits / temperature if temperature != 1.0 else logits
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
