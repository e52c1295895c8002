"""Small models with random weights, for agent tests that need a model of a family but not a
trained one (the bundled models are the trained ones; see tests/models/test_bundled.py)."""

from __future__ import annotations

import numpy as np

from live.models.configs import get_config
from live.models.model import Model, ModelConfig, expected_shapes


def random_model(config_id: str, layer_sizes: tuple[int, ...] = (32,), seed: int = 0, attn_length: int = 0) -> Model:
    """A ``config_id`` model with small random weights (deterministic for a seed)."""
    encoder = get_config(config_id).make_encoder()
    config = ModelConfig(config_id, list(layer_sizes), encoder.input_size, encoder.num_classes, attn_length=attn_length)
    rng = np.random.default_rng(seed)
    weights = {name: (rng.standard_normal(shape) * 0.3).astype(np.float32) for name, shape in expected_shapes(config).items()}
    return Model(config, weights, where=f"random {config_id}")
