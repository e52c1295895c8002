"""The numpy MusicVAE without TensorFlow: shapes, sampling, melodies <-> classes, its file."""

from __future__ import annotations

import numpy as np
import pytest

from live.errors import ModelFileError
from live.models import modelfile
from live.models.vae import (
    FIRST_PITCH_CLASS,
    NO_EVENT,
    NOTE_OFF,
    MusicVae,
    VaeConfig,
    classes_notes,
    expected_shapes,
    load_vae,
    melody_classes,
    save_vae,
)

SMALL = VaeConfig(z_size=8, encoder_sizes=[16], decoder_sizes=[12, 12], steps=32)


def random_vae(config: VaeConfig = SMALL, seed: int = 0) -> MusicVae:
    rng = np.random.default_rng(seed)
    return MusicVae(config, {n: rng.normal(0, 0.3, s).astype(np.float32) for n, s in expected_shapes(config).items()})


def test_encode_and_decode_shapes_and_classes():
    vae = random_vae()
    events = np.random.default_rng(1).integers(0, 90, (4, 32))
    mu, sigma = vae.encode(events)
    assert mu.shape == sigma.shape == (4, 8) and (sigma > 0).all()
    out = vae.decode(mu, temperature=1.0, rng=np.random.default_rng(2))
    assert out.shape == (4, 32) and out.min() >= 0 and out.max() < 90
    greedy = vae.decode(mu, temperature=0.0)
    assert np.array_equal(greedy, vae.decode(mu, temperature=0.0))  # no randomness at 0
    assert np.array_equal(greedy[:, 0], vae.logits(mu, greedy)[:, 0].argmax(axis=1))


def test_a_phrase_is_encoded_the_same_alone_and_in_a_batch():
    vae = random_vae()
    events = np.random.default_rng(3).integers(0, 90, (3, 32))
    mu, sigma = vae.encode(events)
    mu1, sigma1 = vae.encode(events[1:2])
    np.testing.assert_allclose(mu[1:2], mu1, atol=1e-6)
    np.testing.assert_allclose(sigma[1:2], sigma1, atol=1e-6)


@pytest.mark.parametrize("bad", [np.array([[0, 90]]), np.array([[-1, 2]]), np.zeros((0, 32), int), np.zeros(32, int)])
def test_bad_phrases_are_refused(bad):
    with pytest.raises(ValueError):
        random_vae().encode(bad)


def test_melodies_and_classes_round_trip():
    notes = [(0, 3, 60), (4, 8, 62), (8, 15, 64), (31, 32, 67)]  # (start, end, pitch) in steps
    row = melody_classes(notes, 32)
    assert row[0] == FIRST_PITCH_CLASS + 60 - 21 and row[3] == NOTE_OFF and row[1] == NO_EVENT
    assert row[8] == FIRST_PITCH_CLASS + 64 - 21  # a note starting where one ends: no note-off there
    assert classes_notes(row) == notes
    assert classes_notes(melody_classes([(0, 4, 120), (4, 8, 10)], 8)) == [(0, 4, 108), (4, 8, 22)]  # moved by octaves


def test_the_file_round_trips_and_bad_files_say_why(tmp_path):
    vae = random_vae()
    path = tmp_path / "vae.npz"
    save_vae(vae, path)
    again = load_vae(path)
    events = np.random.default_rng(4).integers(0, 90, (2, 32))
    np.testing.assert_array_equal(again.encode(events)[0], vae.encode(events)[0])
    weights = dict(vae.weights)
    del weights["decoder/output/bias"]
    modelfile.write_container(tmp_path / "broken.npz", vae.config.to_json_dict(), weights)
    with pytest.raises(ModelFileError, match="missing decoder/output/bias"):
        load_vae(tmp_path / "broken.npz")
    with pytest.raises(ModelFileError, match="not a magenta-live model"):
        modelfile.load(path)  # a VAE is not an RNN model file
    config = {**vae.config.to_json_dict(), "z_size": 0}
    modelfile.write_container(tmp_path / "zero.npz", config, vae.weights)
    with pytest.raises(ModelFileError, match="sizes"):
        load_vae(tmp_path / "zero.npz")
