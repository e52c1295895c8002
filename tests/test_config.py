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
output_port = ["synth", "choir box"]

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
    assert [(s.name, s.mode, s.output_channel, s.input_channels) for s in specs] == [
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
    with pytest.raises(ValueError, match="--mode: 'jazz' is not one of call-response"):
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


# -- one schema: the command line and the file refuse the same values with the same words --------


@pytest.mark.parametrize(
    "toml,option,argv",
    [
        ("temperature = -3\n", "--temperature", ["--temperature", "-3"]),
        ("temperature = nan\n", "--temperature", ["--temperature", "nan"]),
        ("density = 1.0001\n", "--density", ["--density", "1.0001"]),
        ("bpm = 0\n", "--bpm", ["--bpm", "0"]),
        ("bpm = inf\n", "--bpm", ["--bpm", "inf"]),
        ("max_note_seconds = 0\n", "--max-note-seconds", ["--max-note-seconds", "0"]),
        ("tail_bars = -5\n", "--tail-bars", ["--tail-bars", "-5"]),
        ("response_bars = nan\n", "--response-bars", ["--response-bars", "nan"]),
        ("seed = -1\n", "--seed", ["--seed", "-1"]),
        ("output_channel = 17\n", "--output-channel", ["--output-channel", "17"]),
        ("output_channel = 0\n", "--output-channel", ["--output-channel", "0"]),
        ("input_channel = [1, 0]\n", "--input-channel", ["--input-channel", "0"]),
        ("steps_per_chord = 0\n", "--steps-per-chord", ["--steps-per-chord", "0"]),
        ("chord_below = 128\n", "--chord-below", ["--chord-below", "128"]),
        ("silence = \"1e9beats\"\n", "--silence", ["--silence", "1e9beats"]),
        ("silence = \"infbeats\"\n", "--silence", ["--silence", "infbeats"]),
        ("scale_lock = 2\n", "--scale-lock", ["--scale-lock", "2"]),
        ("top_p = 0\n", "--top-p", ["--top-p", "0"]),
    ],
)
def test_a_bad_number_is_refused_alike_in_the_file_and_on_the_command_line(tmp_path, capsys, toml, option, argv):
    with pytest.raises(ConfigFileError, match=option):
        settings(tmp_path, toml)
    from live.cli import main

    assert main(["--no-ui", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option in err[0] and "Traceback" not in err[0], err


@pytest.mark.parametrize(
    "toml,message",
    [
        ('loop = "no"\n', "--loop: 'no' is not true or false"),
        ("passthrough = 1\n", "--passthrough: 1 is not true or false"),
        ("temperature = true\n", "--temperature: True is not a number"),
        ("max_call = 0\n", "max_call: 0 is out of range"),
        ("min_call = 20\nmax_call = 10\n", "min_call (20) is longer than max_call (10)"),
        ("velocity = 200\n", "velocity: 200 is out of range"),
        ('clock = "link2"\n', "--clock: 'link2' is not one of internal, midi"),
        ("input_port = 3\n", "--input-port: 3 is not a port name"),
        ('backing_chords = 3\n', "--backing-chords: 3 is not chord symbols"),
        ("control_channel = 0\n", "control_channel: 0 is out of range"),
        ('[[agent]]\noutput_port = 2\n', "agent 1: output_port: 2 is out of range: the daemon has 1 output(s)"),
        ('[[agent]]\noutput_port = "drum box"\n', "agent 1: output_port: 'drum box' is none of the daemon's outputs"),
        ('[[agent]]\nchannel = 2\noutput_channel = 3\n', "agent 1: channel and output_channel are the same setting"),
        ("[controls]\ntemperature = 21\ndensity = 21\n", "CC 21 steers both temperature and density"),
    ],
)
def test_a_bad_value_in_the_file_names_its_setting(tmp_path, toml, message):
    with pytest.raises(ConfigFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings(tmp_path, toml)


def test_the_readme_output_port_command_means_the_daemons_ports(tmp_path):
    """``--output-port 2`` names (or numbers) a port of the MIDI system, never an agent's index."""
    daemon, specs, _ = settings_from(build_parser().parse_args(["--input-port", "Keystation", "--output-port", "2"]))
    assert daemon["output_port"] == ["2"] and daemon["input_port"] == ["Keystation"]
    assert [s.output_port for s in specs] == [0]


def test_an_agent_may_name_the_output_it_plays_to(tmp_path):
    _, specs, _ = settings(tmp_path, 'output_port = ["synth", "drum box"]\n[[agent]]\nmode = "drums"\noutput_port = "drum box"\n'
                                     '[[agent]]\noutput_port = 0\nname = "lead"\n')
    assert [s.output_port for s in specs] == [1, 0]


def test_one_vocabulary_old_names_still_read(tmp_path):
    """The file's keys are the command line's options; older names (``channel``,
    ``input_channels``, ``answer_bars`` in [controls]) are still read."""
    _, specs, controls = settings(tmp_path, "channel = 3\ninput_channels = [2]\nresponse_bars = 2\n[controls]\nanswer_bars = 40\n")
    assert specs[0].output_channel == 3 and specs[0].input_channels == [2] and specs[0].params.response_bars == 2
    assert controls.parameter(40) == "response_bars"


def test_learned_controls_keep_the_files_comments_order_and_header(tmp_path):
    from live.config import save_controls

    path = tmp_path / "live.toml"
    path.write_text('# my rig\nbpm = 96 # slow\n\n[controls] # my knobs\ntemperature = 74 # the big one\n\n'
                    '[[agent]]\nname = "lead"\n')
    controls = ControlMap({"temperature": 74, "density": 75})
    controls.learn("loop", 80)
    save_controls(path, controls)
    text = path.read_text()
    assert text.count("[controls]") == 1 and "[controls] # my knobs" in text and "# my rig" in text
    assert "temperature = 74 # the big one" in text and text.index("bpm") < text.index("[controls]") < text.index("[[agent]]")
    assert read_toml(path)["controls"] == {"temperature": 74, "density": 75, "loop": 80}
    _, specs, again = settings(tmp_path, text)  # the next start reads it
    assert again.parameter(80) == "loop" and specs[0].name == "lead"
    assert [p.name for p in tmp_path.iterdir()] == ["live.toml"]  # no temporary file left


def test_the_command_lines_output_port_leaves_the_tables_indexes_alone(tmp_path):
    daemon, specs, _ = settings(tmp_path, '[[agent]]\nname = "a"\n[[agent]]\nname = "b"\noutput_port = 1\n',
                                "--output-port", "synth", "--output-port", "drums")
    assert daemon["output_port"] == ["synth", "drums"] and [s.output_port for s in specs] == [0, 1]


def test_a_huge_integer_in_the_file_is_one_line(tmp_path):
    with pytest.raises(ConfigFileError, match="--bpm: .* is not a number"):
        settings(tmp_path, "bpm = 1" + "0" * 400 + "\n")
