"""``magenta-live generate`` with a MusicVAE file: --interpolate and --sample (numpy only)."""

from __future__ import annotations

import pytest

from live.cli import main
from live.midi_file import Note, read_midi, write_midi
from live.models.vae import classes_notes, save_vae
from live.generate.vae import phrase
from tests.models.test_vae import random_vae


@pytest.fixture
def vae_file(tmp_path):
    path = tmp_path / "vae.npz"
    save_vae(random_vae(seed=5), path)
    return path


def tune(path, pitches, qpm=100.0) -> str:
    """Eighth notes of ``pitches`` from beat 2 of the first bar (the phrase starts at its bar)."""
    eighth = 30.0 / qpm
    write_midi(str(path), [Note(p, (i + 2) * eighth, (i + 3) * eighth - 0.01, 90) for i, p in enumerate(pitches)], qpm=qpm)
    return str(path)


def test_a_files_first_two_bars_become_its_phrase(tmp_path):
    vae = random_vae()
    row, qpm = phrase(tune(tmp_path / "a.mid", [60, 62, 64, 65, 67, 69, 71, 72] * 3), vae)
    assert qpm == 100.0 and row.shape == (32,)
    notes = classes_notes(row)
    assert notes[0] == (4, 6, 60)  # beat 2, an eighth long, at sixteenth steps
    assert len(notes) == 14 and notes[-1][1] <= 32  # two bars of it, from the bar of the first note


def test_interpolate_writes_the_morph_and_a_seed_repeats_it(tmp_path, vae_file):
    a = tune(tmp_path / "a.mid", [60, 64, 67, 72] * 4)
    b = tune(tmp_path / "b.mid", [69, 67, 65, 64, 62, 60] * 3)
    outs = []
    for run in ("one", "two"):
        out = tmp_path / run
        assert main(["generate", "--model", str(vae_file), "--interpolate", a, b, "--num-outputs", "5",
                     "--output-dir", str(out), "--seed", "3"]) == 0
        files = sorted(out.glob("*.mid"))
        assert len(files) == 5
        outs.append([[(n.pitch, round(n.start, 4)) for n in read_midi(f).notes] for f in files])
        assert all(read_midi(f).qpm == pytest.approx(100.0) for f in files)
        assert all(n.end <= 32 * 60.0 / 100.0 / 4 + 1e-6 for f in files for n in read_midi(f).notes)
    assert outs[0] == outs[1]


def test_sample_decodes_random_codes(tmp_path, vae_file):
    assert main(["generate", "--model", str(vae_file), "--sample", "--num-outputs", "3", "--output-dir", str(tmp_path),
                 "--temperature", "0.5", "--seed", "1"]) == 0
    assert len(list(tmp_path.glob("*.mid"))) == 3


@pytest.mark.parametrize(
    "flags, words",
    [
        ([], "needs --sample or --interpolate"),
        (["--sample", "--interpolate", "a.mid", "b.mid"], "one of them"),
        (["--sample", "--primer-melody", "[60]"], "--primer-melody does not apply to a MusicVAE"),
        (["--sample", "--beam-size", "2"], "beam search does not apply"),
    ],
)
def test_what_a_vae_cannot_take_gets_one_line(tmp_path, vae_file, capsys, flags, words):
    code = main(["generate", "--model", str(vae_file), "--output-dir", str(tmp_path / "o"), *flags])
    err = capsys.readouterr().err
    assert code == 1 and words in err and "Traceback" not in err


def test_interpolate_with_an_rnn_model_says_it_needs_a_vae(tmp_path, capsys):
    code = main(["generate", "--model", "melody", "--sample", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "--sample needs a MusicVAE model" in err
