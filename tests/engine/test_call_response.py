"""Call and response and continue on the step grid, driven tick by tick with a list sink."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from live.engine.agent import AgentSpec, Out, Params
from live.engine.session import Session
from live.protocol import Command
from live.models.encodings.melody import MELODY_NO_EVENT
from tests.engine.models import random_model


class ListSink:
    """Collects what agents play; cancel drops pending messages and cuts sounding notes."""

    def __init__(self) -> None:
        self.outs: list[tuple[str, Out]] = []
        self.cancels: list[tuple[str, int]] = []

    def play(self, agent, out: Out) -> None:
        self.outs.append((agent.name, out))

    def cancel(self, agent, tick: int) -> None:
        self.cancels.append((agent.name, tick))
        kept = [(n, o) for n, o in self.outs if n != agent.name or o.tick <= tick]
        sounding = set()
        for n, o in kept:
            if n == agent.name and o.msg.type == "note_on" and o.msg.velocity:
                sounding.add(o.msg.note)
            elif n == agent.name:
                sounding.discard(o.msg.note)
        self.outs = kept + [(agent.name, Out(tick, mido.Message("note_off", note=p))) for p in sorted(sounding)]

    def notes(self, name: str | None = None) -> list[tuple[int, int]]:
        return [(o.tick, o.msg.note) for n, o in self.outs if (name is None or n == name) and o.msg.type == "note_on" and o.msg.velocity]


def hanging(outs: list[Out]) -> set[int]:
    sounding: set[int] = set()
    for o in sorted(outs, key=lambda o: o.tick):
        if o.msg.type == "note_on" and o.msg.velocity:
            sounding.add(o.msg.note)
        else:
            sounding.discard(o.msg.note)
    return sounding


@pytest.fixture(scope="module")
def model():
    return random_model("basic_rnn", (32,), seed=1)


def run(session: Session, phrase: list[tuple[int, int, int]], until: int, at: dict[int, Command] | None = None) -> None:
    """Play (start tick, end tick, pitch) notes and run the clock to ``until``."""
    events = sorted([(s, 1, p) for s, _, p in phrase] + [(e, 0, p) for _, e, p in phrase])
    i = 0
    for tick in range(until + 1):
        while i < len(events) and events[i][0] <= tick:
            t, on, pitch = events[i]
            session.player(t, mido.Message("note_on" if on else "note_off", note=pitch, velocity=90 if on else 0))
            i += 1
        if at and tick in at:
            session.command(at[tick])
        session.tick(tick)


def eighths(pitches: list[int], start: int = 0) -> list[tuple[int, int, int]]:
    return [(start + 12 * i, start + 12 * i + 12, p) for i, p in enumerate(pitches)]


def make(model, seed: int = 0, **spec) -> tuple[Session, ListSink]:
    sink = ListSink()
    return Session([AgentSpec(name="a", **spec)], sink, seed=seed, models={0: model}), sink


def test_the_answer_starts_on_the_beat_after_the_silence_and_lasts_as_long_as_the_call(model):
    session, sink = make(model, params=Params(density=0.9))
    run(session, eighths([60, 62, 64, 65, 67, 65, 64, 62]), 400)  # 4 beats: ticks 0..96
    agent = session.agents[0]
    # last note ends at tick 96 (step 16); one beat (4 steps) of silence; next beat: step 20
    assert agent.call.answer_start == 20 and agent.call.answer_end == 36
    ticks = [t for t, _ in sink.notes()]
    assert ticks and min(ticks) == 120 and max(ticks) < 216  # its first note on the beat
    assert all(t % 6 == 0 for t, _ in sink.notes())
    assert not hanging([o for _, o in sink.outs])
    assert agent.state == "idle" and agent.call.answers == 1


@pytest.mark.parametrize("config", ["basic_rnn", "lookback_rnn", "polyphony", "drum_kit"])
def test_every_answer_opens_with_a_note_on_its_grid_point(config):
    # at density 0.05 the quiet classes are e^3.6 times likelier than the model says: left to
    # itself, an answer would often open with rests and its first note come steps late
    model = random_model(config, (32,), seed=3)
    pitches = [36, 38, 42, 46, 36, 38, 42, 46] if config == "drum_kit" else [60, 62, 64, 65, 67, 65, 64, 62]
    for seed in range(10):
        session, sink = make(model, seed=seed, params=Params(density=0.05))
        run(session, eighths(pitches), 220)
        agent = session.agents[0]
        assert agent.call.answers == 1
        assert min(t for t, _ in sink.notes()) == agent.call.answer_start * 6, (config, seed)


def test_the_call_is_fed_as_it_is_played(model):
    session, _ = make(model)
    run(session, eighths([60, 64, 67]), 30)
    events = session.agents[0].stream.events
    assert [e for e in events if e >= 0][:3] == [60, 64, 67]  # teacher forcing, in the model's range
    assert events[1] == MELODY_NO_EVENT  # held over the second step of each eighth note


@pytest.mark.parametrize("quantize,start", [("step", 20), ("beat", 20), ("bar", 32)])
def test_response_quantize(model, quantize, start):
    session, _ = make(model, response_quantize=quantize, silence=3)
    run(session, eighths([60, 62, 64, 65, 67, 65, 64, 62]), 200)
    # silence ends at step 15 + 3 = 18; the answer starts at step 19, beat 20 or bar 32
    assert session.agents[0].call.answer_start == {"step": 19, "beat": 20, "bar": 32}[quantize]


def test_a_short_call_is_ignored_and_response_bars_sets_the_length(model):
    session, sink = make(model, min_call=4)
    run(session, [(0, 3, 60)], 100)
    assert session.agents[0].call.calls_ignored == 1 and not sink.notes()
    session, sink = make(model, params=Params(response_bars=2.0))
    run(session, eighths([60, 62]), 300)
    agent = session.agents[0]
    assert agent.call.answer_end - agent.call.answer_start == 32


def test_end_call_ends_the_call_at_once(model):
    session, _ = make(model, silence=64)
    run(session, [(0, 200, 60)], 60, at={30: Command("end_call")})
    agent = session.agents[0]
    assert agent.state in ("waiting", "answering") and agent.call.answer_start == 8


def test_the_player_cuts_the_answer_and_a_new_call_begins(model):
    session, sink = make(model, params=Params(density=1.0))
    phrase = eighths([60, 62, 64, 65, 67, 65, 64, 62]) + [(150, 160, 72)]
    run(session, phrase, 170)
    agent = session.agents[0]
    assert sink.cancels == [("a", 150)]
    assert agent.state == "listening" and agent.call.call_start == 25
    assert not [t for t, _ in sink.notes("a") if t > 150]
    assert not hanging([o for _, o in sink.outs])


def test_loop_repeats_the_answer_and_mutate_answers_it(model):
    session, sink = make(model, params=Params(loop=True, density=0.9, response_bars=1.0))
    run(session, eighths([60, 62, 64, 65]), 96 * 5)
    first = [(t - 120, p) for t, p in sink.notes() if 120 <= t < 216]
    second = [(t - 216, p) for t, p in sink.notes() if 216 <= t < 312]
    assert first and first == second
    session, sink = make(model, params=Params(mutate=True, density=0.9, response_bars=1.0))
    run(session, eighths([60, 62, 64, 65]), 96 * 5)
    assert session.agents[0].call.answers >= 3 and session.agents[0].state in ("waiting", "answering")


def test_continue_plays_on_until_the_player_plays(model):
    session, sink = make(model, mode="continue", params=Params(density=0.9))
    run(session, eighths([60, 62, 64, 65]) + [(400, 410, 70)], 420)
    ticks = [t for t, _ in sink.notes()]
    assert max(ticks) > 300  # far beyond a call-length answer
    assert session.agents[0].state == "listening"
    assert not hanging([o for _, o in sink.outs])


def test_same_seed_same_answer_other_seed_other_answer(model):
    def answer(seed):
        session, sink = make(model, seed=seed, params=Params(density=0.9))
        run(session, eighths([60, 62, 64, 65, 67, 65, 64, 62]), 300)
        return sink.notes()

    assert answer(5) == answer(5)
    assert answer(5) != answer(6)


def test_density_raises_and_lowers_the_notes_per_bar(model):
    """The density knob biases the no-event / note-off classes (live.engine.agent.density_bias)."""

    def notes_per_bar(density):
        counts = []
        for seed in range(6):
            session, sink = make(model, seed=seed, params=Params(density=density, response_bars=4.0))
            run(session, eighths([60, 62, 64, 65, 67, 65, 64, 62]), 520)
            counts.append(len(sink.notes()) / 4)
        return float(np.mean(counts))

    sparse, neutral, busy = notes_per_bar(0.1), notes_per_bar(0.5), notes_per_bar(0.9)
    print(f"notes per bar at density 0.1 / 0.5 / 0.9: {sparse:.2f} / {neutral:.2f} / {busy:.2f}")
    assert sparse < neutral < busy


def test_knob_commands_reach_the_agents(model):
    session, _ = make(model)
    session.command(Command("temperature", value=3.0))
    session.command(Command("density", delta=-0.2))
    session.command(Command("loop"))
    p = session.agents[0].params
    assert (p.temperature, round(p.density, 3), p.loop) == (2.0, 0.3, True)
    session.command(Command("mode", value="continue"))
    assert session.agents[0].mode == "continue" and session.agents[0].params is p
    with pytest.raises(ValueError):
        session.command(Command("nonsense"))
