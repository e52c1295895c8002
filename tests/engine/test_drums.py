"""--mode drums: a kit part on channel 10, locked to the clock, primed by taps or a pattern file."""

from __future__ import annotations

import mido
import pytest

from live.engine.agent import AgentSpec, Params
from live.engine.drums import DrumsAgent, read_pattern
from live.engine.voices.drums import DrumVoice
from live.engine.session import Session
from live.offline import run_offline
from tests.engine.listsink import ListSink, drive, pairing_errors
from tests.engine.models import random_model
from tests.engine.test_improv import quiet_leaning

BAR = 96
KICK, SNARE, HAT = 36, 38, 42


def drums_spec(**kw) -> AgentSpec:
    kw.setdefault("name", "drums")
    return AgentSpec(mode="drums", output_channel=10, **kw)


def session(spec: AgentSpec, model=None, seed: int = 0) -> tuple[Session, ListSink]:
    sink = ListSink()
    return Session([spec], sink, seed=seed, models={0: model or random_model("drum_kit")}), sink


def tap(tick: int, pitch: int, channel: int = 9) -> list[tuple[int, mido.Message]]:
    return [(tick, mido.Message("note_on", channel=channel, note=pitch, velocity=100)),
            (tick + 2, mido.Message("note_off", channel=channel, note=pitch))]


