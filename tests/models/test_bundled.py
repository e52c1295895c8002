"""The bundled models: each daemon mode's default exists, loads with numpy alone, says what it was
trained on, and generates; ``magenta-live models`` lists them; ``generate --model NAME`` takes one."""

from __future__ import annotations

import mido
import numpy as np
import pytest

import live.models
from live import cli
from live.engine.stream import Stream
from live.models.bundled import (
    BUNDLED_DIR,
    DEFAULT_FOR_MODE,
    bundled_models,
    resolve_model,
)

EXPECTED = {
    "melody": ("melody", {"attention_rnn", "lookback_rnn"}),
    "polyphony": ("polyphony", {"polyphony"}),
    "improv": ("improv", {"chord_pitches_improv"}),
    "drums": ("drums", {"drum_kit"}),
    "performance": ("performance", {"performance", "performance_with_dynamics"}),
}
PRIMERS = {
    "melody": [60, -2, 62, -2, 64, -2, 65, -2],
    "improv": [60, -2, 64, -2, 67, -2],
    "drums": [frozenset({36, 42}), frozenset(), frozenset({42}), frozenset()],
}


def test_every_mode_has_a_bundled_default():
    names = {m.name for m in bundled_models()}
    assert set(DEFAULT_FOR_MODE.values()) <= names
    for mode in DEFAULT_FOR_MODE:
        assert resolve_model(None, mode).parent == BUNDLED_DIR


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bundled_model_loads_and_generates(name):
    family, configs = EXPECTED[name]
    info = {m.name: m for m in bundled_models()}[name]
    assert info.config_id in configs
    assert info.trained_on, "the model file says what it was trained on"
    assert info.size_bytes < 4_000_000
    model = live.models.load(name)
    assert model.family == family
    assert model.config.source.get("steps", 0) > 0
    stream = Stream(model)
    rng = np.random.default_rng(0)
    if family == "polyphony":
        from live.models.encodings.polyphony import POLY_START, POLY_STEP_END, PolyEvent

        primer = [POLY_START, PolyEvent(3, 67), PolyEvent(3, 60), POLY_STEP_END]
    elif family == "performance":
        from live.models.encodings.performance import NOTE_ON, TIME_SHIFT, PerfEvent

        primer = [PerfEvent(NOTE_ON, 60), PerfEvent(TIME_SHIFT, 50)]
    else:
        primer = PRIMERS[name]
    control = "C" if family == "improv" else None
    for event in primer:
        stream.feed(event, control)
    before = stream.distribution()
    assert before.shape == (model.num_classes,)
    assert np.isclose(before.sum(), 1.0, atol=1e-4)
    for _ in range(16):
        event, logp = stream.sample(rng, temperature=1.0, control=control)
        assert np.isfinite(logp) and logp <= 0
    assert len(stream) == len(primer) + 16


def test_a_trained_model_prefers_real_music():
    """The melody model puts more weight on an ascending C major scale than on random pitches."""
    model = live.models.load("melody")
    scale = [60, -2, 62, -2, 64, -2, 65, -2, 67, -2, 69, -2, 71, -2, 72, -2] * 2
    rng = np.random.default_rng(1)
    noise = [int(p) if i % 2 == 0 else -2 for i, p in enumerate(rng.integers(48, 84, size=len(scale)))]
    scores = []
    for events in (scale, noise):
        stream = Stream(model)
        for e in events:
            stream.feed(e)
        scores.append(stream.log_likelihood)
    assert scores[0] > scores[1]


def test_models_command_lists_them(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED:
        assert name in out
    assert "attention_rnn" in out or "lookback_rnn" in out
    assert "MB" in out and "default for" in out


def test_generate_takes_a_bundled_name(tmp_path):
    code = cli.main(["generate", "--model", "melody", "--output-dir", str(tmp_path), "--num-outputs", "1",
                     "--num-steps", "32", "--primer-melody", "[60, -2, 62]", "--seed", "1"])
    assert code == 0
    files = list(tmp_path.glob("*.mid"))
    assert len(files) == 1
    notes = [m for m in mido.MidiFile(files[0]) if m.type == "note_on" and m.velocity > 0]
    assert notes


def test_generate_unknown_model_name_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["generate", "--model", "no_such_model", "--output-dir", str(tmp_path)])
    assert code != 0
    err = capsys.readouterr().err
    assert "no_such_model" in err and "melody" in err and "Traceback" not in err


def test_the_bundled_musicvae_says_what_it_is_and_plays():
    from live.models.vae import load_vae

    info = {m.name: m for m in bundled_models()}["vae"]
    assert info.kind == "vae" and info.config_id == "cat-mel_2bar_small" and info.trained_on
    assert info.size_bytes < 4_500_000
    vae = load_vae(resolve_model("vae"))
    assert vae.config.source.get("steps", 0) > 0
    row = vae.decode(np.zeros((1, vae.config.z_size), np.float32), 0.0)[0]
    assert (row >= 2).any()  # the code of silence-free music decodes to notes
    assert all(m.kind == "rnn" for m in bundled_models() if m.name != "vae")
