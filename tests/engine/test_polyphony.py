"""Polyphony RNN in the daemon: the polyphonic voice (call and response) and harmonize mode.

Driven tick by tick with a list sink, and end to end through ``run_offline`` on MIDI files
written here. Random-weight models (tests/engine/models.py): the checks are about timing,
pitch order, note pairing and the event stream's validity, not about musical quality.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path

import mido
import numpy as np
import pytest

from live.engine.agent import AgentSpec, Out, Params
from live.engine.polyphony import MAX_REOPENS
from live.engine.voices.polyphony import MAX_NOTES_PER_STEP, MAX_PLAYER_NOTES_PER_STEP, PolyVoice
from live.engine.session import Session
from live.engine.voices import StepInput
from live.models.encodings.polyphony import (
    CONTINUED_NOTE,
    END,
    NEW_NOTE,
    POLY_START,
    POLY_STEP_END,
    START,
    STEP_END,
    PolyEvent,
    poly_events_to_notes,
)
from live.offline import run_offline
from tests.engine.models import random_model

MELODY = [72, 71, 69, 67, 65, 64, 62, 60, 62, 64, 65, 67, 69, 71, 72, 74]


class ListSink:
    """Collects (agent name, Out); a cancel cuts the agent's sounding notes at its tick."""

    def __init__(self) -> None:
        self.outs: list[tuple[str, Out]] = []

    def play(self, agent, out: Out) -> None:
        self.outs.append((agent.name, out))

    def cancel(self, agent, tick: int) -> None:
        sounding = sounding_after([o for n, o in self.outs if n == agent.name])
        self.outs += [(agent.name, Out(tick, mido.Message("note_off", note=p, velocity=0))) for p in sorted(sounding)]

    def ons(self) -> list[Out]:
        return [o for _, o in self.outs if o.msg.type == "note_on" and o.msg.velocity]


def sounding_after(outs: list[Out]) -> set[int]:
    """Pitches left sounding by ``outs`` in the order they were played; fails on a note-on of
    a pitch already sounding (a voice must end it first)."""
    sounding: set[int] = set()
    for o in outs:
        if o.msg.type == "note_on" and o.msg.velocity:
            assert o.msg.note not in sounding, f"note {o.msg.note} struck again at tick {o.tick} without a note-off"
            sounding.add(o.msg.note)
        else:
            sounding.discard(o.msg.note)
    return sounding


def play_notes(session: Session, notes: list[tuple[int, int, int]], until: int, velocity: int = 80) -> None:
    """Play (start tick, end tick, pitch) notes into ``session`` and run its clock to ``until``
    (messages of a tick before the tick itself, as the daemon and run_offline do)."""
    events = sorted([(s, 1, p) for s, _, p in notes] + [(e, 0, p) for _, e, p in notes])
    i = 0
    for tick in range(until + 1):
        while i < len(events) and events[i][0] <= tick:
            t, on, pitch = events[i]
            session.player(t, mido.Message("note_on" if on else "note_off", note=pitch, velocity=velocity if on else 0))
            i += 1
        session.tick(tick)


def melody(pitches: list[int], start: int = 0, every: int = 12, length: int = 10) -> list[tuple[int, int, int]]:
    return [(start + every * i, start + every * i + length, p) for i, p in enumerate(pitches)]


