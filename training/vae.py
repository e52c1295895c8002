"""MusicVAE in Keras: the network of ``live.models.vae`` (Magenta's ``cat-mel_2bar_small``
design), its loss, and the hand-over of its weights to the numpy runtime.

Loss (Magenta's ``MusicVAE``): the reconstruction's cross-entropy summed over a phrase's steps
(teacher-forced: each step sees the true class before it), plus ``beta`` times the KL
divergence of ``N(mu, sigma)`` from ``N(0, 1)`` beyond ``free_bits`` (in nats:
``max(KL - free_bits, 0)``), ``beta`` rising towards ``max_beta`` as ``1 - beta_rate ** step``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from live.models.vae import FIRST_PITCH_CLASS, MusicVae, VaeConfig
from training.commands.train import VAE_RUN_FILE
from training.model import MagentaLSTMCell, _split_top_level


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


# -- hyperparameters ---------------------------------------------------------------------------


@dataclass
class VaeHParams:
    """Magenta's ``cat-mel_2bar_small`` hyperparameters (``--hparams`` overrides them). Not
    carried over: scheduled sampling (the decoder here always reads the true previous step)."""

    batch_size: int = 512
    z_size: int = 256
    enc_rnn_size: list[int] = field(default_factory=lambda: [512])
    dec_rnn_size: list[int] = field(default_factory=lambda: [256, 256])
    learning_rate: float = 0.001
    decay_rate: float = 0.9999
    min_learning_rate: float = 0.00001
    max_beta: float = 0.2
    beta_rate: float = 0.99999
    free_bits: float = 0.0
    clip_norm: float = 1.0
    transpose: int = 5  # each training window moved by a random -5..+5 semitones (Magenta's augmenter)

    def config(self, source: dict[str, Any] | None = None) -> VaeConfig:
        return VaeConfig(z_size=self.z_size, encoder_sizes=list(self.enc_rnn_size), decoder_sizes=list(self.dec_rnn_size),
                         source=dict(source or {}))


# name -> (smallest, largest) for numbers; every size of a list the same
_BOUNDS = {"batch_size": (1, 4096), "z_size": (1, 2048), "enc_rnn_size": (1, 4096), "dec_rnn_size": (1, 4096),
           "learning_rate": (1e-7, 1.0), "decay_rate": (0.5, 1.0), "min_learning_rate": (0.0, 1.0),
           "max_beta": (0.0, 100.0), "beta_rate": (0.0, 1.0), "free_bits": (0.0, 1e4), "clip_norm": (1e-6, 1e6),
           "transpose": (0, 24)}


def parse_vae_hparams(text: str, base: VaeHParams | None = None) -> VaeHParams:
    """``"batch_size=64,enc_rnn_size=[256]"`` over ``base``; HParamsError names a bad one."""
    from training.errors import HParamsError

    values = asdict(base or VaeHParams())
    for item in _split_top_level(text):
        name, eq, raw = item.partition("=")
        name = name.strip()
        if not eq or name not in values:
            raise HParamsError(f"--hparams: {item!r} is not NAME=VALUE with NAME one of {', '.join(values)}")
        try:
            value = json.loads(raw.strip())
        except ValueError as err:
            raise HParamsError(f"--hparams: {name}={raw.strip()} is not a number or a list of numbers") from err
        lo, hi = _BOUNDS[name]
        items = value if isinstance(value, list) else [value]
        if isinstance(values[name], list) != isinstance(value, list) or not items or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi for v in items
        ):
            raise HParamsError(f"--hparams: {name}={raw.strip()} must be {'a list of ' if isinstance(values[name], list) else ''}"
                               f"numbers from {lo:g} to {hi:g}")
        if isinstance(values[name], int) or isinstance(values[name], list):
            if not all(float(v).is_integer() for v in items):
                raise HParamsError(f"--hparams: {name}={raw.strip()} must be whole numbers")
            value = [int(v) for v in value] if isinstance(value, list) else int(value)
        values[name] = value
    return VaeHParams(**values)


# -- training ---------------------------------------------------------------------------------

RUN_FILE = VAE_RUN_FILE  # what marks a MusicVAE run directory


def _transpose(classes: tf.Tensor, amount: int) -> tf.Tensor:
    """Windows [B, T] moved by random semitones in -amount..amount (a window that would leave
    the range stays where it is)."""
    if amount == 0:
        return classes
    shift = tf.random.uniform([tf.shape(classes)[0], 1], -amount, amount + 1, tf.int32)
    pitched = classes >= FIRST_PITCH_CLASS
    moved = tf.where(pitched, classes + shift, classes)
    fits = tf.reduce_all(~pitched | ((moved >= FIRST_PITCH_CLASS) & (moved < VaeConfig().num_classes)), axis=1, keepdims=True)
    return tf.where(fits, moved, classes)


def _dataset(path: str | list[str], steps: int, batch: int, training: bool) -> tf.data.Dataset:
    from training.vae_data import parse_example

    ds = tf.data.TFRecordDataset(path).map(lambda b: parse_example(b, steps))
    if training:
        ds = ds.shuffle(20_000).repeat()
    return ds.batch(batch, drop_remainder=training).prefetch(2)


def _build(run_dir: str, hparams: VaeHParams, save_dir: str | None = None):
    """(network, optimizer, step, checkpoint, manager); inside a strategy's scope, its variables.
    ``save_dir``: where the manager writes (default ``run_dir/train``)."""
    net = MusicVaeNet(hparams.config(), name="music_vae")
    optimizer = keras.optimizers.Adam(learning_rate=hparams.learning_rate, epsilon=1e-8)
    optimizer.build(net.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step",
                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    checkpoint = tf.train.Checkpoint(step=step, model=net, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, save_dir or os.path.join(run_dir, "train"), max_to_keep=3,
                                         checkpoint_name="ckpt")
    return net, optimizer, step, checkpoint, manager


def read_vae_run(run_dir: str) -> VaeHParams | None:
    path = os.path.join(run_dir, RUN_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return VaeHParams(**json.load(f)["hparams"])


def _scalars(writer, step: int, values: dict[str, float]) -> None:
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    with writer.as_default(step=step):
        for name, value in values.items():
            tf.summary.write(name, tf.constant(value, tf.float32), metadata=metadata)
    writer.flush()


def train_vae(run_dir: str, train_file: str, hparams_text: str = "", num_training_steps: int = 1000,
              checkpoint_every: int = 200, log_every: int = 50, log=print, strategy: str = "default",
              cpu_replicas: int = 1) -> dict[str, float]:
    """Train (resuming from ``run_dir``'s latest checkpoint) until the global step reaches
    ``num_training_steps``; TensorBoard summaries in ``run_dir/train``. Returns the last metrics.

    ``strategy``, ``cpu_replicas``: as ``training.train.train``'s; the loss terms are means over
    the global batch, gradients summed across replicas before clipping (each replica draws its own
    codes and transpositions, so the run is not the one-device run step for step).
    """
    from live.files import atomic_write
    from training.train import (
        SUM, apply_one_update, distribute, log_replicas, sequence_example_files, start_worker, summed_over_replicas,
    )

    distribution, chief, log, scratch = start_worker(strategy, cpu_replicas, log)
    try:
        hparams = parse_vae_hparams(hparams_text, read_vae_run(run_dir))
        files = sequence_example_files(train_file)  # DataError before the run directory is touched
        log_replicas(distribution, strategy, hparams.batch_size, log)
        if chief:
            os.makedirs(run_dir, exist_ok=True)
            atomic_write(os.path.join(run_dir, RUN_FILE), json.dumps({"config_id": "cat-mel_2bar_small", "hparams": asdict(hparams)},
                                                                     indent=2, sort_keys=True) + "\n")
        with distribution.scope():
            net, optimizer, step, checkpoint, manager = _build(run_dir, hparams, scratch)
        latest = tf.train.latest_checkpoint(os.path.join(run_dir, "train"))
        if latest:
            checkpoint.restore(latest)
            log(f"resuming at step {int(step.numpy())} from {latest}")
        writer = tf.summary.create_file_writer(os.path.join(run_dir, "train")) if chief else tf.summary.create_noop_writer()
        steps = VaeConfig().steps

        def replica_step(classes, beta):
            context = tf.distribute.get_replica_context()
            classes = _transpose(classes, hparams.transpose)
            share = tf.cast(tf.shape(classes)[0], tf.float32)
            share = share / context.all_reduce(SUM, share)  # this replica's part of the global batch
            with tf.GradientTape() as tape:
                terms = {name: value * share for name, value in net.losses_of(classes, beta, hparams.free_bits).items()}
            apply_one_update(optimizer, net.trainable_variables, tape.gradient(terms["loss"], net.trainable_variables),
                             hparams.clip_norm)
            step.assign_add(1)
            return terms

        batches = distribute(distribution, _dataset(files, steps, hparams.batch_size, training=True))
        train_step = summed_over_replicas(distribution, replica_step, [batches.element_spec, tf.TensorSpec([], tf.float32)])
        batches = iter(batches)
        metrics: dict[str, float] = {}
        started = time.perf_counter()
        while int(step.numpy()) < num_training_steps:
            now = int(step.numpy())
            optimizer.learning_rate.assign(
                (hparams.learning_rate - hparams.min_learning_rate) * hparams.decay_rate**now + hparams.min_learning_rate)
            beta = beta_at(now, hparams.max_beta, hparams.beta_rate)
            terms = train_step(next(batches), tf.constant(beta, tf.float32))
            done = now + 1
            if done % log_every == 0 or done == num_training_steps:
                metrics = {name: float(v.numpy()) for name, v in terms.items()} | {"beta": beta}
                if chief:
                    _scalars(writer, done, metrics)
                log(f"step {done}: loss {metrics['loss']:.3f} reconstruction {metrics['reconstruction']:.3f} "
                    f"kl {metrics['kl']:.2f} accuracy {metrics['accuracy']:.3f} "
                    f"({time.perf_counter() - started:.0f} s)")
            if done % checkpoint_every == 0 or done == num_training_steps:
                manager.save(checkpoint_number=done)  # every worker: saving may take part in collectives
        return metrics
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def evaluate_vae(run_dir: str, eval_file: str) -> dict[str, float]:
    """The latest checkpoint on ``eval_file``'s windows, z = mu: reconstruction accuracy per
    step, and the ELBO per step in nats (reconstruction cross-entropy + KL, over the steps)."""
    from training.train import sequence_example_files

    hparams = read_vae_run(run_dir)
    if hparams is None:
        raise FileNotFoundError(f"{run_dir}: no {RUN_FILE}: train first")
    net, _, step, checkpoint, manager = _build(run_dir, hparams)
    checkpoint.restore(manager.latest_checkpoint).expect_partial()
    steps = VaeConfig().steps
    total: dict[str, float] = {"reconstruction": 0.0, "kl": 0.0, "accuracy": 0.0}
    count = 0
    for classes in _dataset(sequence_example_files(eval_file), steps, 256, training=False):
        terms = net.losses_of(classes, 0.0, 0.0, sample=False)
        n = int(classes.shape[0])
        for name in total:
            total[name] += float(terms[name].numpy()) * n
        count += n
    if not count:
        raise ValueError(f"{eval_file}: no windows")
    out = {name: value / count for name, value in total.items()}
    return {"step": int(step.numpy()), "windows": count, "reconstruction_accuracy": out["accuracy"],
            "elbo_nats_per_step": (out["reconstruction"] + out["kl"]) / steps,
            "reconstruction_nats_per_step": out["reconstruction"] / steps, "kl_nats": out["kl"]}


def export_vae(run_dir: str, output: str, trained_on: str = "", float16: bool = False) -> str:
    """Write the latest checkpoint as the live MusicVAE file; returns its path."""
    from live.models.vae import save_vae

    hparams = read_vae_run(run_dir)
    if hparams is None:
        raise FileNotFoundError(f"{run_dir}: no {RUN_FILE}: train first")
    net, _, step, checkpoint, manager = _build(run_dir, hparams)
    checkpoint.restore(manager.latest_checkpoint).expect_partial()
    save_vae(net.to_live({"tool": "magenta-live-train", "trained_on": trained_on, "steps": int(step.numpy()),
                          "hparams": asdict(hparams)}), output, float16)
    return output
