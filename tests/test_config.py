"""Settings from the TOML file and the command line, the CC map, and MIDI learn."""

from __future__ import annotations

import pytest

from live.cli import build_parser, settings_from
from live.config import DEFAULT_CONTROLS, ControlMap, parse_silence, read_toml
from live.protocol import Command
from live.errors import ConfigFileError
from tests.conftest import FIXTURE_BUNDLES

FIXTURE_MELODY = FIXTURE_BUNDLES / "attention_rnn_64x2.mag"


def settings(tmp_path, toml: str, *argv: str):
    path = tmp_path / "live.toml"
    path.write_text(toml)
    return settings_from(build_parser().parse_args(["--config", str(path), *argv]))


def test_the_file_sets_options_and_the_command_line_wins(tmp_path):
    daemon, specs, controls = settings(tmp_path, 'bpm = 96\nmode = "continue"\ntemperature = 0.5\n', "--bpm", "100")
    assert daemon["bpm"] == 100.0
    assert [(s.mode, s.params.temperature) for s in specs] == [("continue", 0.5)]
    assert controls.controls == DEFAULT_CONTROLS


def test_agents_from_tables_each_with_model_mode_filter_and_channel(tmp_path):
    toml = """
[[agent]]
name = "drummer"
mode = "drums"

[[agent]]
name = "lead"
mode = "improv"
backing_chords = "C G Am F"
input_channels = [1]

[[agent]]
name = "choir"
mode = "harmonize"
channel = 2
output_port = 1

[controls]
temperature = 74
"""
    _, specs, controls = settings(tmp_path, toml, "--temperature", "1.5")
    assert [(s.name, s.mode, s.channel, s.input_channels) for s in specs] == [
        ("drummer", "drums", 10, [10]),
        ("lead", "improv", 2, [1]),
        ("choir", "harmonize", 2, None),
    ]
    assert specs[1].backing_chords == ["C", "G", "Am", "F"] and specs[2].output_port == 1
    assert all(s.params.temperature == 1.5 for s in specs)  # the command line applies to every agent
    assert controls.parameter(74) == "temperature" and controls.parameter(21) is None


@pytest.mark.parametrize(
    "toml,message",
    [
        ("bmp = 100\n", "unknown key(s) bmp"),
        ("bpm = \n", "not a valid TOML file"),
        ('[[agent]]\nmode = "drums"\ncolour = 1\n', "unknown key(s) colour"),
        ('[controls]\ntemprature = 3\n', "unknown parameter 'temprature'"),
        ('[controls]\ntemperature = 300\n', "not a controller number"),
        ('[[agent]]\nname = "x"\n[[agent]]\nname = "x"\n', "agent names must differ"),
    ],
)
def test_a_bad_file_says_what_is_wrong(tmp_path, toml, message):
    with pytest.raises(ConfigFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings(tmp_path, toml)


def test_unknown_mode_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown mode"):
        settings(tmp_path, 'mode = "jazz"\n')
    with pytest.raises(FileNotFoundError, match="no such config file"):
        read_toml(tmp_path / "nope.toml")


def test_silence_in_steps_or_beats():
    assert parse_silence("1beat") == 4 and parse_silence("2 beats") == 8 and parse_silence("6") == 6
    with pytest.raises(ValueError):
        parse_silence("soon")


def test_cc_values_become_commands():
    cc = ControlMap()
    assert cc.command(0, 21, 127) == Command("temperature", value=2.0)
    assert cc.command(0, 22, 0) == Command("density", value=0.0)
    assert cc.command(3, 25, 100) == Command("loop", value=1.0)
    assert cc.command(0, 30, 127) == Command("panic")
    assert cc.command(0, 30, 127) is None  # held: a button acts once per press
    assert cc.command(0, 30, 0) is None
    assert cc.command(0, 30, 127) == Command("panic")
    assert cc.command(0, 7, 127) is None  # not mapped
    assert ControlMap(channel=2).command(0, 21, 64) is None  # another channel


def test_learn_moves_a_control_and_writes_the_table():
    cc = ControlMap()
    cc.learn("density", 21)
    assert cc.parameter(21) == "density" and "temperature" not in cc.controls
    assert "density = 21" in cc.to_toml()
    with pytest.raises(ValueError):
        cc.learn("volume", 3)


def test_a_model_that_fails_to_load_stops_the_daemon_before_any_port_opens(tmp_path, capsys):
    from live.cli import main

    assert main(["--no-ui", "--backend", "jack", "--model", str(tmp_path / "missing.npz")]) == 1
    assert "no model" in capsys.readouterr().err
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["--no-ui", "--backend", "jack", "--model", str(broken)]) == 1
    assert "not a readable magenta-live model file" in capsys.readouterr().err
    assert main(["--no-ui", "--mode", "harmonize", "--model", str(FIXTURE_MELODY)]) == 1
    assert "--mode harmonize needs a polyphony model" in capsys.readouterr().err
