"""--mode improv: a melody improvised over backing chords or over the chords the player holds."""

from __future__ import annotations

import mido
import pytest

from live.engine.agent import AgentSpec, Params
from live.engine.improv import Improv
from live.engine.session import Session
from live.engine.voices import MelodyVoice, quiet_labels
from live.errors import ChordSymbolError, EncodingError
from live.models.encodings.chords import parse_chord
from live.models.model import OUTPUT_BIAS, Model
from live.offline import run_offline
from tests.engine.listsink import ListSink, chord, drive, pairing_errors
from tests.engine.models import random_model

STEP = 6
BAR = 96
CHORDS = ["C", "G", "Am", "F"]


def improv_model(config_id: str = "basic_improv"):
    return random_model(config_id, attn_length=8 if config_id == "attention_improv" else 0)


def session(spec: AgentSpec, model=None, seed: int = 0) -> tuple[Session, ListSink]:
    sink = ListSink()
    return Session([spec], sink, seed=seed, models={0: model or improv_model()}), sink


@pytest.mark.parametrize("config_id", ["basic_improv", "attention_improv", "chord_pitches_improv"])
def test_backing_chords_play_on_the_grid_from_the_first_step(config_id):
    spec = AgentSpec(name="imp", mode="improv", backing_chords=CHORDS, steps_per_chord=8)
    s, sink = session(spec, improv_model(config_id))
    agent = s.agents[0]
    assert isinstance(agent, Improv)
    drive(s, 4 * BAR)
    s.stop(4 * BAR)
    sent = sink.of("imp")
    ons = sink.note_ons("imp")
    assert ons, "the model played nothing"
    assert {m.tick % STEP for m in sent} == {0}  # note-ons and note-offs on step ticks
    assert min(m.tick for m in sent) == STEP  # the first step after the clock started
    assert pairing_errors(sent) == []
    assert all(m.msg.channel == 0 for m in sent)
    # it keeps playing: notes in every bar
    assert {m.tick // BAR for m in ons} == {0, 1, 2, 3}


def test_the_chord_control_changes_every_steps_per_chord_steps():
    spec = AgentSpec(mode="improv", backing_chords=CHORDS, steps_per_chord=8)
    s, _ = session(spec)
    agent = s.agents[0]
    seen = []
    for tick in range(3 * BAR):
        s.tick(tick)
        if tick % STEP == 3:
            seen.append(agent.chords_now)
    # every step from 1 on was predicted with its own chord
    for step in range(1, 3 * BAR // STEP):
        assert agent.controls[step] == CHORDS[(step // 8) % 4], step
    # the panel's chord: the chord of the step just taken
    assert seen == [CHORDS[(step // 8) % 4] for step in range(3 * BAR // STEP)]


def test_the_chords_reach_the_model():
    """The control is really fed: other chords, other melody (same seed)."""
    outs = []
    for chords in (["C", "G", "Am", "F"], ["F#m", "Bb", "Eb", "Ddim"]):
        s, sink = session(AgentSpec(mode="improv", backing_chords=chords, steps_per_chord=4))
        drive(s, 2 * BAR)
        outs.append([(m.tick, m.msg.note) for m in sink.note_ons("agent")])
    assert outs[0] != outs[1]


def test_chords_the_model_cannot_take_are_refused_up_front():
    model = improv_model()
    with pytest.raises(ChordSymbolError, match="H7"):
        Session([AgentSpec(mode="improv", backing_chords=["C", "H7"])], ListSink(), models={0: model})
    with pytest.raises(EncodingError, match="Csus4"):  # a triad encoding has no sus chords
        Session([AgentSpec(mode="improv", backing_chords=["C", "Csus4"])], ListSink(), models={0: model})
    # the chord-pitches encoding takes any chord
    Session([AgentSpec(mode="improv", backing_chords=["Csus4", "G7(b9)"])], ListSink(), models={0: improv_model("chord_pitches_improv")})


def test_live_chords_follow_the_held_notes():
    spec = AgentSpec(name="imp", mode="improv", chord_below=60)
    s, sink = session(spec)
    agent = s.agents[0]
    player = (
        chord(2 * BAR, 3 * BAR, [48, 52, 55])  # C
        + chord(3 * BAR, 4 * BAR - 30, [45, 48, 52])  # Am, released early: the chord stays
        + chord(5 * BAR, 6 * BAR, [41, 45, 48, 52])  # Fmaj7
        + chord(5 * BAR, 6 * BAR, [72, 76, 79, 83])  # above chord_below: not part of the chord (B major would win)
        + chord(6 * BAR - 1, 7 * BAR, [43, 47, 50, 53])  # G7, a tick early: it belongs to the bar
    )
    assert agent.state == "listening"
    drive(s, 7 * BAR, player)
    s.stop(7 * BAR)
    ons = sink.note_ons("imp")
    # nothing before the first chord; then from the step after it
    assert min(m.tick for m in ons) >= 2 * BAR + STEP
    assert all(m.tick % STEP == 0 for m in sink.of("imp"))
    assert pairing_errors(sink.of("imp")) == []
    # the chord of each step: the one held when it was planned, a step before
    first = 2 * BAR // STEP
    expected = {"C": range(first + 1, first + 17), "Am": range(first + 17, first + 49), "Fmaj7": range(first + 49, first + 65)}
    for symbol, steps in expected.items():
        for step in steps:
            assert agent.controls[step] == symbol, (step, agent.controls[step])
    assert agent.controls[first + 66] == "G7"
    assert agent.chord == "G7"
    for symbol in set(agent.controls.values()):
        parse_chord(symbol)


def test_live_chords_on_a_chord_channel_only():
    spec = AgentSpec(name="imp", mode="improv", chord_channel=2)
    s, sink = session(spec)
    agent = s.agents[0]
    drive(s, 2 * BAR, chord(0, BAR, [60, 64, 67], channel=0) + chord(BAR, 2 * BAR, [57, 60, 64], channel=1))
    assert agent.chord == "Am"
    assert min(m.tick for m in sink.note_ons("imp")) >= BAR + STEP  # channel 1's C major was no chord


def test_a_triad_model_gets_sus_chords_as_plain_ones():
    s, _ = session(AgentSpec(mode="improv"))
    drive(s, BAR, chord(0, BAR, [60, 65, 67]))
    assert s.agents[0].chord == "C"
    s, _ = session(AgentSpec(mode="improv"), improv_model("chord_pitches_improv"))
    drive(s, BAR, chord(0, BAR, [60, 65, 67]))
    assert s.agents[0].chord == "Csus4"


def test_stop_silences_and_it_plays_again_on_the_next_step():
    s, sink = session(AgentSpec(name="imp", mode="improv", backing_chords=CHORDS))
    drive(s, BAR)
    s.stop(BAR)
    assert s.agents[0].state == "idle"
    assert pairing_errors(sink.of("imp")) == []
    assert not [m for m in sink.of("imp") if m.tick > BAR]
    drive(s, 2 * BAR, start=BAR)
    s.stop(2 * BAR)
    assert pairing_errors(sink.of("imp")) == []
    assert [m for m in sink.note_ons("imp") if m.tick > BAR]


def _input_file(path, bars: int = 4) -> None:
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100)))
    track.append(mido.Message("note_on", channel=0, note=48, velocity=70, time=0))
    track.append(mido.Message("note_on", channel=0, note=52, velocity=70, time=0))
    track.append(mido.Message("note_on", channel=0, note=55, velocity=70, time=0))
    track.append(mido.Message("note_off", channel=0, note=48, time=480 * 4 * bars))
    track.append(mido.Message("note_off", channel=0, note=52, time=0))
    track.append(mido.Message("note_off", channel=0, note=55, time=0))
    mid.tracks.append(track)
    mid.save(path)


def test_offline_is_byte_deterministic_and_on_the_grid(tmp_path):
    _input_file(tmp_path / "in.mid")
    spec = lambda: AgentSpec(name="improv", mode="improv", model=_saved(tmp_path), chord_below=60)
    paths = []
    for n, seed in enumerate((7, 7, 8)):
        out = tmp_path / f"out{n}.mid"
        run_offline(tmp_path / "in.mid", out, [spec()], seed=seed, tail_bars=2)
        paths.append(out)
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b
    assert a != c
    mid = mido.MidiFile(paths[0])
    track = next(t for t in mid.tracks if any(m.type == "track_name" and m.name == "improv" for m in t))
    pulse, ons, offs = 0, [], []
    for msg in track:
        pulse += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            ons.append(pulse)
        elif msg.type in ("note_on", "note_off"):
            offs.append(pulse)
    assert ons and len(ons) == len(offs)
    assert all(p % 120 == 0 for p in ons)  # 480 per quarter: a step is 120
    assert all(p % 120 == 0 for p in offs if p < max(offs))  # the last one: where the run stopped


def _saved(tmp_path) -> str:
    from live.models.modelfile import save

    path = tmp_path / "improv.npz"
    if not path.exists():
        save(improv_model(), path)
    return str(path)


def quiet_leaning(model: Model, is_quiet, amount: float) -> Model:
    """``model`` with ``amount`` added to the output bias of its quiet classes: random weights
    rarely rest, trained melody and drum models mostly do."""
    weights = dict(model.weights)
    weights[OUTPUT_BIAS] = weights[OUTPUT_BIAS].copy()
    weights[OUTPUT_BIAS][quiet_labels(model, is_quiet)] += amount
    return Model(model.config, weights, where=f"quiet-leaning {model.config_id}")


def notes_per_bar(model: Model, density: float, seeds: int = 4, bars: int = 8) -> float:
    total = 0
    for seed in range(seeds):
        spec = AgentSpec(name="imp", mode="improv", backing_chords=CHORDS, params=Params(density=density))
        s, sink = session(spec, model, seed=seed)
        drive(s, bars * BAR)
        total += len(sink.note_ons("imp"))
    return total / (seeds * bars)


@pytest.mark.parametrize("config_id", ["basic_improv", "chord_pitches_improv"])
@pytest.mark.parametrize("lean", [0.0, 3.0])
def test_density_raises_and_lowers_the_notes_per_bar(config_id, lean):
    """Notes per bar over 4 seeds x 8 bars at density 0.1, 0.5 (the model alone) and 0.9."""
    model = quiet_leaning(improv_model(config_id), MelodyVoice.is_quiet, lean)
    sparse, plain, busy = (notes_per_bar(model, d) for d in (0.1, 0.5, 0.9))
    assert sparse < plain < busy, (sparse, plain, busy)
    assert busy > 1.5 * sparse
