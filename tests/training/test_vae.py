"""The Keras MusicVAE and the numpy runtime compute the same thing with the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from live.models.vae import VaeConfig
from training.vae import MusicVaeNet, beta_at


def _random_net(config: VaeConfig, seed: int) -> MusicVaeNet:
    net = MusicVaeNet(config)
    rng = np.random.default_rng(seed)
    # trained-network scales: a kernel's entries about 1/sqrt(its inputs), biases 0.1
    net.set_canonical_weights({name: rng.normal(0, 1.0 / np.sqrt(w.shape[0]) if w.ndim == 2 else 0.1, w.shape).astype(np.float32)
                               for name, w in net.canonical_weights().items()})
    return net


@pytest.mark.parametrize(
    "config",
    [
        VaeConfig(z_size=16, encoder_sizes=[24, 20], decoder_sizes=[24, 16], steps=32),  # stacked bidirectional layers
        VaeConfig(),  # cat-mel_2bar_small's sizes: 512 each way, 2 x 256, z 256
    ],
    ids=["small two-layer", "cat-mel_2bar_small"],
)
def test_numpy_and_keras_agree_on_codes_and_logits(config):
    net = _random_net(config, 1)
    vae = net.to_live()
    rng = np.random.default_rng(2)
    events = rng.integers(0, config.num_classes, (3, config.steps))
    mu_k, sigma_k = (x.numpy() for x in net.encode(tf.constant(events)))
    mu, sigma = vae.encode(events)
    np.testing.assert_allclose(mu, mu_k, atol=1e-5)
    np.testing.assert_allclose(sigma, sigma_k, atol=1e-5)
    z = rng.normal(0, 1, (3, config.z_size)).astype(np.float32)
    np.testing.assert_allclose(vae.logits(z, events), net.logits(tf.constant(z), tf.constant(events)).numpy(), atol=1e-5)


def test_the_loss_has_magentas_terms_and_free_bits():
    config = VaeConfig(z_size=8, encoder_sizes=[16], decoder_sizes=[16], steps=16)
    net = _random_net(config, 3)
    events = tf.constant(np.random.default_rng(4).integers(0, 90, (5, 16)))
    tf.random.set_seed(0)
    terms = net.losses_of(events, beta=0.5, free_bits=0.0, sample=False)
    assert np.isclose(terms["loss"].numpy(), terms["reconstruction"].numpy() + 0.5 * terms["kl"].numpy(), rtol=1e-5)
    free = net.losses_of(events, beta=0.5, free_bits=1e6, sample=False)  # every nat free: no KL cost
    assert np.isclose(free["loss"].numpy(), free["reconstruction"].numpy(), rtol=1e-6)
    assert terms["kl"].numpy() > 0


def test_beta_rises_to_max_beta():
    assert beta_at(0, 0.2, 0.99999) == 0.0
    assert 0.0 < beta_at(1000, 0.2, 0.99999) < beta_at(100_000, 0.2, 0.99999) < 0.2
