"""Streams: cached state, teacher forcing, sampling, forks, resets, batches."""

from __future__ import annotations

import numpy as np
import pytest

from live.engine.sampling import beam_search, sample_class
from live.engine.stream import Stream
from live.models.cells import State
from live.models.model import Model, ModelConfig, expected_shapes


def random_model(config_id="lookback_rnn", sizes=(32, 32), input_size=121, classes=40, attn=0, seed=0) -> Model:
    config = ModelConfig(config_id, list(sizes), input_size, classes, attn_length=attn)
    rng = np.random.default_rng(seed)
    return Model(config, {k: (rng.standard_normal(s) * 0.5).astype(np.float32) for k, s in expected_shapes(config).items()})


MELODY = [60, -2, 62, -2, 64, -1, 65, -2, 67, -2, -2, -2, 60, -2, 62, -2, 64, -1, 65, -2, 67, -2, -2, -2] * 2


def test_feeding_is_the_same_as_stepping_the_model_on_encoded_inputs():
    model = random_model()
    stream = Stream(model)
    encoder, state = model.make_encoder(), model.initial_state(1)
    for event in MELODY:
        stream.feed(event)
        encoder.append(event)
        probs, state = model.step(encoder.input_vector()[None], state)
    np.testing.assert_allclose(stream.distribution(), probs[0], atol=1e-6)
    assert stream.events == MELODY and len(stream) == len(MELODY)


def test_the_answer_is_primed_when_the_call_ends_and_seeded_sampling_repeats():
    model = random_model(config_id="attention_rnn", input_size=74, classes=40, attn=5)
    stream = Stream(model)
    assert not stream.primed
    for event in MELODY:
        stream.feed(event)
    assert stream.primed
    a, b = stream.fork(), stream.fork()
    ea = [a.sample(np.random.default_rng(7), 1.0)[0] for _ in range(1)] + [a.sample(np.random.default_rng(i))[0] for i in range(31)]
    eb = [b.sample(np.random.default_rng(7), 1.0)[0] for _ in range(1)] + [b.sample(np.random.default_rng(i))[0] for i in range(31)]
    assert ea == eb
    assert stream.events == MELODY, "forks must not touch the original"


def test_fork_is_independent_and_reset_forgets():
    model = random_model()
    stream = Stream(model)
    for event in MELODY[:8]:
        stream.feed(event)
    before = stream.distribution().copy()
    twin = stream.fork()
    for event in MELODY[8:]:
        twin.feed(event)
    np.testing.assert_array_equal(stream.distribution(), before)
    assert not np.allclose(twin.distribution(), before)
    stream.reset()
    assert len(stream) == 0 and not stream.primed
    for event in MELODY[:8]:
        stream.feed(event)
    np.testing.assert_allclose(stream.distribution(), before, atol=1e-7)


def test_temperature_zero_is_argmax_and_temperature_sharpens():
    logits = np.array([0.0, 1.0, 3.0, 2.0], np.float32)
    assert sample_class(logits, 0.0, np.random.default_rng(0))[0] == 2
    rng = np.random.default_rng(0)
    hot = [sample_class(logits, 2.0, rng)[0] for _ in range(4000)]
    cold = [sample_class(logits, 0.3, rng)[0] for _ in range(4000)]
    assert hot.count(2) < cold.count(2)
    # empirical frequencies follow softmax(logits / T)
    p = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum()
    assert np.allclose(np.bincount(hot, minlength=4) / 4000, p, atol=0.03)


def test_batched_step_equals_separate_steps():
    model = random_model(config_id="attention_rnn", input_size=74, classes=40, attn=4)
    rng = np.random.default_rng(3)
    states = [model.initial_state(1) for _ in range(3)]
    for _ in range(6):
        xs = rng.random((3, 74), dtype=np.float32)
        singles = [model.step(xs[i : i + 1], states[i]) for i in range(3)]
        batched, bstate = model.step(xs, State.stack(states))
        np.testing.assert_allclose(batched, np.concatenate([p for p, _ in singles]), atol=1e-5)
        states = [s for _, s in singles]
        np.testing.assert_allclose(bstate.window, State.stack(states).window, rtol=1e-4, atol=1e-5)


