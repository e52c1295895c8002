"""MusicVAE in Keras: the network of ``live.models.vae`` (Magenta's ``cat-mel_2bar_small``
design), its loss, and the hand-over of its weights to the numpy runtime.

Loss (Magenta's ``MusicVAE``): the reconstruction's cross-entropy summed over a phrase's steps
(teacher-forced: each step sees the true class before it), plus ``beta`` times the KL
divergence of ``N(mu, sigma)`` from ``N(0, 1)`` beyond ``free_bits`` (in nats:
``max(KL - free_bits, 0)``), ``beta`` rising towards ``max_beta`` as ``1 - beta_rate ** step``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from live.models.vae import MusicVae, VaeConfig
from training.model import MagentaLSTMCell


class MusicVaeNet(keras.Model):
    """Encoder and decoder; every weight under its name in the live file (``expected_shapes``)."""

    def __init__(self, config: VaeConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        c, z = config.num_classes, config.z_size
        self.fw, self.bw = [], []
        below = c
        for k, u in enumerate(config.encoder_sizes):
            self.fw.append(MagentaLSTMCell(below, u, name=f"fw_{k}"))
            self.bw.append(MagentaLSTMCell(below, u, name=f"bw_{k}"))
            setattr(self, f"encoder_fw_{k}", self.fw[-1])  # tracked by checkpoints (lists are not)
            setattr(self, f"encoder_bw_{k}", self.bw[-1])
            below = 2 * u
        init = keras.initializers.RandomNormal(stddev=0.001)  # as Magenta's mu and sigma layers
        self.mu_kernel = self.add_weight(shape=(below, z), initializer=init, name="mu_kernel")
        self.mu_bias = self.add_weight(shape=(z,), initializer="zeros", name="mu_bias")
        self.sigma_kernel = self.add_weight(shape=(below, z), initializer=init, name="sigma_kernel")
        self.sigma_bias = self.add_weight(shape=(z,), initializer="zeros", name="sigma_bias")
        state = sum(2 * u for u in config.decoder_sizes)
        self.initial_kernel = self.add_weight(shape=(z, state), initializer="glorot_uniform", name="initial_kernel")
        self.initial_bias = self.add_weight(shape=(state,), initializer="zeros", name="initial_bias")
        self.dec = []
        below = c + z
        for k, u in enumerate(config.decoder_sizes):
            self.dec.append(MagentaLSTMCell(below, u, name=f"dec_{k}"))
            setattr(self, f"decoder_lstm_{k}", self.dec[-1])
            below = u
        self.output_kernel = self.add_weight(shape=(below, c), initializer="glorot_uniform", name="output_kernel")
        self.output_bias = self.add_weight(shape=(c,), initializer="zeros", name="output_bias")
        self.built = True

    def encode(self, events: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Classes int [B, T] -> (mu, sigma) [B, Z]."""
        x = tf.one_hot(events, self.config.num_classes)
        last_fw = first_bw = None
        for fw, bw in zip(self.fw, self.bw):
            out_fw = fw(x)
            out_bw = tf.reverse(bw(tf.reverse(x, [1])), [1])  # back in time order
            last_fw, first_bw = out_fw[:, -1], out_bw[:, 0]
            x = tf.concat([out_fw, out_bw], axis=2)
        code = tf.concat([last_fw, first_bw], axis=1)
        mu = code @ self.mu_kernel + self.mu_bias
        sigma = tf.nn.softplus(code @ self.sigma_kernel + self.sigma_bias)
        return mu, sigma

    def logits(self, z: tf.Tensor, events: tf.Tensor) -> tf.Tensor:
        """Teacher-forced decoder: codes [B, Z] and classes int [B, T] -> logits [B, T, C]."""
        steps = tf.shape(events)[1]
        previous = tf.pad(tf.one_hot(events, self.config.num_classes)[:, :-1], [[0, 0], [1, 0], [0, 0]])
        x = tf.concat([previous, tf.tile(z[:, None, :], [1, steps, 1])], axis=2)
        flat = tf.tanh(z @ self.initial_kernel + self.initial_bias)
        at = 0
        for lstm, u in zip(self.dec, self.config.decoder_sizes):
            x = lstm(x, initial_state=(flat[:, at : at + u], flat[:, at + u : at + 2 * u]))
            at += 2 * u
        return tf.tensordot(x, self.output_kernel, 1) + self.output_bias

    def losses_of(self, events: tf.Tensor, beta: float | tf.Tensor, free_bits: float,
                  sample: bool = True) -> dict[str, tf.Tensor]:
        """Magenta's loss terms for a batch of phrases (means over the batch, nats)."""
        mu, sigma = self.encode(events)
        z = mu + sigma * tf.random.normal(tf.shape(mu)) if sample else mu
        logits = self.logits(z, events)
        recon = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=events, logits=logits), axis=1)
        kl = tf.reduce_sum(0.5 * (tf.square(mu) + tf.square(sigma) - 1.0) - tf.math.log(sigma), axis=1)
        kl_cost = tf.maximum(kl - free_bits, 0.0)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=events.dtype), events), tf.float32))
        return {
            "loss": tf.reduce_mean(recon + beta * kl_cost),
            "reconstruction": tf.reduce_mean(recon),
            "kl": tf.reduce_mean(kl),
            "accuracy": accuracy,
        }

    # -- weights of the live file ------------------------------------------------------------

    def _named(self) -> dict[str, Any]:
        named: dict[str, Any] = {}
        for k, (fw, bw) in enumerate(zip(self.fw, self.bw)):
            named.update({f"encoder/fw_{k}/kernel": fw.kernel, f"encoder/fw_{k}/bias": fw.bias,
                          f"encoder/bw_{k}/kernel": bw.kernel, f"encoder/bw_{k}/bias": bw.bias})
        named.update({"encoder/mu/kernel": self.mu_kernel, "encoder/mu/bias": self.mu_bias,
                      "encoder/sigma/kernel": self.sigma_kernel, "encoder/sigma/bias": self.sigma_bias,
                      "decoder/initial/kernel": self.initial_kernel, "decoder/initial/bias": self.initial_bias})
        for k, lstm in enumerate(self.dec):
            named.update({f"decoder/lstm_{k}/kernel": lstm.kernel, f"decoder/lstm_{k}/bias": lstm.bias})
        named.update({"decoder/output/kernel": self.output_kernel, "decoder/output/bias": self.output_bias})
        return named

    def canonical_weights(self) -> dict[str, np.ndarray]:
        """Every weight as float32 numpy under its live file name."""
        return {name: np.asarray(keras.ops.convert_to_numpy(v), np.float32) for name, v in self._named().items()}

    def set_canonical_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Assign weights given under live file names (shapes must match exactly)."""
        for name, var in self._named().items():
            value = np.asarray(weights[name], np.float32)
            if tuple(value.shape) != tuple(var.shape):
                raise ValueError(f"{name}: shape {value.shape}, the network has {tuple(var.shape)}")
            var.assign(value)

    def to_live(self, source: dict[str, Any] | None = None) -> MusicVae:
        """The numpy runtime's ``MusicVae`` with these weights."""
        config = VaeConfig(**{**self.config.__dict__, "source": dict(source or {})})
        return MusicVae(config, self.canonical_weights(), where=f"{config.config_id} network")


def beta_at(step: int, max_beta: float, beta_rate: float) -> float:
    """Magenta's KL weight at training step ``step``: ``(1 - beta_rate ** step) * max_beta``."""
    return (1.0 - beta_rate**step) * max_beta
