"""The panel's drawing functions on hand-built snapshots."""

from __future__ import annotations

import pytest

from live.protocol import RollNote
from live.ui import render
from live.ui.render import plain
from tests.ui.fake import agent, snapshot


def test_header_shows_transport_tempo_position_ports_clock_and_recording():
    text = plain(render.header(snapshot(recording="/tmp/take.mid")))
    for shown in ("▶ PLAYING", "112.0 BPM", "bar 5.1.3", "clock internal", "REC", "/tmp/take.mid", "midi jack",
                  "in magenta-live in", "out magenta-live out"):
        assert shown in text, shown
    stopped = plain(render.header(snapshot(running=False, recording=None, bar=1, beat=1, step=1)))
    assert "■ STOPPED" in stopped and "not recording" in stopped and "bar 1.1.1" in stopped


def test_header_shows_a_followed_clock_locking_and_the_learn_prompt():
    searching = plain(render.header(snapshot(clock_source="midi", clock_port="Digitakt", clock_locked=False)))
    assert "midi from Digitakt (searching)" in searching
    locked = render.header(snapshot(clock_source="midi", clock_port="Digitakt", clock_locked=True, learning="turn a knob for temperature"))
    assert "(locked)" in plain(locked)
    assert ("class:learning", " LEARN: turn a knob for temperature ") in locked
    assert "◀ temperature ▶" not in plain(locked)
    offered = plain(render.header(snapshot(learning="CC 30: pick the parameter it steers"), learn_choice=3))
    assert "◀ tempo ▶" in offered and "Enter learns" in offered


def test_agent_rows_show_each_agent_and_its_knobs():
    snap = snapshot(agents=(
        agent("melody", state="answering", temperature=2.0, density=0.0, loop=True, response_bars=2.0, notes_played=42,
              scale_lock=0.5, top_p=0.9, key="F#m"),
        agent("drums", mode="drums", model="drum_kit_rnn", state="playing", channel=10, temperature=0.1, density=1.0,
              key="Bb", key_fixed=True),
    ))
    lines = plain(render.agent_rows(snap, selected=1)).split("\n")
    assert len(lines) == 6
    assert lines[0].startswith(" 1 melody") and "answering" in lines[0] and "ch 1 " in lines[0] and "notes 42" in lines[0]
    assert "temp ████████ 2.00" in lines[1] and "dens ········ 0.00" in lines[1]
    assert "loop on" in lines[1] and "mutate off" in lines[1] and "answer 2 bars" in lines[1]
    assert "lock ████···· 0.50" in lines[2] and "top-p ███████▎ 0.90" in lines[2] and "key F#m (auto)" in lines[2]
    assert lines[3].startswith("▸2 drums") and "drums" in lines[3] and "drum_kit_rnn" in lines[3] and "ch 10" in lines[3]
    assert "temp ········ 0.10" in lines[4] and "dens ████████ 1.00" in lines[4]
    assert "lock ········ 0.00" in lines[5] and "top-p ████████ 1.00" in lines[5] and "key Bb (fixed)" in lines[5]
    everyone = plain(render.agent_rows(snap, selected=None)).split("\n")
    assert everyone[0].startswith("▸1") and everyone[3].startswith("▸2")


def test_long_names_are_cut_with_an_ellipsis_and_a_row_fits_80_columns():
    long = agent("performance-duet", mode="call-response", model="performance_with_dynamics", state="answering",
                 channel=16, notes_played=1234, step_ms=12.5, loop=True, mutate=True, response_bars=16)
    text = plain(render.agent_rows(snapshot(agents=(long,))))
    assert "performance…" in text and "performance_w…" in text and "dynamics" not in text
    assert max(len(line) for line in text.split("\n")) <= 80, text


def test_a_changed_knob_is_highlighted():
    snap = snapshot()
    fragments = render.agent_rows(snap, changed=frozenset({(1, "density")}))
    highlighted = [text for style, text in fragments if style == "class:knob.changed"]
    assert highlighted == ["████"]  # agent 2's density, 0.5 of 8 characters


@pytest.mark.parametrize("low, high", [(0.1, 2.0), (0.0, 1.0)])  # temperature; density, scale lock, top-p
def test_every_knob_step_of_a_tenth_moves_the_bar(low, high):
    values = [low + k * 0.1 for k in range(round((high - low) / 0.1) + 1)]
    bars = [render.knob_bar(v, low, high) for v in values]
    assert len(set(bars)) == len(bars)
    assert all(len(b) == render.KNOB_WIDTH for b in bars)
    assert bars[0] == "·" * 8 and bars[-1] == "█" * 8
    assert render.knob_bar(5.0, low, high) == "█" * 8 and render.knob_bar(-1.0, low, high) == "·" * 8


def lane_cells(lines):
    """Lines of a lane as strings without the pitch labels."""
    return [plain(line)[render.LABEL_WIDTH:] for line in lines]


