"""Magenta's own MusicVAE checkpoints (TF1) into the numpy runtime's file.

Magenta publishes its melody MusicVAEs (``cat-mel_2bar_small``, ``cat-mel_2bar_big``) as TF1
checkpoints: ``NAME.ckpt.index`` and ``NAME.ckpt.data-00000-of-00001``. Their variables, as
magenta's ``music_vae/lstm_models.py`` names them (the names magenta.js also reads):

- ``encoder/cell_K/bidirectional_rnn/{fw,bw}/multi_rnn_cell/cell_0/lstm_cell/{kernel,bias}``
  (layer K of the bidirectional stack);
- ``encoder/mu/*`` and ``encoder/sigma/*`` (the dense layers to the code);
- ``decoder/z_to_initial_state/*``, ``decoder/multi_rnn_cell/cell_K/lstm_cell/*`` and
  ``decoder/output_projection/*``.

Sizes come from the shapes. TensorFlow reads the checkpoint (only here: the live path never
imports it). Optimizer slots and the global step are ignored.
"""

from __future__ import annotations

import os
import re

import numpy as np

from live.errors import ModelFileError
from live.models.vae import MusicVae, VaeConfig

_ENCODER = re.compile(r"^encoder/cell_(\d+)/bidirectional_rnn/(fw|bw)/multi_rnn_cell/cell_0/lstm_cell/(kernel|bias)$")
_DECODER = re.compile(r"^decoder/multi_rnn_cell/cell_(\d+)/lstm_cell/(kernel|bias)$")
_DENSE = {
    "encoder/mu": "encoder/mu", "encoder/sigma": "encoder/sigma",
    "decoder/z_to_initial_state": "decoder/initial", "decoder/output_projection": "decoder/output",
}


def checkpoint_prefix(path: str | os.PathLike) -> str:
    """A checkpoint given by its prefix, its ``.index`` or one of its data files -> the prefix."""
    text = os.fspath(path)
    text = re.sub(r"\.(index|meta|data-\d+-of-\d+)$", "", text)
    if not os.path.exists(text + ".index"):
        raise FileNotFoundError(f"no TensorFlow checkpoint {text} ({text}.index does not exist)")
    return text


def read_checkpoint(prefix: str) -> dict[str, np.ndarray]:
    from tensorflow.python.training import py_checkpoint_reader  # noqa: PLC0415 (TF only here)

    try:
        reader = py_checkpoint_reader.NewCheckpointReader(prefix)
        return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    except Exception as err:  # TensorFlow's DataLossError and friends
        raise ModelFileError(f"{prefix}: an unreadable TensorFlow checkpoint ({err})") from err


def vae_from_variables(variables: dict[str, np.ndarray], where: str, source: dict | None = None) -> MusicVae:
    """The MusicVAE of a Magenta checkpoint's variables; ModelFileError names what is missing."""
    weights: dict[str, np.ndarray] = {}
    enc_layers: set[int] = set()
    dec_layers: set[int] = set()
    for name, value in variables.items():
        if m := _ENCODER.match(name):
            layer, direction, kind = int(m.group(1)), m.group(2), m.group(3)
            weights[f"encoder/{direction}_{layer}/{kind}"] = value
            enc_layers.add(layer)
        elif m := _DECODER.match(name):
            weights[f"decoder/lstm_{m.group(1)}/{m.group(2)}"] = value
            dec_layers.add(int(m.group(1)))
        elif (base := name.rsplit("/", 1)[0]) in _DENSE and name.endswith(("/kernel", "/bias")):
            weights[f"{_DENSE[base]}/{name.rsplit('/', 1)[1]}"] = value
    needed = ("encoder/mu/bias", "decoder/output/bias", "encoder/fw_0/bias", "decoder/lstm_0/bias")
    missing = [n for n in needed if n not in weights]
    if missing or enc_layers != set(range(len(enc_layers))) or dec_layers != set(range(len(dec_layers))):
        raise ModelFileError(f"{where}: not a Magenta melody MusicVAE checkpoint (missing {', '.join(missing) or 'a layer'}; "
                             "expected encoder/cell_K/bidirectional_rnn/..., encoder/mu, decoder/multi_rnn_cell/..., "
                             "decoder/output_projection)")
    config = VaeConfig(
        config_id="cat-mel_2bar_small",
        num_classes=int(weights["decoder/output/bias"].shape[0]),
        z_size=int(weights["encoder/mu/bias"].shape[0]),
        encoder_sizes=[int(weights[f"encoder/fw_{k}/bias"].shape[0]) // 4 for k in range(len(enc_layers))],
        decoder_sizes=[int(weights[f"decoder/lstm_{k}/bias"].shape[0]) // 4 for k in range(len(dec_layers))],
        source=dict(source or {}),
    )
    bad = [n for n, w in weights.items() if not np.isfinite(w).all()]
    if bad:
        raise ModelFileError(f"{where}: weights {', '.join(sorted(bad))} hold NaN or infinite values")
    return MusicVae(config, weights, where=where)


def load_vae_checkpoint(path: str | os.PathLike) -> MusicVae:
    """A Magenta MusicVAE checkpoint (prefix, ``.index`` or data file) as the numpy runtime's model."""
    prefix = checkpoint_prefix(path)
    return vae_from_variables(read_checkpoint(prefix), prefix, {"imported_from": os.path.basename(prefix)})
