"""MusicVAE in numpy: Magenta's 2-bar melody model (the ``cat-mel_2bar_small`` design of
magenta's ``music_vae/configs.py`` and ``lstm_models.py``).

A melody of T steps (sixteenth notes; 32 = two bars of 4/4) is a row of classes: 0 = no event
(the note sounding goes on), 1 = note off, 2 + (pitch - ``min_pitch``) = a note starts
(90 classes for MIDI pitches 21..108). Shapes: B = batch, T = steps, C = classes, Z = latent
size, U = units of a layer.

- Encoder: a bidirectional LSTM over the one-hot melody (each layer of a stack reads both
  directions' outputs of the layer below); the last forward output and the first backward
  output, side by side, go through two dense layers to ``mu`` and ``sigma`` (softplus).
- Decoder: an LSTM stack whose initial state is ``tanh`` of a dense layer of ``z`` (split into
  c and h of each layer, bottom first); each step reads the previous step's class (one-hot;
  zeros at the first step) with ``z`` beside it, and a dense layer gives the class logits.

The LSTM is the cell of ``live.models.cells`` (TensorFlow's kernel layout, gates i, j, f, o,
forget bias 1.0 at run time), as in Magenta's LSTMBlockCell. A code ``z`` near ``mu`` decodes to
variations of the melody; walking ``z`` from one melody's ``mu`` to another's morphs between them.

The file is the project's ``.npz`` model container (``live.models.modelfile``) with a config
of format ``magenta-live-vae``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from live.errors import ModelFileError
from live.models import cells
from live.models.model import weight_problems

FORMAT = "magenta-live-vae"
FORMAT_VERSION = 1
NO_EVENT, NOTE_OFF, FIRST_PITCH_CLASS = 0, 1, 2


@dataclass
class VaeConfig:
    """What a MusicVAE file records besides its weights.

    Attributes:
        config_id: Magenta configuration id (``cat-mel_2bar_small``).
        num_classes: classes per step (2 + the number of pitches).
        steps: steps of a phrase (sixteenth notes).
        z_size: size of the latent code.
        encoder_sizes: units of each bidirectional layer (each direction), bottom first.
        decoder_sizes: units of each decoder layer, bottom first.
        min_pitch: the MIDI pitch of class 2.
        source: free-form provenance.
    """

    config_id: str = "cat-mel_2bar_small"
    num_classes: int = 90
    steps: int = 32
    z_size: int = 256
    encoder_sizes: list[int] = field(default_factory=lambda: [512])
    decoder_sizes: list[int] = field(default_factory=lambda: [256, 256])
    min_pitch: int = 21
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def max_pitch(self) -> int:
        return self.min_pitch + self.num_classes - FIRST_PITCH_CLASS - 1

    def to_json_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_json_dict(cls, d: dict[str, Any], where: str = "model file") -> VaeConfig:
        if d.get("format") != FORMAT:
            raise ModelFileError(f"{where}: not a magenta-live MusicVAE (format {d.get('format')!r})")
        if d.get("version") != FORMAT_VERSION:
            raise ModelFileError(f"{where}: MusicVAE format version {d.get('version')} is not supported "
                                 f"(this magenta-live reads version {FORMAT_VERSION})")
        try:
            config = cls(
                config_id=str(d["config_id"]), num_classes=int(d["num_classes"]), steps=int(d["steps"]),
                z_size=int(d["z_size"]), encoder_sizes=[int(u) for u in d["encoder_sizes"]],
                decoder_sizes=[int(u) for u in d["decoder_sizes"]], min_pitch=int(d["min_pitch"]),
                source=dict(d.get("source", {})),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{where}: bad MusicVAE config: {err!r}") from err
        sizes = [config.num_classes, config.steps, config.z_size, *config.encoder_sizes, *config.decoder_sizes]
        if not config.encoder_sizes or not config.decoder_sizes or min(sizes) < 1 or max(sizes) > 1 << 16:
            raise ModelFileError(f"{where}: bad MusicVAE config: sizes {sizes} (each 1..65536, one layer at least)")
        return config


VAE_CONFIGS: dict[str, str] = {
    "cat-mel_2bar_small": "MusicVAE, 2-bar melodies (90 classes, 32 steps): a bidirectional LSTM encoder, an LSTM decoder",
}
"""The MusicVAE configurations magenta-live trains and plays (id -> description)."""


def expected_shapes(config: VaeConfig) -> dict[str, tuple[int, ...]]:
    """The shape every weight must have for ``config``."""
    c, z = config.num_classes, config.z_size
    shapes: dict[str, tuple[int, ...]] = {}
    below = c
    for k, u in enumerate(config.encoder_sizes):
        for direction in ("fw", "bw"):
            shapes[f"encoder/{direction}_{k}/kernel"] = (below + u, 4 * u)
            shapes[f"encoder/{direction}_{k}/bias"] = (4 * u,)
        below = 2 * u
    shapes.update({"encoder/mu/kernel": (below, z), "encoder/mu/bias": (z,),
                   "encoder/sigma/kernel": (below, z), "encoder/sigma/bias": (z,)})
    state = sum(2 * u for u in config.decoder_sizes)
    shapes.update({"decoder/initial/kernel": (z, state), "decoder/initial/bias": (state,)})
    below = c + z
    for k, u in enumerate(config.decoder_sizes):
        shapes[f"decoder/lstm_{k}/kernel"] = (below + u, 4 * u)
        shapes[f"decoder/lstm_{k}/bias"] = (4 * u,)
        below = u
    shapes.update({"decoder/output/kernel": (below, c), "decoder/output/bias": (c,)})
    return shapes


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x).astype(np.float32)


class MusicVae:
    """A MusicVAE in numpy; batched: every method takes B phrases at once.

    >>> vae = load_vae("vae.npz")
    >>> mu, sigma = vae.encode(events)                 # events int [B, T]
    >>> melody = vae.decode(mu, temperature=0.5, rng=np.random.default_rng(0))   # int [B, T]
    """

    def __init__(self, config: VaeConfig, weights: dict[str, np.ndarray], where: str = "MusicVAE") -> None:
        problems = weight_problems(expected_shapes(config), weights)
        if problems:
            raise ModelFileError(f"{where}: weights don't fit {config.config_id}: " + "; ".join(problems))
        self.config = config
        self.weights = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        w = self.weights
        self._enc = [(cells.prepare_lstm(w[f"encoder/fw_{k}/kernel"], w[f"encoder/fw_{k}/bias"]),
                      cells.prepare_lstm(w[f"encoder/bw_{k}/kernel"], w[f"encoder/bw_{k}/bias"]))
                     for k in range(len(config.encoder_sizes))]
        self._dec = [cells.prepare_lstm(w[f"decoder/lstm_{k}/kernel"], w[f"decoder/lstm_{k}/bias"])
                     for k in range(len(config.decoder_sizes))]

    @property
    def config_id(self) -> str:
        return self.config.config_id

    # -- encoder -----------------------------------------------------------------------------

    def encode(self, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Classes int [B, T] -> (mu [B, Z], sigma [B, Z]) of the latent code's distribution."""
        events = np.asarray(events)
        if events.ndim != 2 or events.size == 0:
            raise ValueError(f"encode wants classes [B, T], got shape {events.shape}")
        if events.min() < 0 or events.max() >= self.config.num_classes:
            raise ValueError(f"classes must lie in 0..{self.config.num_classes - 1}")
        batch, steps = events.shape
        x = None  # the layer below's outputs [B, T, 2U]; the first layer reads the one-hot classes
        last_fw = first_bw = None
        for fw, bw in self._enc:
            outs = []
            for p, order in ((fw, range(steps)), (bw, range(steps - 1, -1, -1))):
                xw = p.wx[events] if x is None else x @ p.wx  # [B, T, 4U]: every step's input projected at once
                c = np.zeros((batch, p.units), np.float32)
                h = np.zeros((batch, p.units), np.float32)
                out = np.empty((batch, steps, p.units), np.float32)
                for t in order:
                    c, h = cells.lstm_step_projected(p, xw[:, t], c, h)
                    out[:, t] = h
                outs.append(out)
            last_fw, first_bw = outs[0][:, -1], outs[1][:, 0]
            x = np.concatenate(outs, axis=2)  # [B, T, 2U]: the next layer reads both directions
        code = np.concatenate([last_fw, first_bw], axis=1)  # [B, 2U]
        w = self.weights
        mu = code @ w["encoder/mu/kernel"] + w["encoder/mu/bias"]
        sigma = _softplus(code @ w["encoder/sigma/kernel"] + w["encoder/sigma/bias"])
        return mu, sigma

    # -- decoder -----------------------------------------------------------------------------

    def initial_state(self, z: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The decoder's (c, h) per layer for codes z [B, Z]."""
        w = self.weights
        flat = np.tanh(np.asarray(z, np.float32) @ w["decoder/initial/kernel"] + w["decoder/initial/bias"])
        state, at = [], 0
        for u in self.config.decoder_sizes:
            state.append((flat[:, at : at + u], flat[:, at + u : at + 2 * u]))
            at += 2 * u
        return state

    def _step(self, state: list[tuple[np.ndarray, np.ndarray]], xw: np.ndarray) -> tuple[list, np.ndarray]:
        """One decoder step: the bottom layer's projected input [B, 4U] -> (new state, logits [B, C])."""
        new, below = [], None
        for p, (c, h) in zip(self._dec, state):
            c, h = cells.lstm_step_projected(p, xw if below is None else below @ p.wx, c, h)
            new.append((c, h))
            below = h
        return new, below @ self.weights["decoder/output/kernel"] + self.weights["decoder/output/bias"]

    def _inputs(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The bottom layer's input projection, split: (z's share [B, 4U], computed once per
        phrase; the rows of the previous step's class [C, 4U]) ."""
        wx = self._dec[0].wx
        classes = self.config.num_classes
        return z @ wx[classes:], wx[:classes]

    def logits(self, z: np.ndarray, events: np.ndarray) -> np.ndarray:
        """Teacher-forced: the logits [B, T, C] of each step of ``events`` (int [B, T]) given
        the steps before it and the codes z [B, Z]."""
        z = np.asarray(z, np.float32)
        events = np.asarray(events)
        batch, steps = events.shape
        from_z, from_class = self._inputs(z)
        state = self.initial_state(z)
        out = np.empty((batch, steps, self.config.num_classes), np.float32)
        for t in range(steps):
            xw = from_z if t == 0 else from_z + from_class[events[:, t - 1]]  # the first step reads no class
            state, out[:, t] = self._step(state, xw)
        return out

    def decode(self, z: np.ndarray, temperature: float = 1.0, rng: np.random.Generator | None = None,
               steps: int | None = None, bias: np.ndarray | None = None) -> np.ndarray:
        """Codes z [B, Z] -> sampled classes int [B, steps] (default: the config's steps).

        ``temperature`` divides the logits (0 takes the most likely class each step); ``bias``
        [C] is added to every step's logits first (the scale lock: -1e9 rules a class out)."""
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.config.z_size:
            raise ValueError(f"decode wants codes [B, {self.config.z_size}], got shape {z.shape}")
        rng = rng or np.random.default_rng()
        steps = steps or self.config.steps
        batch = z.shape[0]
        from_z, from_class = self._inputs(z)
        state = self.initial_state(z)
        out = np.empty((batch, steps), np.int64)
        xw = from_z
        for t in range(steps):
            state, logits = self._step(state, xw)
            if bias is not None:
                logits = logits + bias
            if temperature <= 0:
                chosen = logits.argmax(axis=1)
            else:
                probs = cells.softmax(logits, temperature)
                chosen = (probs.cumsum(axis=1) > rng.random((batch, 1))).argmax(axis=1)
            out[:, t] = chosen
            xw = from_z + from_class[chosen]
        return out


# -- melodies <-> classes -------------------------------------------------------------------------


def pitch_class_index(pitch: int, min_pitch: int = 21, num_classes: int = 90) -> int:
    """The class that starts MIDI ``pitch``, moved by octaves into the range first."""
    max_pitch = min_pitch + num_classes - FIRST_PITCH_CLASS - 1
    while pitch < min_pitch:
        pitch += 12
    while pitch > max_pitch:
        pitch -= 12
    return FIRST_PITCH_CLASS + pitch - min_pitch


def melody_classes(notes: list[tuple[int, int, int]], steps: int, min_pitch: int = 21, num_classes: int = 90) -> np.ndarray:
    """(start step, end step, pitch) notes, monophonic -> classes int [steps]. A note that
    starts where another sounds ends that one; a note outside the pitch range is moved by
    octaves into it; a note-off goes where a note ends and no other starts."""
    row = np.full(steps, NO_EVENT, np.int64)
    for start, end, pitch in sorted(notes):
        if not 0 <= start < steps:
            continue
        row[start] = pitch_class_index(pitch, min_pitch, num_classes)
        if end < steps and row[end] == NO_EVENT:
            row[end] = NOTE_OFF
    return row


def events_classes(events: list[int], min_pitch: int = 21, num_classes: int = 90) -> np.ndarray:
    """Melody events as note-seq writes them (-2 no event, -1 note off, else a MIDI pitch) ->
    classes int [len(events)], pitches moved by octaves into the range."""
    special = {-2: NO_EVENT, -1: NOTE_OFF}
    return np.array([special[e] if e in special else pitch_class_index(e, min_pitch, num_classes) for e in events], np.int64)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation from code ``a`` (t = 0) to ``b`` (t = 1), as Magenta interpolates."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)


def is_vae_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a MusicVAE file (its config read, not its weights)."""
    import zipfile

    from live.models.modelfile import read_config

    try:
        config = read_config(path)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT


def classes_notes(row: np.ndarray, min_pitch: int = 21) -> list[tuple[int, int, int]]:
    """classes int [T] -> (start step, end step, pitch) notes (the inverse of melody_classes)."""
    notes, current = [], None
    for t, c in enumerate(np.asarray(row).tolist()):
        if c == NO_EVENT:
            continue
        if current is not None:
            notes.append((current[0], t, current[1]))
            current = None
        if c >= FIRST_PITCH_CLASS:
            current = (t, min_pitch + c - FIRST_PITCH_CLASS)
    if current is not None:
        notes.append((current[0], len(row), current[1]))
    return notes


# -- files -------------------------------------------------------------------------------------


def save_vae(vae: MusicVae, path: str | os.PathLike, float16: bool = False) -> None:
    """Write ``vae`` to ``path`` in the project's ``.npz`` container, atomically."""
    from live.models.modelfile import write_container

    write_container(path, vae.config.to_json_dict(), vae.weights, float16)


def load_vae(path: str | os.PathLike) -> MusicVae:
    """Read a MusicVAE file; ModelFileError says what is wrong with a bad one."""
    from live.models.modelfile import read_container

    path = os.fspath(path)
    config, arrays = read_container(path)
    return MusicVae(VaeConfig.from_json_dict(config, path), arrays, where=path)