@pytest.mark.parametrize("config_id, step", [("drum_kit", 6), ("one_drum", 12)])
def test_plays_on_channel_10_on_the_grid_and_keeps_going(config_id, step):
    s, sink = session(drums_spec(), random_model(config_id))
    assert isinstance(s.agents[0], DrumsAgent)
    drive(s, 8 * BAR)
    s.stop(8 * BAR)
    sent = sink.of("drums")
    ons = sink.note_ons("drums")
    assert ons
    assert {m.msg.channel for m in sent} == {9}
    assert {m.tick % step for m in sent} == {0}
    assert min(m.tick for m in ons) == step  # the first step after the clock started
    assert {m.tick // BAR for m in ons} == set(range(8))  # every bar
    assert pairing_errors(sent) == []
    # each hit is ended one step later
    offs = {(m.tick, m.msg.note) for m in sent if m.msg.type == "note_off"}
    assert all((m.tick + step, m.msg.note) in offs for m in ons)


def test_velocity_from_the_knob():
    s, sink = session(drums_spec(params=Params(velocity=57)))
    drive(s, BAR)
    assert {m.msg.velocity for m in sink.note_ons("drums")} == {57}


def test_taps_are_fed_not_doubled():
    # the player taps bar 1 (kick on the beats, hats on the eighths), then stops
    player = []
    for step in range(16, 32):
        if step % 4 == 0:
            player += tap(step * 6, KICK)
        if step % 2 == 0:
            player += tap(step * 6 + (1 if step % 4 else -1), HAT)  # a little early or late
    s, sink = session(drums_spec(silence=4))
    agent = s.agents[0]
    drive(s, 4 * BAR, player)
    s.stop(4 * BAR)
    # the tapped steps were fed as played, and steps between taps as rests
    for step in range(16, 32):
        expected = frozenset(([KICK] if step % 4 == 0 else []) + ([HAT] if step % 2 == 0 else []))
        assert agent.fed[step] == (expected, "player"), step
    # the model was silent from the first tap until 4 steps after the last one
    ons = sink.note_ons("drums")
    assert not [m for m in ons if 16 * 6 <= m.tick <= 34 * 6]
    assert [m for m in ons if m.tick < 16 * 6] and [m for m in ons if m.tick > 34 * 6]  # before and after
    assert agent.fed[35][1] == "model"
    assert pairing_errors(sink.of("drums")) == []


def test_the_taps_change_what_the_model_plays():
    outs = []
    for player in ([], tap(0, KICK) + tap(24, SNARE) + tap(48, KICK) + tap(72, SNARE)):
        s, sink = session(drums_spec())
        drive(s, 4 * BAR, player)
        outs.append([(m.tick, m.msg.note) for m in sink.note_ons("drums") if m.tick >= 2 * BAR])
    assert outs[0] != outs[1]


def test_a_tap_cuts_the_step_the_model_planned():
    """A tap that comes just before a step: the model's notes for that step never leave."""
    s, sink = session(drums_spec())
    drive(s, BAR - 1)  # the model planned step 16 (tick 96) at tick 93
    assert [m for m in sink.note_ons("drums") if m.tick == BAR]
    drive(s, BAR, tap(BAR - 1, SNARE), start=BAR - 1)  # tick 95 belongs to step 16
    assert not [m for m in sink.note_ons("drums") if m.tick >= BAR]
    assert ("drums", BAR - 1) in sink.cancels
    drive(s, 2 * BAR, start=BAR)
    assert s.agents[0].fed[16] == (frozenset([SNARE]), "player")
    s.stop(2 * BAR)
    assert pairing_errors(sink.of("drums")) == []


def test_only_the_drum_channel_is_heard():
    s, _ = session(drums_spec())
    agent = s.agents[0]
    drive(s, 2 * BAR, tap(BAR, KICK, channel=0))
    assert agent.state == "playing"
    assert agent.fed[16][1] == "model"
    # unless the spec names the input channels
    s, _ = session(drums_spec(input_channels=[1]))
    drive(s, 2 * BAR, tap(BAR, KICK, channel=0))
    assert s.agents[0].fed[16] == (frozenset([KICK]), "player")


def write_pattern(path, hits: list[tuple[int, int]], other_channel_notes: bool = True) -> None:
    """A MIDI file of drum hits (step, pitch) on channel 10 at 480 pulses per quarter."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    events = []
    for step, pitch in hits:
        events.append((step * 120, mido.Message("note_on", channel=9, note=pitch, velocity=100)))
        events.append((step * 120 + 60, mido.Message("note_off", channel=9, note=pitch)))
    if other_channel_notes:  # a bass line on channel 1 is not part of the pattern
        events.append((0, mido.Message("note_on", channel=0, note=40, velocity=100)))
        events.append((40 * 120, mido.Message("note_off", channel=0, note=40)))
    now = 0
    for pulse, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=pulse - now))
        now = pulse
    mid.tracks.append(track)
    mid.save(path)


PATTERN = [(0, KICK), (0, HAT), (2, HAT), (4, SNARE), (4, HAT), (6, HAT), (8, KICK), (8, HAT), (10, HAT), (12, SNARE), (12, HAT), (14, HAT), (19, KICK)]


def test_read_pattern_quantizes_to_whole_bars(tmp_path):
    write_pattern(tmp_path / "p.mid", PATTERN)
    steps = read_pattern(tmp_path / "p.mid", 6, 16)
    assert len(steps) == 32  # the hit on step 19 makes it two bars
    assert steps[0] == frozenset([KICK, HAT]) and steps[4] == frozenset([SNARE, HAT]) and steps[19] == frozenset([KICK])
    assert steps[1] == steps[20] == frozenset()
    with pytest.raises(FileNotFoundError):
        read_pattern(tmp_path / "missing.mid", 6, 16)


def test_a_pattern_file_primes_the_model(tmp_path):
    write_pattern(tmp_path / "p.mid", PATTERN)
    primed, primed_sink = session(drums_spec(pattern_file=str(tmp_path / "p.mid")))
    plain, plain_sink = session(drums_spec())
    agent = primed.agents[0]
    assert agent.stream.events[:32] == read_pattern(tmp_path / "p.mid", 6, 16)
    assert len(agent.stream) == 32  # fed before the clock starts
    drive(primed, 2 * BAR)
    drive(plain, 2 * BAR)
    a = [(m.tick, m.msg.note) for m in primed_sink.note_ons("drums")]
    b = [(m.tick, m.msg.note) for m in plain_sink.note_ons("drums")]
    assert a and a != b  # same seed, other priming
    assert min(t for t, _ in a) == 6  # the pattern is not played, the model continues it
    # after a stop the pattern primes again
    primed.stop(2 * BAR)
    assert agent.stream.events == read_pattern(tmp_path / "p.mid", 6, 16)


def test_offline_is_byte_deterministic(tmp_path):
    write_pattern(tmp_path / "in.mid", PATTERN, other_channel_notes=False)  # the taps: the input
    from live.models.modelfile import save

    save(random_model("drum_kit"), tmp_path / "kit.npz")
    outs = []
    for n, seed in enumerate((3, 3, 4)):
        out = tmp_path / f"out{n}.mid"
        run_offline(tmp_path / "in.mid", out, [drums_spec(model=str(tmp_path / "kit.npz"))], seed=seed, tail_bars=2)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] != outs[2]
    mid = mido.MidiFile(tmp_path / "out0.mid")
    track = next(t for t in mid.tracks if any(m.type == "track_name" and m.name == "drums" for m in t))
    notes = [m for m in track if m.type == "note_on" and m.velocity > 0]
    assert notes and {m.channel for m in notes} == {9}


def test_the_drum_voice_answers_calls_too():
    """call-response with a drum model: the voice's hits are paired there as well."""
    sink = ListSink()
    s = Session([AgentSpec(name="cr", mode="call-response", output_channel=10, response_quantize="step")], sink, seed=0,
                models={0: random_model("drum_kit")})
    player = [item for step in range(0, 8, 2) for item in tap(step * 6, KICK)]
    drive(s, 2 * BAR, player)
    s.stop(2 * BAR)
    assert sink.note_ons("cr")
    assert pairing_errors(sink.of("cr")) == []
    assert isinstance(s.agents[0].voice, DrumVoice)


def notes_per_bar(model, density: float, seeds: int = 4, bars: int = 8) -> float:
    total = 0
    for seed in range(seeds):
        s, sink = session(drums_spec(params=Params(density=density)), model, seed=seed)
        drive(s, bars * BAR)
        total += len(sink.note_ons("drums"))
    return total / (seeds * bars)


@pytest.mark.parametrize("config_id, lean", [("drum_kit", 3.0), ("one_drum", 3.0), ("one_drum", 0.0)])
def test_density_raises_and_lowers_the_notes_per_bar(config_id, lean):
    """Notes per bar over 4 seeds x 8 bars at density 0.1, 0.5 (the model alone) and 0.9.

    Density biases the empty step (the drums' quiet event). A model leaning to empty steps, as
    trained ones do (a groove rests on many sixteenths), shows it for both configurations. With
    plain random drum_kit weights the empty step is one class of 512 that the model almost never
    picks, so the bias has nothing to act on; random one_drum weights (2 classes) show it too."""
    model = quiet_leaning(random_model(config_id), DrumVoice.is_quiet, lean)
    sparse, plain, busy = (notes_per_bar(model, d) for d in (0.1, 0.5, 0.9))
    assert sparse < plain < busy, (sparse, plain, busy)
    assert busy > 1.2 * sparse
