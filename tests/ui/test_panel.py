"""The panel driven through prompt_toolkit's pipe input, with a fake daemon: keys become
commands, q stops the daemon, the daemon's end or error ends the panel, logs are held back."""

from __future__ import annotations

import io
import logging
import re
import sys
import threading
import time

import pytest
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.output.vt100 import Vt100_Output

from live.protocol import Command, Snapshot
from live.ui.panel import Panel, _log_to_pane, run_panel
from tests.ui.fake import FakeDaemon, agent, snapshot

UP, DOWN, TAB = "\x1b[A", "\x1b[B", "\t"


def drive(daemon: FakeDaemon, keys: str, output=None) -> None:
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        run_panel(daemon, input=pipe, output=output or DummyOutput())


@pytest.mark.parametrize(
    "key, command",
    [
        (" ", Command("start_stop")),
        ("t", Command("temperature", delta=-0.1)),
        ("T", Command("temperature", delta=0.1)),
        ("d", Command("density", delta=-0.1)),
        ("D", Command("density", delta=0.1)),
        ("m", Command("mode")),
        ("n", Command("model")),
        ("l", Command("loop")),
        ("u", Command("mutate")),
        ("e", Command("end_call")),
        ("p", Command("panic")),
        ("r", Command("record")),
        ("+", Command("tempo", delta=1.0)),
        ("-", Command("tempo", delta=-1.0)),
        ("y", Command("strays", delta=-0.1)),
        ("Y", Command("strays", delta=0.1)),
        ("w", Command("morph_steps", delta=-1.0)),
        ("W", Command("morph_steps", delta=1.0)),
    ],
)
def test_each_key_sends_its_command(key, command):
    daemon = FakeDaemon()
    drive(daemon, key + "q")
    assert daemon.commands == [command]
    assert daemon.ran.is_set() and daemon.stopped.is_set()


def test_selecting_an_agent_aims_the_knob_keys_at_it():
    daemon = FakeDaemon()
    # all -> 1 -> 2 -> all (wraps) -> 2 (up)
    drive(daemon, TAB + "T" + DOWN + "d" + "m" + TAB + "T" + UP + "u" + " " + "q")
    assert daemon.commands == [
        Command("temperature", delta=0.1, agent=0),
        Command("density", delta=-0.1, agent=1),
        Command("mode", agent=1),
        Command("temperature", delta=0.1, agent=None),
        Command("mutate", agent=1),
        Command("start_stop"),  # transport keys are never per agent
    ]


LEFT, RIGHT, ENTER = "\x1b[D", "\x1b[C", "\r"


def test_while_learning_arrows_choose_a_parameter_and_enter_learns_it():
    daemon = FakeDaemon(snapshot(learning="CC 30: pick the parameter it steers"))
    drive(daemon, RIGHT + RIGHT + ENTER + LEFT + LEFT + LEFT + ENTER + "q")
    assert daemon.commands == [Command("learn", value="response_bars"), Command("learn", value="record")]


def test_without_learning_arrows_and_enter_send_nothing():
    daemon = FakeDaemon()
    drive(daemon, RIGHT + ENTER + LEFT + "q")
    assert daemon.commands == []


def test_help_and_unbound_keys_send_nothing():
    daemon = FakeDaemon()
    drive(daemon, "?xjz?q")
    assert daemon.commands == []


def test_ctrl_c_quits_like_q():
    daemon = FakeDaemon()
    drive(daemon, "T\x03T")  # the T after Ctrl-C is never read
    assert daemon.commands == [Command("temperature", delta=0.1)]
    assert daemon.stopped.is_set()


def test_the_panel_closes_when_the_daemon_stops_on_its_own():
    daemon = FakeDaemon(body=lambda d: d.stopped.wait(0.3))
    with create_pipe_input() as pipe:  # no key is ever pressed
        run_panel(daemon, input=pipe, output=DummyOutput())
    assert daemon.snapshots >= 2  # it was redrawing meanwhile


def test_an_error_in_the_daemon_is_raised_again_after_the_panel_closes():
    def fail(d: FakeDaemon) -> None:
        raise ValueError("the port vanished for good")

    with pytest.raises(ValueError, match="vanished for good"):
        drive(FakeDaemon(body=fail), "")


