"""What the panel draws, as pure functions of a :class:`~live.engine.session.Snapshot`.

Every function returns prompt_toolkit formatted text: a list of ``(style, text)`` fragments, or
a list of such lines. Nothing here reads a clock, a daemon or a terminal, so each piece can be
tested on a Snapshot built by hand (``plain`` turns fragments back into a string).

Positions come in ticks (24 per quarter note); bar, beat and step are shown as the Snapshot
gives them (the daemon counts them from 1, as musicians do).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

from prompt_toolkit.styles import Style

from live.protocol import PARAMETERS, AgentView, RollNote, Snapshot

Fragments = list[tuple[str, str]]

TICKS_PER_BAR = 96  # 4/4 at 24 ticks per quarter
TEMPERATURE_RANGE = (0.1, 2.0)
DENSITY_RANGE = (0.0, 1.0)
SCALE_LOCK_RANGE = (0.0, 1.0)
STRAYS_RANGE = (0.0, 1.0)
TOP_P_RANGE = (0.0, 1.0)
KNOB_WIDTH = 8  # characters per knob bar
KNOB_EIGHTHS = " ▏▎▍▌▋▊▉"  # a character filled to 0/8 .. 7/8
KNOB_EMPTY = "·"
AGENT_COLORS = ("ansimagenta", "ansiyellow", "ansigreen", "ansiblue", "ansired")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
LABEL_WIDTH = 5  # the roll's left margin: pitch names

STYLE = Style.from_dict(
    {
        "title": "bold reverse",
        "running": "bold ansigreen",
        "stopped": "bold ansired",
        "rec": "bold reverse ansired",
        "label": "ansibrightblack",
        "value": "bold",
        "locked": "ansigreen",
        "unlocked": "bold ansiyellow",
        "learning": "bold reverse ansiyellow",
        "selected": "reverse",
        "state": "bold ansicyan",
        "knob.full": "ansicyan",
        "knob.empty": "ansibrightblack",
        "knob.changed": "bold ansiwhite bg:ansiblue",
        "on": "bold ansigreen",
        "off": "ansibrightblack",
        "grid": "ansibrightblack",
        "player": "ansicyan",
        **{f"agent{i}": color for i, color in enumerate(AGENT_COLORS)},
        "bad": "bold ansired",
        "log": "",
        "log.warning": "ansiyellow",
        "keys": "reverse",
        "notice": "bold ansiyellow",
        "help": "bg:ansiblack ansiwhite",
    }
)

KEYS: tuple[tuple[str, str], ...] = (
    ("space", "start / stop the transport"),
    ("t / T", "temperature down / up (0.1 a press)"),
    ("d / D", "density down / up (0.1 a press)"),
    ("s / S", "scale lock down / up (0.1 a press)"),
    ("o / O", "top-p down / up (0.05 a press)"),
    ("y / Y", "MusicVAE: strays down / up (0.1 a press)"),
    ("w / W", "MusicVAE morph: one phrase fewer / more in the walk"),
    ("m", "next mode"),
    ("n", "next model"),
    ("l", "loop on / off"),
    ("u", "mutate on / off"),
    ("e", "end the call now (answer at once)"),
    ("- / +", "tempo down / up (1 BPM)"),
    ("tab / up / down", "select an agent (or all) for the knob keys"),
    ("← → Enter", "MIDI learn: choose the parameter the moved control steers"),
    ("p", "panic: every note off"),
    ("r", "recording on / off"),
    ("?", "this help (? or Esc closes it)"),
    ("q", "quit: all notes off, recording written"),
)


def plain(fragments: Iterable[tuple[str, str]]) -> str:
    """The text of formatted-text fragments, without styles."""
    return "".join(text for _, text in fragments)


def note_name(pitch: int) -> str:
    """MIDI pitch to a name with octave, middle C (60) = C4."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def knob_bar(value: float, low: float, high: float, width: int = KNOB_WIDTH) -> str:
    """A horizontal bar, ``width`` characters, filled in proportion to ``value`` in [low, high]
    to an eighth of a character (so a 0.1 step of a knob always shows)."""
    share = 0.0 if high <= low else (value - low) / (high - low)
    eighths = max(0, min(width * 8, round(share * width * 8)))
    full, part = divmod(eighths, 8)
    bar = "█" * full + (KNOB_EIGHTHS[part] if part else "")
    return bar + KNOB_EMPTY * (width - len(bar))


