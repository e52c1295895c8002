"""The terminal control panel: a full-screen prompt_toolkit application in front of the daemon.

``run_panel(daemon)`` runs ``daemon.run()`` in a worker thread and the panel in the calling
(main) thread. The panel only ever calls ``daemon.snapshot()`` (about 15 times a second, to
redraw) and ``daemon.send_command(Command)`` (once per key); both are thread-safe and return at
once, so the panel never blocks the daemon and never touches an engine object. While MIDI learn
is on, ← → choose a parameter and Enter sends ``Command("learn", value=parameter)``. ``q`` (or Ctrl-C)
quits: ``daemon.stop()``, then the worker thread is joined; the caller closes the daemon, which
releases every note and writes the recording. If the daemon stops on its own (a signal, an
error), the panel closes too and the daemon's error is raised again in the caller.

While the panel owns the screen, log records that would go to the terminal are held back: those
at WARNING and above are shown in the log pane, and all are written out when the panel closes.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from prompt_toolkit.application import Application
from prompt_toolkit.filters import Condition
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import (
    ConditionalContainer,
    Float,
    FloatContainer,
    HSplit,
    Layout,
    UIContent,
    UIControl,
    Window,
)
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.output import Output
from prompt_toolkit.widgets import Frame

from live.protocol import PARAMETERS, TICKS_PER_QUARTER, Command, Snapshot
from live.ui import render

FPS = 15.0  # redraws per second
KNOB_FLASH_SECONDS = 0.6  # how long a knob that just moved stays highlighted
TEMPERATURE_STEP = 0.1
DENSITY_STEP = 0.1
SCALE_LOCK_STEP = 0.1
TOP_P_STEP = 0.05
STRAYS_STEP = 0.1
TEMPO_STEP = 1.0  # BPM


class DaemonLike(Protocol):
    """What the panel needs from the daemon."""

    def snapshot(self) -> Snapshot: ...

    def send_command(self, command: Command) -> None: ...

    def run(self) -> None: ...

    def stop(self) -> None: ...


class _Lines(UIControl):
    """A control that draws lines that depend on the space it gets (the piano roll, the log)."""

    def __init__(self, lines: Callable[[int, int], list[render.Fragments]]) -> None:
        self._lines = lines

    def create_content(self, width: int, height: int) -> UIContent:
        lines = self._lines(width, height)
        return UIContent(get_line=lambda i: lines[i], line_count=len(lines), show_cursor=False)


class Panel:
    """The panel's own state (selected agent, help shown, knobs that just moved) and its
    prompt_toolkit application. ``refresh()`` takes a new snapshot from the daemon.

    Args:
        daemon: anything with ``snapshot()`` and ``send_command(cmd)``.
        bars: how many bars the piano roll shows.
        fps: redraws per second.
    """

    def __init__(self, daemon: Any, bars: int = 4, fps: float = FPS) -> None:
        self.daemon = daemon
        self.bars = bars
        self.fps = fps
        options = getattr(daemon, "options", None)
        self.ticks_per_bar = int(getattr(options, "beats_per_bar", 4)) * TICKS_PER_QUARTER
        self.snap = Snapshot()
        self.selected: int | None = None  # None: the knob keys act on every agent
        self.show_help = False
        self.learn_choice = 0  # index into PARAMETERS, offered while MIDI learn is on
        self.notice: str | None = None
        self.warnings: deque[str] = deque(maxlen=50)
        self._knobs: dict[tuple[int, str], float] = {}
        self._moved: dict[tuple[int, str], float] = {}  # perf_counter seconds of the last change

    # -- state -------------------------------------------------------------------------------

    def refresh(self) -> Snapshot:
        """Take the daemon's latest snapshot and note which knobs moved since the last one."""
        try:
            snap = self.daemon.snapshot()
        except Exception as err:  # noqa: BLE001 - the panel keeps showing the last good state
            self.notice = f"no snapshot: {err}"
            return self.snap
        now = time.perf_counter()
        for i, agent in enumerate(snap.agents):
            for name in ("temperature", "density", "scale_lock", "top_p", "strays"):
                value = getattr(agent, name)
                old = self._knobs.get((i, name))
                if old is not None and old != value:
                    self._moved[(i, name)] = now
                self._knobs[(i, name)] = value
        self.snap = snap
        if self.selected is not None and self.selected >= len(snap.agents):
            self.selected = None
        return snap

    def changed(self) -> frozenset[tuple[int, str]]:
        """The knobs that moved in the last ``KNOB_FLASH_SECONDS``."""
        now = time.perf_counter()
        return frozenset(k for k, t in self._moved.items() if now - t < KNOB_FLASH_SECONDS)

    def _flashing(self) -> bool:
        """Whether a knob's highlight is on or has just gone off (and must be drawn away)."""
        now = time.perf_counter()
        return any(now - t < KNOB_FLASH_SECONDS + 2.0 / self.fps for t in self._moved.values())

    def send(self, command: Command) -> None:
        """Hand a command to the daemon's queue."""
        try:
            self.daemon.send_command(command)
        except Exception as err:  # noqa: BLE001 - a refused command is shown, not fatal
            self.notice = f"{command.name} refused: {err}"
        else:
            self.notice = None

    def select(self, step: int) -> None:
        """Move the selection through all agents, agent 1, agent 2, ... (``step`` +1 or -1)."""
        choices: list[int | None] = [None, *range(len(self.snap.agents))]
        self.selected = choices[(choices.index(self.selected) + step) % len(choices)]

    # -- keys ----------------------------------------------------------------------------------

    def key_bindings(self) -> KeyBindings:
        kb = KeyBindings()

        def command(key: str, name: str, delta: float | None = None, per_agent: bool = True) -> None:
            @kb.add(key)
            def _(event: KeyPressEvent) -> None:
                self.send(Command(name, delta=delta, agent=self.selected if per_agent else None))

        command("space", "start_stop", per_agent=False)
        command("t", "temperature", -TEMPERATURE_STEP)
        command("T", "temperature", +TEMPERATURE_STEP)
        command("d", "density", -DENSITY_STEP)
        command("D", "density", +DENSITY_STEP)
        command("s", "scale_lock", -SCALE_LOCK_STEP)
        command("S", "scale_lock", +SCALE_LOCK_STEP)
        command("o", "top_p", -TOP_P_STEP)
        command("O", "top_p", +TOP_P_STEP)
        command("y", "strays", -STRAYS_STEP)
        command("Y", "strays", +STRAYS_STEP)
        command("w", "morph_steps", -1.0)
        command("W", "morph_steps", +1.0)
        command("m", "mode")
        command("n", "model")
        command("l", "loop")
        command("u", "mutate")
        command("e", "end_call")
        command("p", "panic", per_agent=False)
        command("r", "record", per_agent=False)
        command("-", "tempo", -TEMPO_STEP, per_agent=False)
        command("+", "tempo", +TEMPO_STEP, per_agent=False)
        command("=", "tempo", +TEMPO_STEP, per_agent=False)

        @kb.add("tab")
        @kb.add("down")
        def _next(event: KeyPressEvent) -> None:
            self.select(+1)

        @kb.add("s-tab")
        @kb.add("up")
        def _previous(event: KeyPressEvent) -> None:
            self.select(-1)

        learning = Condition(lambda: self.snap.learning is not None)

        @kb.add("left", filter=learning)
        def _learn_previous(event: KeyPressEvent) -> None:
            self.learn_choice = (self.learn_choice - 1) % len(PARAMETERS)

        @kb.add("right", filter=learning)
        def _learn_next(event: KeyPressEvent) -> None:
            self.learn_choice = (self.learn_choice + 1) % len(PARAMETERS)

        @kb.add("enter", filter=learning)
        def _learn(event: KeyPressEvent) -> None:
            self.send(Command("learn", value=PARAMETERS[self.learn_choice]))

        @kb.add("?")
        def _help(event: KeyPressEvent) -> None:
            self.show_help = not self.show_help

        @kb.add("escape")
        def _close_help(event: KeyPressEvent) -> None:
            self.show_help = False

        @kb.add("q")
        @kb.add("c-c")
        @kb.add("<sigint>")
        def _quit(event: KeyPressEvent) -> None:
            event.app.exit()

        return kb

    # -- layout --------------------------------------------------------------------------------

    def layout(self) -> Layout:
        def rule() -> Window:
            return Window(height=1, char="─", style="class:grid")

        body = HSplit(
            [
                Window(FormattedTextControl(lambda: render.header(self.snap, self.learn_choice)), dont_extend_height=True),
                rule(),
                Window(
                    FormattedTextControl(lambda: render.agent_rows(self.snap, self.selected, self.changed())),
                    dont_extend_height=True,
                ),
                rule(),
                Window(
                    _Lines(lambda w, h: render.roll(self.snap, w, h, self.bars, self.ticks_per_bar)),
                    height=Dimension(min=6, preferred=14, weight=3),
                ),
                rule(),
                Window(FormattedTextControl(lambda: render.meters(self.snap)), height=1),
                rule(),
                Window(
                    _Lines(lambda w, h: render.log_lines(self.snap.log, h, list(self.warnings))),
                    height=Dimension(min=1, preferred=6, weight=1),
                ),
                Window(FormattedTextControl(lambda: render.footer(self.selected, self.snap, self.notice)), height=1),
            ]
        )
        help_box = ConditionalContainer(
            Frame(Window(FormattedTextControl(render.help_text), dont_extend_height=True, dont_extend_width=True),
                  title="keys", style="class:help"),
            filter=Condition(lambda: self.show_help),
        )
        return Layout(FloatContainer(content=body, floats=[Float(content=help_box)]))

    def application(self, input: Input | None = None, output: Output | None = None) -> Application[None]:
        """The full-screen application (pipe input and a dummy output for tests)."""
        return Application(
            layout=self.layout(),
            key_bindings=self.key_bindings(),
            style=render.STYLE,
            full_screen=True,
            input=input,
            output=output,
        )

    async def redraw(self, app: Application[None], worker: threading.Thread | None = None) -> None:
        """Take a snapshot ``fps`` times a second and redraw when it changed; close the panel
        if ``worker`` has ended."""
        while True:
            before = self.snap
            self.refresh()
            if self.snap != before or self._flashing():
                app.invalidate()  # an unchanged screen is not drawn again
            if worker is not None and not worker.is_alive():
                app.exit()
                return
            await asyncio.sleep(1.0 / self.fps)


