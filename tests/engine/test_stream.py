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