def write_midi(path: Path, notes: list[tuple[int, int, int]], bpm: float = 120.0) -> Path:
    """A one-track file of (start tick, end tick, pitch) notes, 24 ticks per quarter -> 480 ppq."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    events = sorted([(s * 20, 1, p) for s, _, p in notes] + [(e * 20, 0, p) for _, e, p in notes])
    now = 0
    for t, on, p in events:
        track.append(mido.Message("note_on" if on else "note_off", note=p, velocity=80 if on else 0, time=t - now))
        now = t
    mid.save(path)
    return path


def track_notes(path: Path, name: str) -> list[tuple[int, int, int]]:
    """(start pulse, end pulse, pitch) of track ``name`` in a recording; fails on a note-on of a
    sounding pitch or a note left sounding at the end."""
    mid = mido.MidiFile(path)
    for track in mid.tracks:
        if track.name != name:
            continue
        notes, sounding, now = [], {}, 0
        for msg in track:
            now += msg.time
            if msg.type == "note_on" and msg.velocity:
                assert msg.note not in sounding, f"{name}: note {msg.note} struck twice at pulse {now}"
                sounding[msg.note] = now
            elif msg.type in ("note_on", "note_off") and msg.note in sounding:
                notes.append((sounding.pop(msg.note), now, msg.note))
        assert not sounding, f"{name}: notes left sounding {sorted(sounding)}"
        return sorted(notes)
    raise AssertionError(f"no track {name!r} in {path}")


def max_polyphony(notes: list[tuple[int, int, int]]) -> int:
    """The most notes sounding at once."""
    edges = sorted([(s, 1) for s, _, _ in notes] + [(e, -1) for _, e, _ in notes])
    best = now = 0
    for _, d in edges:
        now += d
        best = max(best, now)
    return best


def steps_of(events: list[PolyEvent]) -> list[list[PolyEvent]]:
    """A polyphony event stream cut into steps (each without its STEP_END); START dropped."""
    steps, current = [], []
    for e in events:
        if e[0] == START:
            continue
        if e[0] == STEP_END:
            steps.append(current)
            current = []
        else:
            current.append(e)
    assert not current, "the stream must stop at a step boundary"
    return steps


def assert_valid_stream(events: list[PolyEvent]) -> None:
    """Every step is in strictly descending pitch, a CONTINUED_NOTE continues a pitch of the
    step before, and there is no START after the first event and no END."""
    assert all(e[0] != END for e in events)
    assert all(e[0] != START for e in events[1:])
    before: set[int] = set()
    for step in steps_of(events):
        pitches = [e.pitch for e in step]
        assert pitches == sorted(set(pitches), reverse=True), f"step not descending: {step}"
        for e in step:
            if e[0] == CONTINUED_NOTE:
                assert e.pitch in before, f"CONTINUED_NOTE({e.pitch}) with nothing to continue"
        before = set(pitches)
    poly_events_to_notes(list(events) + [POLY_STEP_END])  # a valid sequence for note-seq's rules too


@pytest.fixture(scope="module")
def model():
    return random_model("polyphony", (32,), seed=3)


def harmonize(model, seed: int = 0, **params) -> tuple[Session, ListSink]:
    sink = ListSink()
    spec = AgentSpec(name="h", mode="harmonize", output_channel=2, params=Params(**params))
    return Session([spec], sink, seed=seed, models={0: model}), sink


# -- the voice --------------------------------------------------------------------------------


def test_player_events_are_new_notes_struck_and_continued_notes_held(model):
    voice = PolyVoice(model, 0)
    first = voice.player_events(StepInput([(60, 90), (67, 90)]), {60, 67})
    assert first == [POLY_START, PolyEvent(NEW_NOTE, 67), PolyEvent(NEW_NOTE, 60), POLY_STEP_END]
    # 67 held, 60 released, 64 struck
    second = voice.player_events(StepInput([(60, 0), (64, 80)]), {67, 64})
    assert second == [PolyEvent(CONTINUED_NOTE, 67), PolyEvent(NEW_NOTE, 64), POLY_STEP_END]
    assert voice.player_events(StepInput(), set()) == [POLY_STEP_END]


def test_sampled_steps_are_valid_and_capped(model):
    """Sampling many steps at a high temperature and density never breaks the encoding's rules."""
    from live.engine.stream import Stream

    voice, stream = PolyVoice(model, 0), Stream(model)
    stream.feed(POLY_START)
    rng = np.random.default_rng(0)
    from live.engine.agent import density_bias

    bias = density_bias(voice.quiet, model.num_classes, 1.0)
    outs: list[Out] = []
    for step in range(64):
        events = voice.sample(stream, rng, 1.5, bias, None)
        assert events[-1] == POLY_STEP_END and all(e[0] != STEP_END for e in events[:-1])
        assert len(events) - 1 <= MAX_NOTES_PER_STEP
        voice.render(events, step * 6, 90, lambda t, m: outs.append(Out(t, m)))
    assert_valid_stream(stream.events)
    assert max(len(s) for s in steps_of(stream.events)) > 1  # chords
    sounding_after(outs)  # never re-struck without its note-off
    assert voice.sounding == {e.pitch for e in steps_of(stream.events)[-1]}


