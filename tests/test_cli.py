"""The magenta-live command line: import, configs, and errors without tracebacks."""

from __future__ import annotations


import numpy as np

import live.models
from live.cli import main
from tests.models.test_reference_bundles import bundle


def test_import_converts_a_bundle_to_a_model_file_with_the_same_numbers(tmp_path, capsys):
    out = tmp_path / "attention.npz"
    assert main(["import", bundle("attention_rnn_64x2.mag"), "-o", str(out)]) == 0
    assert "attention_rnn" in capsys.readouterr().out
    a, b = live.models.load(bundle("attention_rnn_64x2.mag")), live.models.load(out)
    assert b.config.attn_length == 40 and b.config.source["bundle"] == "attention_rnn_64x2.mag"
    rng = np.random.default_rng(0)
    sa, sb = a.initial_state(1), b.initial_state(1)
    for _ in range(20):
        x = np.eye(74, dtype=np.float32)[rng.integers(74)][None]
        pa, sa = a.step(x, sa)
        pb, sb = b.step(x, sb)
        np.testing.assert_array_equal(pa, pb)


def test_configs_lists_every_family(capsys):
    assert main(["configs"]) == 0
    out = capsys.readouterr().out
    for config_id in ["basic_rnn", "attention_improv", "polyphony", "drum_kit", "multiconditioned_performance_with_dynamics"]:
        assert config_id in out


def test_a_bad_model_file_is_one_clear_line_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "notes.mag"
    bad.write_text("these are my notes, not a model\n")
    assert main(["import", str(bad), "-o", str(tmp_path / "x.npz")]) == 1
    err = capsys.readouterr().err
    assert "notes.mag" in err and "not a Magenta .mag bundle" in err and "Traceback" not in err
    assert not (tmp_path / "x.npz").exists()


def test_a_missing_model_file_names_the_path(tmp_path, capsys):
    assert main(["import", str(tmp_path / "nope.mag"), "-o", str(tmp_path / "x.npz")]) == 1
    assert "nope.mag" in capsys.readouterr().err


def test_the_training_command_lists_its_subcommands(capsys):
    from training.cli import main as train_main

    assert train_main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("convert", "dataset", "train", "export"):
        assert command in out


def test_the_training_commands_refuse_bad_arguments_before_tensorflow_loads(tmp_path):
    """Each subcommand's arguments are checked by a module free of TensorFlow: a refused
    argument answers in one line, exit 2, and TensorFlow never loads."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from training.cli import main\n"
        "codes = [main(a) for a in (\n"
        "    ['convert', '--input-dir', '.', '--output', sys.argv[1]],\n"
        "    ['dataset', '--config', 'attention_rnn', '--input', 'x', '--output-dir', 'o', '--eval-ratio', 'nan'],\n"
        "    ['dataset', '--config', 'no_such_rnn', '--input', 'x', '--output-dir', 'o'],\n"
        "    ['train', '--run-dir', 'r', '--sequence-example-file', 'x', '--num-training-steps', '0'],\n"
        "    ['export', '--run-dir', 'r', '--output', sys.argv[1] + '/no/such/folder/m.npz'],\n"
        ")]\n"
        "print(codes, 'tensorflow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[2, 2, 2, 2, 2] False", done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 5 and "Traceback" not in done.stderr, done.stderr
    assert "is a folder" in lines[0] and "--eval-ratio" in lines[1] and "no_such_rnn" in lines[2]
    assert "--num-training-steps" in lines[3] and "does not exist" in lines[4]