def test_sampling_needs_a_primed_stream():
    with pytest.raises(RuntimeError, match="not primed"):
        Stream(random_model()).sample(np.random.default_rng(0))


def test_beam_search_returns_the_best_of_its_branches():
    model = random_model()
    stream = Stream(model)
    for event in MELODY[:4]:
        stream.feed(event)
    rng = np.random.default_rng(1)

    def extend(cands):
        return [c.sample(rng, 1.0)[1] for c in cands]

    best = beam_search(stream, extend, lambda s: s.fork(), num_steps=10, beam_size=3, branch_factor=2, steps_per_iteration=4)
    assert len(best) == 14 and len(stream) == 4
    # With many branches the winner is at least as likely as a plain sample, on average
    plain = [stream.fork() for _ in range(20)]
    for s in plain:
        for _ in range(10):
            s.sample(rng)
    wide = [
        beam_search(stream, extend, lambda s: s.fork(), num_steps=10, beam_size=4, branch_factor=4, steps_per_iteration=2)
        for _ in range(5)
    ]
    gain = lambda s: s.log_likelihood - stream.log_likelihood  # noqa: E731
    assert np.mean([gain(s) for s in wide]) > np.mean([gain(s) for s in plain])


def test_sampling_together_equals_sampling_one_by_one():
    from live.engine.stream import sample_together

    model = random_model(config_id="attention_rnn", input_size=74, classes=40, attn=6)
    base = Stream(model)
    for event in MELODY[:10]:
        base.feed(event)
    together = [base.fork() for _ in range(5)]
    alone = [base.fork() for _ in range(5)]
    rng_a, rng_b = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(16):
        got = sample_together(together, rng_a, 0.9)
        want = [s.sample(rng_b, 0.9) for s in alone]
        assert [e for e, _ in got] == [e for e, _ in want]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.distribution(), b.distribution(), atol=1e-5)
        assert a.events == b.events


# -- the one-hot path, prepared steps, lookahead ------------------------------------------------

from live.models.encodings.polyphony import CONTINUED_NOTE, NEW_NOTE, POLY_START, POLY_STEP_END, PolyEvent  # noqa: E402
from tests.engine.models import random_model as family_model  # noqa: E402


def _counting(model: Model) -> list[int]:
    """Count the model steps a one-hot stream of ``model`` takes (Model.logits_of_class calls)."""
    calls = [0]
    step = model.logits_of_class

    def counted(index, state):
        calls[0] += 1
        return step(index, state)

    model.logits_of_class = counted  # type: ignore[method-assign]
    return calls


@pytest.mark.parametrize("attn", [0, 4])
def test_a_one_hot_input_looked_up_is_exactly_the_input_multiplied(attn):
    """The kernel's row for a class is what multiplying its one-hot gives, to the last bit, from a
    state that is not zero, prepared ahead or not (attention models multiply as before)."""
    model = family_model("basic_rnn", (16, 24), seed=2, attn_length=attn)
    assert model.make_encoder().one_hot_input
    state = model.initial_state(1)
    for label in (3, 0, model.num_classes - 1, 7):
        x = np.zeros((1, model.input_size), np.float32)
        x[0, label] = 1.0
        multiplied, after = model.logits(x, state)
        fresh = State(state.c, state.h, state.read, state.window, state.keys)  # the same numbers, not prepared
        model.prepare(fresh)
        looked_up, after_too = model.logits_of_class(label, fresh)
        assert np.array_equal(multiplied, looked_up)
        assert all(np.array_equal(a, b) for a, b in zip(after.h + after.c, after_too.h + after_too.c))
        assert (fresh.hw is not None) == (attn == 0)
        state = after


