"""Agents in the player's key: transposition in and out, re-priming on a new key, the scale lock,
improv's chords moved with the melody, and nucleus sampling."""

from __future__ import annotations

import math

import mido
import numpy as np
import pytest

from live.engine.agent import AgentSpec, Params
from live.engine.key import KEYS, MAJOR_SCALE, MINOR_SCALE, Key
from live.engine.sampling import sample_class
from live.engine.session import Session
from live.protocol import Command
from live.engine.voices import MelodyVoice, StepInput
from live.models.encodings.chords import QUALITY_MAJOR, QUALITY_MINOR, parse_chord
from live.models.encodings.melody import MELODY_NO_EVENT, MELODY_NOTE_OFF
from tests.engine.listsink import ListSink, drive, pairing_errors
from tests.engine.models import random_model

STEP = 6
BAR = 96


@pytest.fixture(scope="module")
def lookback():
    return random_model("lookback_rnn", (32,), seed=2)


def phrase(key: Key, octave: int = 60, eighths: int = 12) -> list[tuple[int, int, int]]:
    """(start tick, end tick, pitch): up and down the key's scale in eighth notes, ending long on
    the tonic."""
    steps = MINOR_SCALE if key.minor else MAJOR_SCALE
    degrees = [0, 2, 4, 2, 1, 3, 5, 4, 3, 1, 6, 0][:eighths]
    notes = [(12 * i, 12 * i + 11, octave + key.tonic + steps[d]) for i, d in enumerate(degrees)]
    last = notes[-1]
    return notes[:-1] + [(last[0], last[0] + 36, last[2])]


def messages(notes: list[tuple[int, int, int]]) -> list[tuple[int, mido.Message]]:
    """The player's messages for (start tick, end tick, pitch) notes."""
    return [(t, mido.Message("note_on", note=p, velocity=90)) for t, _, p in notes] + [
        (e, mido.Message("note_off", note=p)) for _, e, p in notes
    ]


def session(model, seed: int = 0, **spec) -> tuple[Session, ListSink]:
    sink = ListSink()
    spec.setdefault("name", "a")
    return Session([AgentSpec(**spec)], sink, seed=seed, models={0: model}), sink


def answer_pitches(sink: ListSink, after: int) -> list[int]:
    return [s.msg.note for s in sink.note_ons("a") if s.tick >= after]


# -- the voice: in and out ---------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-30, -13, -6, -1, 0, 5, 11, 24])
def test_the_voice_moves_the_player_in_and_the_model_out_by_the_same_offset(lookback, offset):
    voice = MelodyVoice(lookback, 0)
    voice.retune(offset)
    played = []
    for pitch in range(48 - offset, 84 - offset):  # every pitch that lands in the model's range
        if not 0 <= pitch <= 127:
            continue
        (event,) = voice.player_events(StepInput([(pitch, 90)]), {pitch})
        assert event == pitch + offset and 48 <= event < 84
        voice.render([event], 0, 90, lambda tick, msg: played.append(msg))
        assert played[-1].type == "note_on" and played[-1].note == pitch  # the round trip
    # a pitch outside the range is folded by octaves, and the note-off of what sounds comes first
    (event,) = voice.player_events(StepInput([(127 - max(offset, 0), 90)]), set())
    assert 48 <= event < 84 and (event - offset - (127 - max(offset, 0))) % 12 == 0
    assert voice.player_events(StepInput([]), set()) == [MELODY_NOTE_OFF]
    assert voice.player_events(StepInput([]), set()) == [MELODY_NO_EVENT]


