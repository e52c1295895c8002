"""--mode vary and --mode morph: a MusicVAE answers the player's phrase, on the step grid, driven
tick by tick with a list sink (a small MusicVAE with random weights)."""

from __future__ import annotations

import mido
import pytest

from live.engine.agent import AgentSpec, AgentState, Params
from live.engine.key import Key
from live.engine.session import Session
from live.engine.vae_agent import STEP_TICKS, Morph, Vary
from live.protocol import Command
from tests.engine.listsink import ListSink, drive, pairing_errors
from tests.models.test_vae import SMALL, random_vae

BAR = 96  # ticks
EIGHTH = 12


@pytest.fixture(scope="module")
def vae():
    return random_vae(SMALL, seed=11)


def phrase(start: int, pitches: list[int]) -> list[tuple[int, mido.Message]]:
    """Eighth notes of ``pitches`` from tick ``start``."""
    out = []
    for i, p in enumerate(pitches):
        t = start + i * EIGHTH
        out += [(t, mido.Message("note_on", note=p, velocity=90)), (t + EIGHTH - 2, mido.Message("note_off", note=p))]
    return out


CALL = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64, 62, 60]  # two bars of eighths


def session_of(vae, mode: str = "vary", seed: int = 1, **params) -> tuple[Session, ListSink]:
    sink = ListSink()
    spec = AgentSpec(name="v", mode=mode, params=Params(**params), response_quantize="bar")
    return Session([spec], sink, seed=seed, models={0: vae}), sink


def test_vary_answers_after_the_call_on_its_grid_point_and_every_note_ends(vae):
    session, sink = session_of(vae)
    agent = session.agents[0]
    assert isinstance(agent, Vary)
    drive(session, 6 * BAR, phrase(0, CALL))
    ons = sink.note_ons("v")
    assert ons and all(s.tick >= 2 * BAR for s in ons)  # nothing while the player plays
    assert ons[0].tick == 3 * BAR  # the call ends in bar 3 (a beat of silence): the answer opens on the next bar
    assert all(s.tick % STEP_TICKS == 0 for s in sink.of("v"))  # on the sixteenth grid
    assert not pairing_errors(sink.of("v"))
    assert ons[-1].tick < 5 * BAR and agent.state == AgentState.IDLE  # as long as the call, then rest


def test_a_seed_gives_the_same_answer_and_strays_decides_how_far_the_code_moves(vae):
    import numpy as np

    def answer(seed: int, strays: float) -> list[tuple[int, int]]:
        session, sink = session_of(vae, seed=seed, strays=strays)
        drive(session, 6 * BAR, phrase(0, CALL))
        return [(s.tick, s.msg.note) for s in sink.note_ons("v")]

    assert answer(1, 0.5) == answer(1, 0.5)
    assert answer(1, 1.0) != answer(2, 1.0)
    agent = session_of(vae)[0].agents[0]
    mu = np.random.default_rng(0).standard_normal((2, SMALL.z_size)).astype(np.float32)
    agent.params.strays = 0.0
    np.testing.assert_array_equal(agent.codes(mu), mu)  # the call itself
    agent.params.strays = 1.0
    free = []
    for m in (mu, 10 * mu):
        agent.rng = np.random.default_rng(5)
        free.append(agent.codes(m))
    np.testing.assert_array_equal(free[0], free[1])  # a free sample: the call plays no part
    agent.params.strays = 0.25
    agent.rng = np.random.default_rng(5)
    near = agent.codes(mu)
    assert np.linalg.norm(near - mu) < np.linalg.norm(free[0] - mu)


def test_the_scale_lock_at_one_keeps_every_answer_note_in_the_key(vae):
    sink = ListSink()
    spec = AgentSpec(name="v", mode="vary", key=Key(2), params=Params(scale_lock=1.0, strays=1.0), response_quantize="bar")
    session = Session([spec], sink, seed=3, models={0: vae})
    drive(session, 6 * BAR, phrase(0, CALL))
    ons = sink.note_ons("v")
    assert len(ons) >= 4 and all(s.msg.note % 12 in Key(2).scale for s in ons)


def test_a_note_during_the_answer_cuts_it_and_starts_a_new_call(vae):
    session, sink = session_of(vae)
    cut = 3 * BAR + 2 * EIGHTH
    drive(session, 8 * BAR, phrase(0, CALL) + phrase(cut, [67, 69, 71, 72]))
    assert ("v", cut) in sink.cancels
    assert not pairing_errors(sink.of("v"))
    assert any(s.tick >= cut + 4 * EIGHTH for s in sink.note_ons("v"))  # the new call is answered too


def test_loop_plays_the_same_answer_again(vae):
    session, sink = session_of(vae, loop=True)
    drive(session, 9 * BAR, phrase(0, CALL))
    ons = [(s.tick, s.msg.note) for s in sink.note_ons("v")]
    first = [(t - 3 * BAR, n) for t, n in ons if 3 * BAR <= t < 5 * BAR]
    again = [(t - 5 * BAR, n) for t, n in ons if 5 * BAR <= t < 7 * BAR]
    assert first and first == again


def test_morph_walks_from_the_last_call_to_the_latest_in_morph_steps_phrases(vae):
    session, sink = session_of(vae, mode="morph", morph_steps=3)
    agent = session.agents[0]
    assert isinstance(agent, Morph)
    second = 6 * BAR
    drive(session, 16 * BAR, phrase(0, CALL) + phrase(second, list(reversed(CALL))))
    assert agent.morph_at == 3
    view = session.agent_views()[0]
    assert view.morph == "3/3" and view.strays == 0.5
    later = [s for s in sink.note_ons("v") if s.tick >= second + 3 * BAR]
    assert later and later[-1].tick >= second + 3 * BAR + 4 * BAR  # three two-bar phrases, longer than the call
    assert not pairing_errors(sink.of("v"))


def test_the_knobs_set_strays_and_morph_steps_within_their_ranges(vae):
    session, _ = session_of(vae, mode="morph")
    p = session.agents[0].params
    session.command(Command("strays", value=2.0))
    session.command(Command("morph_steps", value=40))
    assert p.strays == 1.0 and p.morph_steps == 16
    session.command(Command("morph_steps", delta=-100))
    session.command(Command("strays", value=float("nan")))
    assert p.morph_steps == 1 and p.strays == 1.0


def test_an_rnn_model_cannot_vary(vae):
    from tests.engine.models import random_model

    with pytest.raises(ValueError, match="vary needs a vae model"):
        Session([AgentSpec(name="v", mode="vary")], ListSink(), models={0: random_model("basic_rnn")})


def test_vary_and_morph_load_the_bundled_musicvae_and_the_mode_key_reaches_them():
    session = Session([AgentSpec(name="v", mode="vary")], ListSink())
    assert isinstance(session.agents[0], Vary) and session.agents[0].model.config_id == "cat-mel_2bar_small"
    rnn = Session([AgentSpec(name="m", mode="call-response")], ListSink())
    for _ in range(rnn_modes_before_vary()):
        rnn.command(Command("mode"))
    assert rnn.agents[0].spec.mode == "vary" and isinstance(rnn.agents[0], Vary)  # the mode's default model came with it


def rnn_modes_before_vary() -> int:
    from live.protocol import MODES

    return MODES.index("vary") - MODES.index("call-response")
