"""Property-based fuzzing of the settings: the command line and the TOML file.

For every generated input, either the settings are made, or the answer is one line naming what
is wrong (exit 1): never a traceback, never a value outside its range let through. The options
come from the parser itself and the keys from ``live.config``, so a new option is fuzzed too.
"""

from __future__ import annotations

import contextlib
import io
import math
import os

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("MAGENTA_LIVE_FUZZ_EXAMPLES", "250"))
"""Examples per property (benchmarks/faults.py runs a larger campaign)."""

from live.cli import build_parser, main, settings_from
from live.config import AGENT_KEYS, ALIASES, DAEMON_KEYS, read_toml
from live.errors import LiveError
from live.settings import NUMBERS

# Options that leave the settings (they run something else, or start the daemon's learn prompt).
NOT_SETTINGS = {"--help", "--version", "--list-ports", "--config", "--learn", "--input-file", "--output-file", "--record"}

texts = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1", "1e9", "1e400", "0.5", "16", "17", "127", "128", "2beats",
                     "C", "Am", "auto", "beat", "jazz", "", " ", "call-response", "drums", "jack", "midi", "1,2"]),
    st.text(max_size=8),
)
values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=8), st.lists(st.integers(min_value=-3, max_value=20), max_size=3),
    st.sampled_from(["1beat", "C G Am F", "drums", "midi", "step"]),
)


def _options() -> list[tuple[str, bool]]:
    """(option, takes a value) of every daemon option of the parser."""
    out = []
    for action in build_parser()._actions:
        for opt in action.option_strings:
            if opt.startswith("--") and opt not in NOT_SETTINGS:
                out.append((opt, action.nargs != 0))
    return out


OPTIONS = _options()


def _assert_in_range(daemon: dict, specs: list) -> None:
    for key, number in NUMBERS.items():
        v = daemon.get(key)
        if v is not None:
            assert math.isfinite(v) and number.low <= v <= number.high, (key, v)
    for s in specs:
        p = s.params
        for key in ("temperature", "density", "scale_lock", "top_p"):
            n = NUMBERS[key]
            assert n.low <= getattr(p, key) <= n.high, (key, getattr(p, key))
        assert 1 <= s.output_channel <= 16 and 1 <= s.silence <= 1024 and s.min_call <= s.max_call
        assert isinstance(p.loop, bool) and isinstance(p.mutate, bool)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(OPTIONS), texts), min_size=1, max_size=4))
def test_the_command_line_makes_settings_or_refuses_in_one_line(pairs):
    argv = []
    for (opt, takes_value), text in pairs:
        argv += [opt, text] if takes_value else [opt]
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = build_parser().parse_args(argv)
    except SystemExit as done:
        assert done.code == 1
        err = stderr.getvalue()
        assert err.count("\n") == 1 and "Traceback" not in err, err
        return
    try:
        daemon, specs, _ = settings_from(args)
    except LiveError as err:
        assert "\n" not in str(err) and str(err)
        return
    _assert_in_range(daemon, specs)


KEYS = sorted((DAEMON_KEYS | AGENT_KEYS | set(ALIASES)) - {"agent", "controls"})


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(KEYS), values, min_size=1, max_size=4),
       st.lists(st.dictionaries(st.sampled_from(sorted(AGENT_KEYS)), values, max_size=3), max_size=2),
       st.dictionaries(st.sampled_from(["temperature", "density", "loop", "panic", "answer_bars", "colour"]),
                       st.one_of(st.integers(-2, 130), st.text(max_size=3), st.booleans()), max_size=3))
def test_the_file_makes_settings_or_says_what_is_wrong(tmp_path_factory, top, agents, controls):
    document = tomlkit.document()
    for k, v in top.items():
        document[k] = v
    if agents:
        document["agent"] = agents
    if controls:
        document["controls"] = controls
    path = tmp_path_factory.mktemp("toml") / "live.toml"
    path.write_text(tomlkit.dumps(document))
    try:
        args = build_parser().parse_args(["--config", str(path)])
        daemon, specs, _ = settings_from(args)
    except LiveError as err:
        assert str(err) and len(str(err).splitlines()) <= 2, str(err)  # a TOML parse error may quote its line
        return
    _assert_in_range(daemon, specs)
    assert read_toml(path) is not None


@pytest.mark.parametrize("argv", [["--bpm", "nan"], ["--output-channel", "99"], ["--seed", "-1"], ["--mode", "jazz"]])
def test_the_console_command_refuses_in_one_line_with_exit_1(capsys, argv):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and argv[0] in err