def position(snap: Snapshot) -> str:
    """bar.beat.step."""
    return f"{snap.bar}.{snap.beat}.{snap.step}"


# -- header ------------------------------------------------------------------------------------


def header(snap: Snapshot, learn_choice: int | None = None) -> Fragments:
    """Two lines (three while MIDI learn is on): transport, tempo, position, clock and
    recording; then the backend and the ports; then the learn prompt and, with
    ``learn_choice`` (an index into ``live.config.PARAMETERS``), the parameter offered."""
    f: Fragments = [("class:title", " magenta-live "), ("", " ")]
    if snap.loading:
        return f + [("class:unlocked", f"loading {snap.loading} ...")]
    f += [("class:running", "▶ PLAYING") if snap.running else ("class:stopped", "■ STOPPED")]
    f += [("", "  "), ("class:value", f"{snap.bpm:.1f}"), ("class:label", " BPM  bar "), ("class:value", position(snap)),
          ("class:label", "  clock "), ("class:value", snap.clock_source)]
    if snap.clock_port:
        f += [("class:label", " from "), ("class:value", snap.clock_port)]
    if snap.clock_source != "internal":
        f += [("", " "), ("class:locked", "(locked)") if snap.clock_locked else ("class:unlocked", "(searching)")]
        if snap.clock_waiting:
            f += [("", " "), ("class:unlocked", f"waiting for {snap.clock_waiting}")]
    f += [("", "  ")]
    if snap.recording:
        f += [("class:rec", " ● REC "), ("", " "), ("class:value", snap.recording)]
    else:
        f += [("class:label", "○ not recording")]
    f += [("", "\n"), ("class:label", "midi "), ("class:value", snap.backend or "?"), ("class:label", "  in "),
          ("class:value", ", ".join(snap.inputs) or "-"), ("class:label", "  out "),
          ("class:value", ", ".join(snap.outputs) or "-")]
    if snap.learning:
        f += [("", "\n"), ("class:learning", f" LEARN: {snap.learning} ")]
        if learn_choice is not None:
            f += [("", "  "), ("class:value", f"◀ {PARAMETERS[learn_choice % len(PARAMETERS)]} ▶"),
                  ("class:label", "  (← → choose, Enter learns)")]
    return f


# -- agents ------------------------------------------------------------------------------------


def agent_rows(
    snap: Snapshot, selected: int | None = None, changed: frozenset[tuple[int, str]] = frozenset()
) -> Fragments:
    """Three lines per agent: who and what it is doing; then its knobs as bars (temperature,
    density, switches; scale lock, top-p and the key in use).

    ``selected`` is the agent the knob keys act on (None: all of them, every row marked);
    ``changed`` holds (agent index, "temperature" | "density" | "scale_lock" | "top_p") for knobs
    that just moved."""
    if not snap.agents:
        return [("class:label", "  no agents")]
    f: Fragments = []
    for i, a in enumerate(snap.agents):
        if i:
            f.append(("", "\n"))
        f += _agent_row(i, a, selected is None or selected == i, changed)
    return f


def _fit(text: str, width: int) -> str:
    """``text`` cut or padded to ``width`` characters (an ellipsis marks a cut)."""
    return f"{text[: width - 1]}…" if len(text) > width else f"{text:<{width}}"