def test_quiet_events_are_step_end_and_continued_notes(model):
    voice = PolyVoice(model, 0)
    assert len(voice.quiet) == 1 + 128
    assert STEP_END in voice.quiet and 131 in voice.quiet and 3 not in voice.quiet


# -- harmonize ----------------------------------------------------------------------------------


def test_harmony_leaves_at_once_when_the_note_arrives_and_lies_below_it(model):
    session, sink = harmonize(model, seed=1)
    notes = melody(MELODY)
    onsets = {s: p for s, _, p in notes}
    play_notes(session, notes, 400)
    ons = sink.ons()
    assert len(ons) >= len(notes)  # harmony for most notes (random weights: not for every one)
    harmonized = set()
    for o in ons:
        assert o.now, "harmony goes out at once"
        assert o.tick in onsets, f"a harmony note at tick {o.tick}, where the player struck nothing"
        assert o.msg.note < onsets[o.tick], "the melody is the top voice"
        assert o.msg.channel == 1
        harmonized.add(o.tick)
    assert len(harmonized) >= len(notes) // 2
    agent = session.agents[0]
    assert_valid_stream(agent.stream.events)
    for step in steps_of(agent.stream.events):  # every melody onset has a voice below it
        if any(e[0] == NEW_NOTE and e.pitch in MELODY for e in step[:1]):
            assert len(step) >= 2, step
    assert agent.state == "idle" and not agent.poly.sounding  # the player stopped: silence, then idle