def test_the_whole_screen_draws_the_snapshot():
    screen = io.StringIO()
    output = Vt100_Output(screen, lambda: Size(rows=40, columns=100), term="xterm")
    daemon = FakeDaemon(body=lambda d: d.stopped.wait(0.3))
    with create_pipe_input() as pipe:
        run_panel(daemon, input=pipe, output=output)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    for shown in ("PLAYING", "112.0", "5.1.3", "call-response", "drum_kit_rnn", "listening", "player", "agents",
                  "notes in", "melody: call-response with attention_rnn", "keys act on"):
        assert shown in text, shown


def test_a_knob_that_moves_is_marked_as_changed():
    daemon = FakeDaemon()
    panel = Panel(daemon)
    panel.refresh()
    assert panel.changed() == frozenset()
    daemon.send_command(Command("temperature", delta=0.1, agent=1))
    panel.refresh()
    assert panel.changed() == {(1, "temperature")}
    assert panel.snap.agents[1].temperature == pytest.approx(1.1)


def test_selection_falls_back_to_all_when_agents_go_away():
    daemon = FakeDaemon()
    panel = Panel(daemon)
    panel.refresh()
    panel.select(-1)
    assert panel.selected == 1
    daemon.snap = snapshot(agents=(agent(),))
    panel.refresh()
    assert panel.selected is None


def test_a_snapshot_that_fails_keeps_the_last_one_and_says_so():
    daemon = FakeDaemon()
    panel = Panel(daemon)
    first = panel.refresh()

    def broken():
        raise RuntimeError("busy")

    daemon.snapshot = broken
    assert panel.refresh() is first
    assert "busy" in panel.notice


def test_log_records_are_held_back_shown_as_warnings_then_written(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    seen_during: list[str] = []

    def body(d: FakeDaemon) -> None:
        logging.getLogger("live.midi_io").warning("port %s vanished", "keys")
        seen_during.append(stream.getvalue())

    try:
        panel = Panel(FakeDaemon())
        with _log_to_pane(panel):
            body(FakeDaemon())
            assert handler not in root.handlers
        assert list(panel.warnings) == ["warning: port keys vanished"]
        assert handler in root.handlers
        assert seen_during == [""]
        assert "port keys vanished" in stream.getvalue()
        stream.seek(0)
        stream.truncate()
        drive(FakeDaemon(body=body), "")
        assert seen_during[-1] == "" and "port keys vanished" in stream.getvalue()
    finally:
        root.removeHandler(handler)


def test_send_failure_is_a_notice_not_a_crash():
    daemon = FakeDaemon()

    def refuse(cmd):
        raise RuntimeError("queue full")

    daemon.send_command = refuse
    panel = Panel(daemon)
    panel.send(Command("panic"))
    assert panel.notice == "panic refused: queue full"


def test_the_panel_leaves_tensorflow_out():
    import subprocess

    code = ("import sys, live.ui.panel, live.ui.render\n"
            "print(sorted(m for m in ('tensorflow', 'note_seq', 'music21') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_panel_is_up_while_the_daemon_opens_and_q_then_stops_it_before_it_plays():
    screen = io.StringIO()
    output = Vt100_Output(screen, lambda: Size(rows=30, columns=100), term="xterm")
    daemon = FakeDaemon(snap=Snapshot(loading="models: lookback_rnn.mag"))
    opening, opened = threading.Event(), threading.Event()

    def open_slowly() -> None:  # a .mag bundle converting: seconds
        opening.set()
        assert daemon.stopped.wait(10)  # q pressed while it loads
        opened.set()

    with create_pipe_input() as pipe:
        def press_q_once_drawn() -> None:
            assert opening.wait(10)
            deadline = time.perf_counter() + 10
            while "loading models: lookback_rnn.mag" not in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue()):
                assert time.perf_counter() < deadline, "the panel never said what loads"
                time.sleep(0.02)
            pipe.send_text("q")

        presser = threading.Thread(target=press_q_once_drawn)
        presser.start()
        run_panel(daemon, input=pipe, output=output, before_run=open_slowly)
        presser.join()
    assert opened.is_set() and daemon.ran.is_set()  # run() was reached, with stop already asked
