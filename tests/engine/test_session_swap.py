"""A model or mode swapped by a knob loads off the clock's thread and is swapped in on a step."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import mido

from live.engine.agent import AgentSpec
from live.engine.session import Session
from live.models import save
from live.protocol import Command
from tests.engine.listsink import ListSink
from tests.engine.models import random_model


class Deferred:
    """A loader that keeps the jobs until the test runs them."""

    def __init__(self) -> None:
        self.jobs = []

    def __call__(self, job) -> None:
        self.jobs.append(job)

    def run(self) -> None:
        while self.jobs:
            self.jobs.pop(0)()


def make(loader) -> tuple[Session, ListSink]:
    sink = ListSink()
    model = random_model("basic_rnn", (16,), seed=1)
    session = Session([AgentSpec(name="a")], sink, seed=0, models={0: model}, loader=loader, on_say=SAID.append)
    SAID.clear()
    return session, sink


SAID: list[str] = []  # what the session said (its on_say)


def test_the_swap_waits_for_the_loader_then_for_a_step_boundary(tmp_path):
    loader = Deferred()
    session, sink = make(loader)
    old = session.agents[0]
    path = tmp_path / "other.npz"
    save(random_model("lookback_rnn", (16,), seed=2), path)
    session.command(Command("model", value=str(path)))
    assert session.agents[0] is old and len(loader.jobs) == 1  # nothing loaded on this thread
    for tick in range(7):
        session.tick(tick)
    assert session.agents[0] is old
    loader.run()  # loaded and built, not yet swapped in
    session.tick(7)
    session.tick(11)
    assert session.agents[0] is old  # not on a step's first tick
    session.tick(12)
    new = session.agents[0]
    assert new is not old and new.model.config_id == "lookback_rnn" and new.spec.model == str(path)
    assert ("a", 12) in sink.cancels  # the old agent's notes end at the swap
    assert any("call-response with lookback_rnn" in m for m in SAID)
    assert session.loading == 0


def test_a_model_that_cannot_load_is_said_and_the_old_agent_plays_on(tmp_path):
    loader = Deferred()
    session, _ = make(loader)
    old = session.agents[0]
    (tmp_path / "bad.npz").write_bytes(b"PK not a zip")
    session.command(Command("model", value=str(tmp_path / "missing.npz")))
    session.command(Command("model", value=str(tmp_path / "bad.npz")))
    loader.run()
    session.tick(0)
    assert session.agents[0] is old
    said = list(SAID)
    assert any("missing.npz" in m for m in said) and any("bad.npz" in m for m in said)


def test_a_mode_swap_with_a_real_loader_thread_builds_off_the_callers_thread():
    built_on = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        session, _ = make(pool.submit)
        make_agent = session.make_agent

        def spy(*args, **kwargs):
            built_on.append(threading.current_thread().name)
            return make_agent(*args, **kwargs)

        session.make_agent = spy
        session.command(Command("mode", value="continue"))
        pool.shutdown(wait=True)
    session.player(0, mido.Message("note_on", note=60, velocity=90))
    session.tick(6)
    assert session.agents[0].spec.mode == "continue"
    assert built_on and threading.main_thread().name not in built_on


def test_without_a_loader_a_swap_is_at_once():
    session, _ = make(None)
    session.command(Command("mode", value="continue"))
    assert session.agents[0].spec.mode == "continue"