@pytest.mark.parametrize("key", [Key(0), Key(6), Key(10, True), Key(4), Key(3, True)], ids=lambda k: k.name)
def test_the_model_hears_the_call_in_its_key_and_answers_in_the_players(lookback, key):
    s, sink = session(lookback, response_quantize="bar")
    agent = s.agents[0]
    drive(s, 4 * BAR, messages(phrase(key)))
    assert agent.key.scale == key.scale and agent.call.answers == 1  # the key, or its relative (same scale)
    offset = agent.voice.offset
    assert offset % 12 == key.shift_to(0) % 12
    # everything the stream heard of the call is in C (the model's key) and in its range
    heard = [e for e in agent.stream.events[: 2 * BAR // STEP] if e >= 0]
    assert heard and all(e % 12 in Key(0).scale and 48 <= e < 84 for e in heard)
    # the answer is the model's events moved back: with the same draws, only moved
    events = [e for e in agent.stream.events[len(agent.stream.events) - len(agent.answer):] if e >= 0]
    assert answer_pitches(sink, 2 * BAR) == [e - offset for e in events]
    assert pairing_errors(sink.of("a")) == []


def test_a_new_key_re_primes_the_call_and_the_answer_still_opens_on_its_grid_point(lookback):
    # the first notes say C major; the rest of the call is in E major: the estimate moves
    call = phrase(Key(0), eighths=5) + [(t + 60, e + 60, p) for t, e, p in phrase(Key(4))]
    for seed in range(5):
        s, sink = session(lookback, seed=seed, params=Params(density=0.2))
        agent = s.agents[0]
        drive(s, 6 * BAR, messages(call))
        assert agent.key == Key(4)
        assert agent.retunes >= 1
        assert agent.call.answers == 1
        # the stream holds the whole call moved by the final offset, from its first step
        fed = [e for e in agent.stream.events[: len(agent.stream.events) - len(agent.answer)] if e >= 0]
        assert fed == [min(max(p + agent.voice.offset, 48), 83) for _, _, p in call if 48 <= p + agent.voice.offset < 84]
        first = min(s_.tick for s_ in sink.note_ons("a") if s_.tick > call[-1][0])
        assert first == agent.call.answer_start * STEP


def test_a_fixed_key_is_used_from_the_first_note(lookback):
    s, _ = session(lookback, key=Key(6))
    drive(s, 40, messages([(0, 11, 66), (12, 23, 68)]))
    agent = s.agents[0]
    assert agent.key == Key(6) and agent.voice.offset == -6 and agent.retunes == 1  # at the first step
    assert [e for e in agent.stream.events if e >= 0] == [60, 62]


def test_models_that_are_not_transposed_hear_the_player_as_played():
    model = random_model("mono_rnn", (16,), seed=1)
    s, _ = session(model)
    drive(s, 2 * BAR, messages(phrase(Key(6))))
    agent = s.agents[0]
    assert agent.key == Key(6) and agent.voice.offset == 0 and agent.retunes == 0
    assert [e for e in agent.stream.events if e >= 0][:3] == [66, 70, 73]


# -- the scale lock --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS[::5], ids=lambda k: k.name)
def test_at_scale_lock_1_no_answer_note_is_out_of_the_key(lookback, key):
    outside = {0.0: 0, 1.0: 0}
    for lock in outside:
        for seed in range(3):
            s, sink = session(lookback, seed=seed, params=Params(scale_lock=lock, temperature=2.0, density=0.9))
            drive(s, 5 * BAR, messages(phrase(key)))
            pitches = answer_pitches(sink, 2 * BAR)
            assert pitches
            outside[lock] += sum(p % 12 not in key.scale for p in pitches)
    assert outside[1.0] == 0
    assert outside[0.0] > 0  # the random model, left free, does play out of the key


def test_a_half_locked_scale_makes_out_of_key_pitches_rarer_not_impossible(lookback):
    s, _ = session(lookback, key=Key(0), params=Params(scale_lock=0.5))
    drive(s, 30, messages([(0, 11, 60), (12, 23, 62)]))
    agent = s.agents[0]
    bias = agent.sampling_bias(agent.processed + 1)
    n = 38  # one-hot classes of the melody range 48..84
    pitch_bias = {48 + i - 2: bias[i] for i in range(2, n)}
    assert all(pitch_bias[p] == 0.0 for p in pitch_bias if p % 12 in Key(0).scale)
    assert all(pitch_bias[p] == pytest.approx(math.log(0.5)) for p in pitch_bias if p % 12 not in Key(0).scale)


def test_the_lock_also_rules_out_a_lookback_repeat_of_an_out_of_key_note(lookback):
    s, _ = session(lookback, key=Key(0), params=Params(scale_lock=1.0))
    agent = s.agents[0]
    drive(s, 6, messages([(0, 5, 61)]))  # C#: out of C, fed at step 0
    for _ in range(15):
        agent.stream.feed(MELODY_NO_EVENT)  # 16 steps later, "repeat 16 steps back" means C#
    assert agent.stream.encoder.label_to_event(38) == 61
    bias = agent.voice.scale_bias(agent.stream, frozenset(Key(0).scale), 1.0)
    assert bias[38] < -1e8 and bias[39] == 0.0  # 32 back: before the start, no event


def test_harmonize_at_scale_lock_1_adds_only_notes_of_the_key():
    model = random_model("polyphony", (32,), seed=4)
    key = Key(2)  # D major
    melody = phrase(key) + [(t + 2 * BAR, e + 2 * BAR, p) for t, e, p in phrase(key)]
    for fixed, lock, first in ((key, 1.0, 0), (None, 1.0, 2 * BAR), (None, 0.0, 0)):
        s, sink = session(model, mode="harmonize", seed=1, key=fixed, params=Params(scale_lock=lock, temperature=2.0, density=0.9))
        drive(s, 4 * BAR, messages(melody))
        added = [m.msg.note for m in sink.note_ons("a") if m.tick >= first]  # auto: the first phrase has named the key
        assert added
        outside = [p for p in added if p % 12 not in key.scale]
        assert (outside == []) == (lock == 1.0), (fixed, lock, outside)


# -- improv: chords and melody move together ------------------------------------------------------


def test_improv_backing_chords_reach_the_model_in_its_key_and_the_melody_comes_back():
    model = random_model("basic_improv", (32,), seed=5)
    chords = ["F#", "D#m", "B", "C#"]  # I-vi-IV-V in F#
    s, sink = session(model, mode="improv", backing_chords=chords, steps_per_chord=16, params=Params(scale_lock=1.0))
    agent = s.agents[0]
    assert agent.key == Key(6) and agent.voice.offset == -6
    moved = [parse_chord(agent.control(16 * i)) for i in range(4)]  # spelled as note-seq does ("B#")
    assert [(c.root, c.quality) for c in moved] == [(0, QUALITY_MAJOR), (9, QUALITY_MINOR), (5, QUALITY_MAJOR), (7, QUALITY_MAJOR)]
    drive(s, 4 * BAR)
    s.stop(4 * BAR)
    ons = sink.note_ons("a")
    assert ons and all(m.msg.note % 12 in Key(6).scale for m in ons)  # D#m, B, C#: all in F# major
    assert pairing_errors(sink.of("a")) == []


def test_improv_with_a_fixed_key_moves_the_chords_by_that_key():
    model = random_model("basic_improv", (32,), seed=5)
    s, _ = session(model, mode="improv", backing_chords=["C", "G"], key=Key(2))
    assert s.agents[0].control(0) == "Bb"  # D -> C is down 2


# -- knobs -----------------------------------------------------------------------------------------


def test_scale_lock_and_top_p_commands_clamp_and_a_nan_keeps_the_old_value(lookback):
    s, _ = session(lookback)
    p = s.agents[0].params
    s.command(Command("scale_lock", value=0.7))
    s.command(Command("top_p", value=0.9))
    assert (p.scale_lock, p.top_p) == (0.7, 0.9)
    s.command(Command("scale_lock", delta=0.5))
    s.command(Command("top_p", value=0.0))
    assert (p.scale_lock, p.top_p) == (1.0, 0.05)
    s.command(Command("scale_lock", value=float("nan")))
    s.command(Command("top_p", value=float("inf")))
    assert (p.scale_lock, p.top_p) == (1.0, 0.05)
    view = s.agent_views()[0]
    assert view.scale_lock == 1.0 and view.top_p == 0.05 and view.key == "" and not view.key_fixed


# -- nucleus sampling -----------------------------------------------------------------------------


def test_top_p_draws_only_from_the_nucleus():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))
    rng = np.random.default_rng(0)
    for top_p, allowed in ((1.0, {0, 1, 2, 3}), (0.95, {0, 1, 2}), (0.951, {0, 1, 2, 3}), (0.8, {0, 1}), (0.79, {0, 1}), (0.5, {0}), (0.05, {0})):
        drawn = {sample_class(logits, 1.0, rng, top_p)[0] for _ in range(2000)}
        assert drawn == allowed, top_p
    index, logp = sample_class(logits, 1.0, np.random.default_rng(1), 0.8)
    assert logp == pytest.approx(math.log([0.5, 0.3][index] / 0.8), abs=1e-6)  # renormalised


def test_top_p_1_draws_exactly_as_before():
    logits = np.random.default_rng(3).standard_normal(40).astype(np.float32)
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    assert [sample_class(logits, 0.8, a) for _ in range(200)] == [sample_class(logits, 0.8, b, 1.0) for _ in range(200)]


def test_a_performance_duet_at_scale_lock_1_plays_only_the_players_key():
    model = random_model("performance", (32,), seed=6)
    key = Key(9, True)  # A minor
    for lock in (1.0, 0.0):
        s, sink = session(model, mode="duet", seed=2, params=Params(scale_lock=lock, temperature=1.5))
        drive(s, 8 * BAR, messages(phrase(key) + [(t + 2 * BAR, e + 2 * BAR, p) for t, e, p in phrase(key)]))
        agent = s.agents[0]
        assert agent.key.scale == key.scale and s.agent_views()[0].key == agent.key.name
        after = [m.msg.note for m in sink.note_ons("a") if m.tick >= 2 * BAR]  # the key is known by then
        assert after
        outside = [p for p in after if p % 12 not in key.scale]
        assert (outside == []) == (lock == 1.0), (lock, outside)