def test_a_note_on_a_mid_point_before_the_clock_gets_there_opens_the_earlier_step(model):
    """The daemon rounds a note's time to the nearest tick: a note up to half a tick before a
    step's mid-point comes with the mid-point's tick, before the clock has handed that tick to
    the agent. It opens the earlier step, still open for input (the tick is as near to it as to
    the next), instead of first feeding that step without it (model steps before the harmony)."""
    session, sink = harmonize(model, seed=1)
    agent = session.agents[0]
    st = agent.step_ticks
    session.player(0, mido.Message("note_on", note=72, velocity=80))
    for tick in range(st + st // 2):  # up to the tick before step 1's mid-point
        session.tick(tick)
    assert agent.processed == 0 and agent.open is None
    fed = len(agent.stream.events)
    sink.outs.clear()
    session.player(st + st // 2, mido.Message("note_on", note=74, velocity=80))
    assert agent.open == 1 and agent.processed == 1, "the note opened step 1 (not step 2 after feeding step 1)"
    ons = sink.ons()
    assert ons and all(o.now and o.msg.note < 74 for o in ons)
    assert PolyEvent(NEW_NOTE, 74) in agent.stream.events[fed:]
    fed = len(agent.stream.events)
    session.tick(st + st // 2)  # the mid-point arrives: step 1 closes, nothing more is fed
    assert agent.open is None and len(agent.stream.events) == fed
    session.player(st + st // 2 + 1, mido.Message("note_on", note=76, velocity=80))
    assert agent.open == 2, "after the mid-point a note opens the next step"


def test_every_harmony_note_ends_and_none_outlasts_the_melody(model):
    for seed in range(3):
        session, sink = harmonize(model, seed=seed, density=0.8)
        notes = melody(MELODY, every=12, length=20)  # legato: each note overlaps the next
        play_notes(session, notes, 500)
        outs = [o for _, o in sink.outs]
        assert not sounding_after(outs)
        last_off = max(o.tick for o in outs)
        assert last_off <= notes[-1][1] + 6  # ends with the melody (within its step's mid-point)


def test_a_note_just_before_a_step_start_belongs_to_that_step(model):
    """A note at tick 6s-2 opens step s (not s-1): the stream has s - s0 steps between the
    player's onsets, and the harmony is sent at the note's own tick."""
    session, sink = harmonize(model, seed=2)
    play_notes(session, [(0, 40, 72), (46, 60, 70)], 200)  # 46 = 6*8 - 2: step 8
    agent = session.agents[0]
    steps = steps_of(agent.stream.events)
    player_steps = [i for i, st in enumerate(steps) if PolyEvent(NEW_NOTE, 72) in st or PolyEvent(NEW_NOTE, 70) in st]
    assert player_steps == [0, 8]
    assert steps[8][0] == PolyEvent(NEW_NOTE, 70)  # the melody is the step's first (top) event
    assert all(o.tick in (0, 46) for o in sink.ons())


def test_a_chord_reopens_its_step_with_every_note_and_keeps_the_harmony_sent(model):
    found = 0
    for seed in range(6):
        session, sink = harmonize(model, seed=seed, density=0.7)
        # a melody note, then a two-note chord struck at one tick, then one arriving 2 ticks later
        play_notes(session, [(0, 10, 76), (24, 40, 79), (24, 40, 67), (26, 40, 72)], 200)
        agent = session.agents[0]
        assert_valid_stream(agent.stream.events)
        step = steps_of(agent.stream.events)[4]
        for pitch in (79, 72, 67):  # all three in the chord's step (4 = tick 24), in pitch order
            assert PolyEvent(NEW_NOTE, pitch) in step
        assert step[0] == PolyEvent(NEW_NOTE, 79)
        chord_harmony = [o for o in sink.ons() if o.tick in (24, 26)]
        assert all(o.msg.note < 79 and o.msg.note not in (67, 72) for o in chord_harmony)
        # what was sent at tick 24 is still in the step after the re-open at 26
        sent = {o.msg.note for o in chord_harmony if o.tick == 24}
        assert sent <= {e.pitch for e in step}
        found += bool(chord_harmony)
        assert not sounding_after([o for _, o in sink.outs])
    assert found


def test_a_note_arriving_after_its_step_closed_counts_on_the_next_step_without_harmony(model):
    """A note-on stamped with a tick whose step has already been fed (a late delivery) is
    heard on the next step and gets no harmony of its own."""
    session, sink = harmonize(model, seed=0)
    play_notes(session, [(0, 30, 72)], 10)  # step 0 opened at tick 0, step 1 fed at tick 9
    session.player(5, mido.Message("note_on", note=67, velocity=80))  # nearest step 1: closed
    for tick in range(11, 60):
        session.tick(tick)
    session.player(60, mido.Message("note_off", note=67, velocity=0))
    play_notes(session, [], 0)
    steps = steps_of(session.agents[0].stream.events)
    assert PolyEvent(NEW_NOTE, 67) in steps[2] and PolyEvent(CONTINUED_NOTE, 67) in steps[3]
    assert {o.tick for o in sink.ons()} <= {0}


def test_keeping_the_model_warm_changes_nothing_it_plays(model):
    notes = melody([72, 71, 69, 67, 65, 64, 62, 60])
    plain, plain_sink = harmonize(model, seed=5)
    play_notes(plain, notes, until=120)
    warm, warm_sink = harmonize(model, seed=5)
    warm.tick = _warming(warm)
    play_notes(warm, notes, until=120)
    assert warm_sink.ons() and warm_sink.outs == plain_sink.outs


def test_a_rehearsal_gives_way_to_input_between_model_steps_and_changes_nothing_it_plays(model):
    """The daemon's loop runs the rehearsal; a note that comes meanwhile must not wait for all of
    it. Asked between model steps whether input waits, it gives up at once, the stream rewound;
    interrupted at every possible model step, the agent still plays what it plays unrehearsed."""
    notes = melody([72, 71, 69, 67, 65, 64, 62, 60])
    plain, plain_sink = harmonize(model, seed=5)
    play_notes(plain, notes, until=120)
    asked: list[int] = []

    def interrupted() -> bool:  # input waits at the k-th question of each rehearsal, k = 1, 2, 3, ...
        asked[-1] += 1
        return asked[-1] >= len(asked) % 5 + 1

    warm, warm_sink = harmonize(model, seed=5)
    warm.tick = _warming(warm, interrupted, asked)
    play_notes(warm, notes, until=120)
    agent = warm.agents[0]
    assert agent.rehearsals_interrupted > 20
    assert max(asked) <= 5, "the rehearsal asked on after input waited"
    assert warm_sink.ons() and warm_sink.outs == plain_sink.outs


def _warming(session: Session, interrupted=None, asked: list[int] | None = None):
    """session.tick, with keep_warm before every tick (the daemon calls it on a timer)."""
    tick = session.tick

    def warmed(t: int) -> None:
        if asked is not None:
            asked.append(0)
        session.keep_warm(interrupted)
        tick(t)

    return warmed


def test_a_flood_of_notes_costs_a_bounded_number_of_model_steps(model):
    session, sink = harmonize(model, seed=0)
    agent = session.agents[0]
    for tick in range(48):
        if tick < 40:
            for i in range(30):  # 1200 note-ons and offs, 30 a tick
                pitch = 30 + (tick * 7 + i * 5) % 80
                session.player(tick, mido.Message("note_on", note=pitch, velocity=80))
                session.player(tick, mido.Message("note_off", note=pitch, velocity=0))
        session.tick(tick)
    play_notes(session, [], 0)
    for tick in range(48, 200):
        session.tick(tick)
    events = agent.stream.events
    assert_valid_stream(events)
    steps = steps_of(events)
    # per step at most 16 of the player's notes and 16 of the model's
    assert max(len(s) for s in steps) <= MAX_PLAYER_NOTES_PER_STEP + MAX_NOTES_PER_STEP
    assert agent.state == "idle"
    assert not sounding_after([o for _, o in sink.outs])
    opens = {o.tick for o in sink.ons()}
    assert len(opens) <= 8 * (1 + MAX_REOPENS)  # harmony only at each step's first few note-ons


def run_with_model(monkeypatch, model, call: Path, out: Path, specs: list[AgentSpec], seed: int, tail_bars: int = 2):
    """run_offline with a random-weight model (run_offline loads models by name)."""
    import live.engine.session as session_module

    monkeypatch.setattr(session_module, "load_model", lambda spec: model)
    return run_offline(call, out, specs, seed=seed, tail_bars=tail_bars)


def test_harmonize_offline_is_deterministic(model, tmp_path, monkeypatch):
    call = write_midi(tmp_path / "tune.mid", melody(MELODY, length=11))
    spec = [AgentSpec(name="harmony", mode="harmonize", output_channel=2)]
    outs = []
    for i, seed in enumerate((5, 5, 6)):
        out = tmp_path / f"out{i}.mid"
        run_with_model(monkeypatch, model, call, out, spec, seed)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]


def test_offline_harmony_is_recorded_with_the_players_notes_below_them(model, tmp_path, monkeypatch):
    call = write_midi(tmp_path / "tune.mid", melody(MELODY, length=11))
    out = tmp_path / "out.mid"
    run_with_model(monkeypatch, model, call, out, [AgentSpec(name="harmony", mode="harmonize", output_channel=2)], seed=1)
    player = {s: p for s, _, p in track_notes(out, "player")}
    harmony = track_notes(out, "harmony")  # every note-on has its note-off
    assert harmony
    for start, _, pitch in harmony:
        assert start in player, "harmony starts exactly with a player's note"
        assert pitch < player[start]


# -- call and response -----------------------------------------------------------------------------


def test_call_and_response_with_a_polyphony_model_answers_in_chords(model, tmp_path, monkeypatch):
    call = write_midi(tmp_path / "call.mid", melody([60, 64, 67, 72, 67, 64, 60, 55]))
    chords = 0
    for seed in range(4):
        out = tmp_path / f"answer{seed}.mid"
        run_with_model(monkeypatch, model, call, out, [AgentSpec(name="answer", mode="call-response")], seed=seed)
        answer = track_notes(out, "answer")  # every note-on has its note-off
        assert answer, "an answer was played"
        assert min(s for s, _, _ in answer) >= (7 * 12 + 10) * 20  # after the call
        chords += max_polyphony(answer) > 1
    assert chords >= 2


def test_call_and_response_loop_replays_a_polyphonic_answer(model):
    sink = ListSink()
    spec = AgentSpec(name="a", mode="call-response", params=Params(loop=True, response_bars=1, density=0.8))
    session = Session([spec], sink, seed=0, models={0: model})
    play_notes(session, melody([60, 64, 67, 72]), 48)
    agent = session.agents[0]
    first = None
    for tick in range(49, 600):
        session.tick(tick)
        if first is None and agent.state == "answering":
            first = agent.call.answer_start * 6
    assert agent.call.answers >= 4
    assert_valid_stream(agent.stream.events)
    bars: dict[int, list[tuple[int, int, str]]] = {}
    for _, o in sink.outs:
        if o.tick >= first:
            bars.setdefault((o.tick - first) // 96, []).append(((o.tick - first) % 96, o.msg.note, o.msg.type))
    assert bars[0] and max_polyphony_in_bar(bars[0]) > 1
    assert sorted(bars[1]) == sorted(bars[2]) == sorted(bars[3])  # the loop (bar 0 starts from silence)
    session.stop(600)
    assert not sounding_after([o for _, o in sink.outs])


def max_polyphony_in_bar(messages: list[tuple[int, int, str]]) -> int:
    by_tick: dict[int, int] = {}
    for t, _, kind in messages:
        by_tick[t] = by_tick.get(t, 0) + (kind == "note_on")
    return max(by_tick.values())


# -- density -------------------------------------------------------------------------------------


def notes_per_bar(outs: list[Out], bars: float) -> float:
    return sum(1 for o in outs if o.msg.type == "note_on" and o.msg.velocity) / bars


@pytest.mark.parametrize("mode", ["harmonize", "call-response"])
def test_notes_per_bar_follow_density(model, mode):
    rates = {}
    for density in (0.1, 0.5, 0.9):
        total = 0.0
        for seed in range(4):
            sink = ListSink()
            spec = AgentSpec(name="a", mode=mode, params=Params(density=density, response_bars=4))
            session = Session([spec], sink, seed=seed, models={0: model})
            play_notes(session, melody(MELODY[:8]), 900)  # one bar; the answer: four bars
            total += notes_per_bar([o for _, o in sink.outs], 1 if mode == "harmonize" else 4)
        rates[density] = total / 4
    print(f"\n{mode}: notes per bar at density 0.1 / 0.5 / 0.9: {rates[0.1]:.1f} / {rates[0.5]:.1f} / {rates[0.9]:.1f}")
    assert rates[0.1] < rates[0.5] < rates[0.9]


# -- how long the harmony takes (printed for the report; the benchmark measures it for real) ----------


class TimingSink(ListSink):
    """A list sink that notes when (perf_counter) each message was handed over."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def play(self, agent, out: Out) -> None:
        self.times.append(time.perf_counter())
        super().play(agent, out)


def harmony_latency(model, notes: int = 64) -> tuple[list[float], list[float]]:
    """Seconds from each player's note-on to its first and to its last harmony note-on."""
    sink = TimingSink()
    session = Session([AgentSpec(name="h", mode="harmonize", output_channel=2)], sink, seed=0, models={0: model})
    first, last = [], []
    for i, pitch in enumerate((MELODY * (notes // len(MELODY) + 1))[:notes]):
        start = 12 * i
        for tick in range(start - 11 if i else 0, start):
            session.tick(tick)
        mark = len(sink.outs)
        begin = time.perf_counter()
        session.player(start, mido.Message("note_on", note=pitch, velocity=80))
        ons = [t for (_, o), t in zip(sink.outs[mark:], sink.times[mark:]) if o.msg.type == "note_on" and o.msg.velocity]
        if ons:
            first.append(ons[0] - begin)
            last.append(ons[-1] - begin)
        session.player(start + 10, mido.Message("note_off", note=pitch, velocity=0))
    return first, last


def test_print_time_from_note_arrival_to_harmony():
    """Printed for the report, no timed assert (benchmarks/ measures it through real ports)."""
    models = {"random 3x256 (Magenta's default size)": random_model("polyphony", (256, 256, 256), seed=0)}
    bundle = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "magenta_bundles" / "polyphony_128x2.mag"
    if bundle.exists():
        import live.models

        models["polyphony_128x2.mag (trained)"] = live.models.load(str(bundle))
    for name, m in models.items():
        first, last = harmony_latency(m)
        assert first and len(first) == len(last)

        def ms(values: list[float]) -> str:
            values = sorted(values)
            return f"median {statistics.median(values) * 1e3:.2f} ms, p99 {values[int(0.99 * (len(values) - 1))] * 1e3:.2f} ms"

        print(f"\nharmonize, {name}: note-on -> first harmony note {ms(first)}; -> last harmony note {ms(last)}")


def test_likely_openings_are_the_nearest_notes_first_and_the_continuations_below_each():
    from live.engine.polyphony import LOOKAHEAD_CHAIN, LOOKAHEAD_SPAN, likely_openings

    new = lambda p: PolyEvent(NEW_NOTE, p)  # noqa: E731
    cont = lambda p: PolyEvent(CONTINUED_NOTE, p)  # noqa: E731
    paths = likely_openings(64, frozenset(), frozenset({55, 60, 67}))
    assert len(set(paths)) == len(paths)  # each once
    firsts = [path[0].pitch for path in paths if len(path) == 1]
    assert firsts[:5] == [64, 63, 65, 62, 66] and len(firsts) == 2 * LOOKAHEAD_SPAN + 1
    of = lambda p, paths=paths: [path for path in paths if new(p) in path]  # noqa: E731
    # after each note, the harmony's notes below it continued one by one from the top
    assert of(64) == [(new(64),), (new(64), cont(60)), (new(64), cont(60), cont(55))]
    assert of(61) == [(new(61),), (new(61), cont(60)), (new(61), cont(60), cont(55))]
    assert of(60) == [(new(60),), (new(60), cont(55))] and of(55) == [(new(55),)]
    assert of(68) == [(new(68),), (new(68), cont(67)), (new(68), cont(67), cont(60)), (new(68), cont(67), cont(60), cont(55))]
    many = likely_openings(80, frozenset(), frozenset({40, 45, 50, 55, 60}))
    assert max(len(path) for path in many) == 1 + LOOKAHEAD_CHAIN and (new(80), cont(60), cont(55), cont(50)) in many
    assert [p.pitch for p, *_ in likely_openings(2, frozenset(), frozenset())][:4] == [2, 1, 3, 0]  # the keyboard's edge
    assert max(p.pitch for p, *_ in likely_openings(126, frozenset(), frozenset())) == 127
    # the player still holds 64 and 67 (the last notes): the next note may come after their
    # note-offs, or before them (legato): both, and below it the harmony's note 50, and the
    # player's held notes only where they are still held
    legato = likely_openings(64, frozenset({64, 67}), frozenset({50}))
    of = lambda p: [path for path in legato if new(p) in path]  # noqa: E731
    assert of(62) == [
        (new(62),), (new(62), cont(50)),
        (cont(67), cont(64), new(62)), (cont(67), cont(64), new(62), cont(50)),
    ]
    assert of(65) == [
        (new(65),), (new(65), cont(50)),
        (cont(67), new(65)), (cont(67), new(65), cont(64)), (cont(67), new(65), cont(64), cont(50)),
    ]
    assert of(67) == [(new(67),), (new(67), cont(50)), (new(67), cont(64)), (new(67), cont(64), cont(50))]  # 67 struck again


@contextlib.contextmanager
def counted_steps(model):
    """Count the model's one-hot steps (``Model.logits_of_class``) inside the block: ``calls[0]``."""
    calls = [0]
    step = model.logits_of_class

    def counted(index, state):
        calls[0] += 1
        return step(index, state)

    model.logits_of_class = counted
    try:
        yield calls
    finally:
        del model.logits_of_class


def steps_at_first_harmony(session: Session, calls: list[int], played: list[tuple[int, mido.Message]]) -> int | None:
    """Play ``played`` ((tick, message) pairs) into ``session``; the count of model steps
    (``calls[0]``, see ``counted_steps``) when its agent's first harmony note-on left (None: none did)."""
    sink = session.agents[0].sink
    firsts: list[int] = []
    play = sink.play

    def first(agent, out):
        if out.msg.type == "note_on" and out.msg.velocity and not firsts:
            firsts.append(calls[0])
        play(agent, out)

    sink.play = first
    try:
        for tick, msg in played:
            session.player(tick, msg)
    finally:
        sink.play = play
    return firsts[0] if firsts else None


def test_after_keeping_warm_a_near_note_gets_its_harmony_without_a_model_step(model):
    """The daemon's loop keeps the agent warm between notes: the model steps of the likely next
    melody notes are worked out then, so a note near the last one is harmonized at once; the
    music is the same (test_keeping_the_model_warm_changes_nothing_it_plays)."""
    session, sink = harmonize(model, seed=3)
    play_notes(session, melody([67, 69]), until=20)
    with counted_steps(model) as calls:
        last = 20
        for pitch, tick in ((71, 24), (60, 36), (84, 48)):  # near, the player still on 69; near; too far
            for t in range(last + 1, tick):
                session.tick(t)
            last = tick - 1
            session.keep_warm()
            before, sent = calls[0], len(sink.outs)
            at = steps_at_first_harmony(session, calls, [(tick, mido.Message("note_on", note=pitch, velocity=80))])
            assert len(sink.outs) > sent and at is not None
            if abs(pitch - 69 if tick == 24 else pitch - 71 if tick == 36 else pitch - 60) <= 12:
                assert at == before, f"{pitch}: model steps before its harmony"
            else:
                assert at > before
            session.player(tick + 2, mido.Message("note_off", note=pitch, velocity=0))


def test_a_note_right_after_the_last_ones_note_off_and_a_continuation_below_cost_no_model_step(model):
    """Looked ahead while the player held 67: the next note may come after 67's note-off (in the
    same JACK cycle, a keyboard's detached playing) as well as legato, and the harmony may first
    continue one of its notes below, which sends nothing; neither waits for a model step."""
    for seed in range(6):
        session, sink = harmonize(model, seed=seed)
        agent = session.agents[0]
        play_notes(session, melody([60, 64, 67]), until=30)  # 67 still held at tick 30
        for t in range(31, 36):
            session.tick(t)
        assert agent.poly.sounding  # harmony notes sound below
        session.keep_warm()
        with counted_steps(model) as calls:
            played = [(36, mido.Message("note_off", note=67, velocity=0)), (36, mido.Message("note_on", note=65, velocity=80))]
            at = steps_at_first_harmony(session, calls, played)
        assert at == 0, f"seed {seed}: {at} model steps before the harmony"


def test_a_harmonizer_nobody_plays_to_looks_ahead_once_and_does_not_rehearse(model):
    """Before the first note the stream is started (its START fed, as the first note would) and
    the likely first notes looked ahead, once; the rehearsal runs only while the player plays
    (an idle daemon next to a DAW costs nothing), and stops after a rest of REHEARSE_SECONDS."""
    from live.engine.polyphony import REHEARSE_SECONDS

    session, sink = harmonize(model, seed=3)
    agent = session.agents[0]
    with counted_steps(model) as calls:
        session.keep_warm()
        first = calls[0]
        assert agent.poly.started and agent.stream.primed and first > 20  # START and the lookahead
        for _ in range(5):
            session.keep_warm()
        assert calls[0] == first  # no rehearsal, no second lookahead
        play_notes(session, melody([67]), until=8)
        session.keep_warm()
        played = calls[0]
        session.keep_warm()
        assert calls[0] > played  # the player plays: rehearsed
        agent.last_note_at -= REHEARSE_SECONDS + 1  # a long rest
        rested = calls[0]
        session.keep_warm()
        assert calls[0] == rested
    assert sink.ons()  # it harmonized the note all the same