def test_a_lane_places_notes_by_time_and_pitch_with_now_at_the_right_edge():
    # 96 ticks over 48 columns: 2 ticks a column; now = tick 191, the window is ticks 96..191
    notes = [RollNote(96, 120, 60, -1), RollNote(160, None, 64, -1), RollNote(0, 50, 67, -1)]  # the last is too old
    lines = render.roll_lane(notes, now=191, width=48 + render.LABEL_WIDTH, height=5, window=96)
    cells = lane_cells(lines)
    assert plain(lines[0]).startswith("  E4 ") and plain(lines[-1]).startswith("  C4 ")
    assert cells[-1][:12] == "█" * 12 and cells[-1][12] != "█"  # ticks 96..119
    assert cells[0][32:] == "█" * 16  # still sounding: up to now
    assert all("█" not in row for row in cells[1:-1])
    assert cells[1][0] == "┊"  # tick 96 starts bar 2


def test_lanes_scroll_with_the_clock():
    note = [RollNote(150, 160, 60, 0)]
    before = lane_cells(render.roll_lane(note, now=191, width=53, height=1, window=96))[0]
    after = lane_cells(render.roll_lane(note, now=211, width=53, height=1, window=96))[0]
    assert before.index("█") - after.index("█") == 10  # 20 ticks later, 10 columns to the left
    gone = lane_cells(render.roll_lane(note, now=400, width=53, height=1, window=96))[0]
    assert "█" not in gone


def test_a_wide_pitch_range_is_folded_into_the_rows():
    notes = [RollNote(0, 10, 36, 0), RollNote(0, 10, 96, 1), RollNote(0, 10, 66, 0)]
    lines = render.roll_lane(notes, now=95, width=53, height=5, window=96)
    cells = lane_cells(lines)
    assert plain(lines[0]).strip().startswith("C7") and plain(lines[-1]).strip().startswith("C2")
    assert [("█" in row) for row in cells] == [True, False, True, False, True]
    styles = {style for line in lines for style, text in line if "█" in text}
    assert styles == {"class:agent0", "class:agent1"}


def test_the_roll_has_a_player_lane_and_an_agent_lane_in_different_colors():
    snap = snapshot(tick=191, roll=(RollNote(100, 140, 60, -1), RollNote(150, 180, 67, 0), RollNote(150, 180, 48, 1)))
    assert len(render.roll(snap, width=60, height=15, bars=1)) == 15
    lines = render.roll(snap, width=60, height=14, bars=1)
    assert len(lines) == 14
    assert plain(lines[0]).startswith("── player ") and plain(lines[7]).startswith("── agents ")
    player_styles = {s for line in lines[1:7] for s, t in line if "█" in t}
    agent_styles = {s for line in lines[8:] for s, t in line if "█" in t}
    assert player_styles == {"class:player"}
    assert agent_styles == {"class:agent0", "class:agent1"}
    assert render.STYLE.get_attrs_for_style_str("class:player") != render.STYLE.get_attrs_for_style_str("class:agent0")


def test_meters_show_the_counts_and_mark_trouble():
    quiet = render.meters(snapshot())
    assert plain(quiet).split() == ["notes", "in", "12", "out", "30", "late", "0", "worst", "0.4", "ms",
                                    "dropped", "0", "step", "1.25", "ms"]
    assert not [t for s, t in quiet if s == "class:bad"]
    trouble = render.meters(snapshot(late=3, worst_late_ms=7.5, dropped=2))
    assert [t for s, t in trouble if s == "class:bad"] == ["3", "7.5 ms", "2"]


def test_the_log_pane_shows_the_last_lines_and_the_warnings():
    lines = [f"line {i}" for i in range(10)]
    shown = [plain(x) for x in render.log_lines(lines, 3, ["warning: port gone"])]
    assert shown == ["· line 8", "· line 9", "! warning: port gone"]
    assert render.log_lines(lines, 0) == []


def test_footer_names_the_selected_agent_and_help_lists_every_key():
    snap = snapshot()
    assert "keys act on all agents" in plain(render.footer(None, snap))
    assert len(plain(render.footer(None, snap))) <= 80
    assert "keys act on 2 drums" in plain(render.footer(1, snap, notice="panic refused"))
    text = plain(render.help_text())
    for key in ("space", "t / T", "d / D", "m", "n", "l", "u", "p", "r", "?", "q"):
        assert f" {key} " in text, key


def test_while_the_daemon_loads_the_header_says_what_it_loads():
    text = plain(render.header(snapshot(loading="models: melody.mag")))
    assert "loading models: melody.mag" in text and "PLAYING" not in text


def test_a_musicvae_agent_shows_strays_and_its_morph_instead_of_density():
    vary = agent("v", mode="morph", model="cat-mel_2bar_small", strays=0.3, morph="2/4")
    text = plain(render.agent_rows(snapshot(agents=(vary, agent()))))
    first, second = text.split("\n   ", 1)[1], text
    assert "strays" in first and "0.30" in first and "morph 2/4" in first
    assert "dens" in second  # the RNN agent keeps its density knob