def test_encoders_say_whether_their_input_is_a_one_hot_of_the_class():
    """Only a plain one-hot encoder may be looked up: lookback features, modulo circles and
    controls make an input that is not the one-hot of the label."""
    from live.models.configs import get_config

    assert get_config("basic_rnn").make_encoder().one_hot_input
    assert get_config("polyphony").make_encoder().one_hot_input
    for config_id in ("lookback_rnn", "attention_rnn", "chord_pitches_improv", "multiconditioned_performance_with_dynamics"):
        assert not get_config(config_id).make_encoder().one_hot_input, config_id


def test_a_looked_ahead_step_gives_the_same_numbers_without_the_models_work():
    model = family_model("polyphony", (32, 16), seed=4)
    plain, ahead = Stream(model, scored=False), Stream(model, scored=False)
    for s in (plain, ahead):
        s.feed(POLY_START)
        s.feed(PolyEvent(NEW_NOTE, 60))
        s.feed(POLY_STEP_END)
    paths = [(PolyEvent(NEW_NOTE, 64),), (PolyEvent(NEW_NOTE, 64), PolyEvent(CONTINUED_NOTE, 60)), (PolyEvent(NEW_NOTE, 65),)]
    calls = _counting(model)
    assert ahead.lookahead(paths)
    assert calls[0] == 3  # NEW 64 once for both paths that start with it
    assert ahead.lookahead(paths) and calls[0] == 3  # nothing twice from one state
    labels = [0]
    to_label = ahead.encoder.event_to_label

    def counted_label(event):
        labels[0] += 1
        return to_label(event)

    ahead.encoder.event_to_label = counted_label
    assert ahead.lookahead(paths) and labels[0] == 0  # finished from here: not walked again
    assert ahead.lookahead(list(paths)) and labels[0] == 4  # other paths: walked (found done)
    del ahead.encoder.event_to_label
    base = ahead.state
    for event in (PolyEvent(NEW_NOTE, 64), PolyEvent(CONTINUED_NOTE, 60)):
        ahead.feed(event)
    assert calls[0] == 3, "the looked-ahead path cost model steps"
    for event in (PolyEvent(NEW_NOTE, 64), PolyEvent(CONTINUED_NOTE, 60)):
        plain.feed(event)
    assert calls[0] == 5
    assert np.array_equal(plain.logits, ahead.logits)
    assert all(np.array_equal(a, b) for a, b in zip(plain.state.h + plain.state.c, ahead.state.h + ahead.state.c))
    # back at the state it looked ahead from (a chord re-fed), the steps are still there
    ahead.state, ahead.logits = base, None
    del ahead.encoder.events[-2:]
    ahead.feed(PolyEvent(NEW_NOTE, 65))
    assert calls[0] == 5
    ahead.feed(PolyEvent(NEW_NOTE, 62))  # not looked ahead: the model's work, as ever
    assert calls[0] == 6


def test_lookahead_gives_way_between_model_steps_and_only_where_the_input_is_a_one_hot():
    model = family_model("polyphony", (16,), seed=1)
    stream = Stream(model, scored=False)
    assert stream.lookahead([(PolyEvent(NEW_NOTE, 60),)])  # not primed: nothing to do
    stream.feed(POLY_START)
    calls = _counting(model)
    asked = []
    assert not stream.lookahead([(PolyEvent(NEW_NOTE, p),) for p in range(60, 70)], lambda: asked.append(1) or len(asked) > 3)
    assert calls[0] == 3 and len(asked) == 4  # asked before each step, stopped at once
    lookback = Stream(random_model())
    lookback.feed(60)
    assert lookback.lookahead([(62,)]) and not lookback._ahead


def test_an_unscored_stream_steps_the_same_and_skips_the_likelihood():
    model = family_model("polyphony", (16,), seed=1)
    scored, unscored = Stream(model), Stream(model, scored=False)
    for event in (POLY_START, PolyEvent(NEW_NOTE, 60), POLY_STEP_END, PolyEvent(CONTINUED_NOTE, 60)):
        scored.feed(event)
        unscored.feed(event)
    assert scored.log_likelihood < 0.0 and unscored.log_likelihood == 0.0
    assert np.array_equal(scored.logits, unscored.logits)