def _agent_row(i: int, a: AgentView, selected: bool, changed: frozenset[tuple[int, str]]) -> Fragments:
    color = f"class:agent{i % len(AGENT_COLORS)}"
    mark = "▸" if selected else " "
    f: Fragments = [("class:selected" if selected else "", f"{mark}{i + 1}"), ("", " "), (color + " bold", _fit(a.name, 12)),
                    ("", " "), ("class:value", _fit(a.mode, 13)), ("", " "), ("", _fit(a.model, 14)), ("", " "),
                    ("class:state", _fit(a.state, 9)), ("class:label", " ch "), ("class:value", f"{a.channel:<2}"),
                    ("class:label", " notes "), ("class:value", f"{a.notes_played:<4}"),
                    ("class:value", f" {a.step_ms:4.1f}"), ("class:label", " ms"), ("", "\n")]
    f.append(("", "   "))
    f += _knob("temp", a.temperature, TEMPERATURE_RANGE, (i, "temperature") in changed)
    f.append(("", "  "))
    if a.strays is not None:  # a MusicVAE has no density: how far it strays from the call instead
        f += _knob("strays", a.strays, STRAYS_RANGE, (i, "strays") in changed)
        if a.morph:
            f += [("", "  "), ("class:label", "morph "), ("class:value", a.morph)]
    else:
        f += _knob("dens", a.density, DENSITY_RANGE, (i, "density") in changed)
    f += [("", "  "), ("class:label", "loop "), ("class:on", "on ") if a.loop else ("class:off", "off"),
          ("", "  "), ("class:label", "mutate "), ("class:on", "on ") if a.mutate else ("class:off", "off")]
    if a.response_bars:
        f += [("", "  "), ("class:label", "answer "), ("class:value", f"{a.response_bars:g}"), ("class:label", " bars")]
    f += [("", "\n"), ("", "   ")]
    f += _knob("lock", a.scale_lock, SCALE_LOCK_RANGE, (i, "scale_lock") in changed)
    f.append(("", "  "))
    f += _knob("top-p", a.top_p, TOP_P_RANGE, (i, "top_p") in changed)
    f += [("", "  "), ("class:label", "key "), ("class:value", a.key or "?"),
          ("class:label", " (fixed)" if a.key_fixed else " (auto)")]
    return f


def _knob(label: str, value: float, span: tuple[float, float], changed: bool) -> Fragments:
    bar = knob_bar(value, *span)
    filled = bar.rstrip(KNOB_EMPTY)
    full = "class:knob.changed" if changed else "class:knob.full"
    return [("class:label", label + " "), (full, filled), ("class:knob.empty", bar[len(filled):]),
            ("class:value", f" {value:4.2f}")]


# -- piano roll -----------------------------------------------------------------------------------