class _HeldLog(logging.Handler):
    """Holds log records while the panel owns the screen; warnings also go to the log pane."""

    def __init__(self, panel: Panel) -> None:
        super().__init__()
        self.panel = panel
        self.records: deque[logging.LogRecord] = deque(maxlen=2000)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if record.levelno >= logging.WARNING:
            try:
                self.panel.warnings.append(f"{record.levelname.lower()}: {record.getMessage()}")
            except Exception:  # noqa: BLE001 - a bad log call must not break the panel
                self.handleError(record)


@contextmanager
def _log_to_pane(panel: Panel) -> Iterator[None]:
    root = logging.getLogger()
    moved = [
        h for h in root.handlers
        if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in (sys.stderr, sys.stdout)
    ]
    held = _HeldLog(panel)
    for handler in moved:
        root.removeHandler(handler)
    root.addHandler(held)
    try:
        yield
    finally:
        root.removeHandler(held)
        for handler in moved:
            root.addHandler(handler)
        for record in held.records:
            for handler in moved:
                if record.levelno >= handler.level:
                    handler.handle(record)


def run_panel(
    daemon: DaemonLike, *, input: Input | None = None, output: Output | None = None, fps: float = FPS,
    before_run: Callable[[], object] | None = None,
) -> None:
    """Run ``daemon.run()`` in a worker thread and the panel here until ``q`` or until the
    daemon stops. Returns after ``daemon.stop()`` and the worker's end; an error the daemon
    raised is raised again here. Closing the daemon is the caller's job.

    ``before_run`` (the daemon's ``open``): called first on the worker thread, so the panel is
    up at once and shows what loads (its snapshot's ``loading``) while models load and ports
    open; a ``q`` meanwhile stops the daemon once that is done, before it plays."""
    panel = Panel(daemon, fps=fps)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            if before_run is not None:
                before_run()
            daemon.run()
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            errors.append(err)

    worker = threading.Thread(target=work, name="magenta-live daemon", daemon=True)
    app = panel.application(input, output)
    panel.refresh()
    with _log_to_pane(panel):
        worker.start()
        try:
            app.run(pre_run=lambda: app.create_background_task(panel.redraw(app, worker)))
        finally:
            daemon.stop()
            worker.join()
    if errors:
        raise errors[0]