def roll_lane(
    notes: Sequence[RollNote],
    now: int,
    width: int,
    height: int,
    window: int,
    ticks_per_bar: int = TICKS_PER_BAR,
) -> list[Fragments]:
    """One piano-roll lane: ``height`` lines of ``width`` characters over the ``window`` ticks
    that end at tick ``now`` (the right edge). Each note is a run of blocks in its player's
    color; bar lines are dotted; the left margin names the highest and lowest pitch shown."""
    width, height = max(width, LABEL_WIDTH + 4), max(height, 1)
    cols = width - LABEL_WIDTH
    per_col = window / cols
    first = now - window + 1
    visible = [n for n in notes if (now + 1 if n.end is None else n.end) > first and n.start <= now]
    if visible:
        low, high = min(n.pitch for n in visible), max(n.pitch for n in visible)
    else:
        low, high = 60, 60
    if high - low < height - 1:  # fewer pitches than rows: one semitone a row, centered
        low -= (height - 1 - (high - low)) // 2
        high = low + height - 1
    span = high - low
    cells: list[list[int | None]] = [[None] * cols for _ in range(height)]
    for n in sorted(visible, key=lambda n: n.start):
        end = now + 1 if n.end is None else n.end
        c0 = max(0, int((n.start - first) / per_col))
        c1 = min(cols, max(c0 + 1, math.ceil((end - first) / per_col)))
        row = round((high - n.pitch) * (height - 1) / span) if span else 0
        for c in range(c0, c1):
            cells[row][c] = n.who
    grid = [" "] * cols  # the background: a dotted line where a bar starts
    for bar in range(math.ceil(first / ticks_per_bar), now // ticks_per_bar + 1):
        grid[min(cols - 1, int((bar * ticks_per_bar - first) / per_col))] = "┊"
    background = "".join(grid)
    lines: list[Fragments] = []
    for r in range(height):
        label = note_name(high) if r == 0 else note_name(low) if r == height - 1 else ""
        line: Fragments = [("class:label", f"{label:>{LABEL_WIDTH - 1}} ")]
        c = 0
        for who, run in itertools.groupby(cells[r]):
            n = len(list(run))
            if who is None:
                line.append(("class:grid", background[c:c + n]))
            else:
                line.append((_who_style(who), "█" * n))
            c += n
        lines.append(line)
    return lines


def _who_style(who: int) -> str:
    return "class:player" if who < 0 else f"class:agent{who % len(AGENT_COLORS)}"


def roll(
    snap: Snapshot, width: int, height: int, bars: int = 4, ticks_per_bar: int = TICKS_PER_BAR
) -> list[Fragments]:
    """Two lanes, the player's then the agents', each under a title line, together ``height``
    lines (at least 4); they scroll with the clock over the last ``bars`` bars (now is the right edge)."""
    lanes = (max(1, (height - 2) // 2), max(1, height - 2 - (height - 2) // 2))
    window = bars * ticks_per_bar
    player = [n for n in snap.roll if n.who < 0]
    agents = [n for n in snap.roll if n.who >= 0]
    lines: list[Fragments] = []
    for title, style, notes, lane in (("player", "class:player", player, lanes[0]),
                                      ("agents", "class:agent0", agents, lanes[1])):
        rule = "─" * max(0, width - len(title) - 5)
        lines.append([("class:grid", "── "), (style + " bold", title), ("class:grid", " " + rule)])
        lines += roll_lane(notes, snap.tick, width, lane, window, ticks_per_bar)
    return lines


# -- meters, log, footer, help ------------------------------------------------------------------


def meters(snap: Snapshot) -> Fragments:
    """Notes in and out, late messages and the worst scheduling error, dropped input, step time."""

    def item(label: str, value: str, bad: bool = False) -> Fragments:
        return [("class:label", label + " "), ("class:bad" if bad else "class:value", value), ("", "   ")]

    return (
        item("notes in", str(snap.notes_in))
        + item("out", str(snap.notes_out))
        + item("late", str(snap.late), snap.late > 0)
        + item("worst", f"{snap.worst_late_ms:.1f} ms", snap.worst_late_ms >= 5.0)
        + item("dropped", str(snap.dropped), snap.dropped > 0)
        + item("step", f"{snap.step_ms:.2f} ms")
    )


def log_lines(lines: Sequence[str], height: int, warnings: Sequence[str] = ()) -> list[Fragments]:
    """The last ``height`` lines of the log: the session's lines, then the panel's captured
    warnings (in the warning color)."""
    rows = [[("class:log", "· " + line)] for line in lines] + [[("class:log.warning", "! " + w)] for w in warnings]
    return rows[-height:] if height > 0 else []


def footer(selected: int | None, snap: Snapshot, notice: str | None = None) -> Fragments:
    """The key reminder and which agent the knob keys act on."""
    if selected is None or selected >= len(snap.agents):
        who = "all agents"
    else:
        who = f"{selected + 1} {snap.agents[selected].name}"
    f: Fragments = [("class:keys", " space "), ("", "play/stop "), ("class:keys", " t T "), ("", "temp "),
                    ("class:keys", " d D "), ("", "dens "), ("class:keys", " ? "), ("", "help "),
                    ("class:keys", " q "), ("", "quit  "), ("class:label", "keys act on "), ("class:value", who)]
    if notice:
        f += [("", "   "), ("class:notice", notice)]
    return f


def help_text() -> Fragments:
    """Every key and what it does."""
    f: Fragments = []
    for key, what in KEYS:
        f += [("class:value", f" {key:<16}"), ("", what + " \n")]
    f += [("class:label", " Keys and CC knobs act through the same commands.")]
    return f
