"""Performance RNN agents: call-and-response answers off the step grid, continue, duet, density."""

from __future__ import annotations

from dataclasses import replace

import mido
import numpy as np
import pytest

import live.models
from live.engine.agent import AgentSpec, Params
from live.engine.performance import (
    RESTART_LEAD_SECONDS,
    Duet,
    PerformanceCallResponse,
    PerformanceContinue,
)
from live.engine.modes import agent_class
from live.engine.session import Session
from live.models.encodings.performance import (
    TIME_SHIFT,
    NoteDensityEncoder,
    PerformanceOneHotEncoding,
)
from live.models.model import LSTM_BIAS, LSTM_KERNEL, OUTPUT_BIAS, OUTPUT_KERNEL, Model
from live.offline import OfflineSink, run_offline
from live.recording import Recording
from tests.engine.models import random_model

BPM = 120.0
TICKS_PER_SECOND = BPM * 24 / 60  # 48
DYNAMICS = "performance_with_dynamics"
MULTI = "multiconditioned_performance_with_dynamics"


def phrase(start: int, notes: list[tuple[int, int]], velocity: int = 80) -> list[tuple[int, mido.Message]]:
    """(tick, message) of notes played one after another: (pitch, length in ticks)."""
    out, t = [], start
    for pitch, length in notes:
        out.append((t, mido.Message("note_on", note=pitch, velocity=velocity)))
        out.append((t + length, mido.Message("note_off", note=pitch, velocity=0)))
        t += length
    return out


CALL = phrase(10, [(60, 12), (64, 12), (67, 12), (72, 12)])  # ticks 10..58
CALL_END = 58


class Run:
    """A session driven tick by tick, recorded by the offline sink."""

    def __init__(self, model: Model, spec: AgentSpec, seed: int = 0) -> None:
        self.recording = Recording(BPM)
        self.recording.add_track("player")
        self.sink = OfflineSink(self.recording, BPM)
        self.session = Session([spec], self.sink, seed=seed, models={0: model}, bpm=BPM)
        self.agent = self.session.agents[0]
        self.states: list[str] = []
        self.tick = 0

    def play(self, player: list[tuple[int, mido.Message]], until: int) -> Run:
        player = sorted(player, key=lambda e: e[0])
        i = 0
        while self.tick < until:
            while i < len(player) and player[i][0] <= self.tick:
                self.session.player(*player[i])
                i += 1
            self.sink.now = self.tick
            self.session.tick(self.tick)
            self.sink.flush(self.tick)
            self.states.append(self.agent.state)
            self.tick += 1
        return self

    def finish(self) -> Run:
        self.session.stop(self.tick)
        self.sink.finish(self.tick)
        return self

    @property
    def messages(self) -> list[tuple[float, mido.Message]]:
        return [(pos, msg) for pos, _, msg in self.recording.tracks.get(self.agent.name, [])]

    def onsets(self) -> list[float]:
        return [pos for pos, msg in self.messages if msg.type == "note_on" and msg.velocity > 0]


def spec(mode: str = "call-response", **kw) -> AgentSpec:
    params = kw.pop("params", None) or Params()
    return AgentSpec(name="perf", mode=mode, params=params, **kw)


def notes_of(messages: list[tuple[float, mido.Message]]) -> list[tuple[int, float, float]]:
    """(pitch, start, end) of every note; asserts every note-on gets its note-off, in order."""
    sounding: dict[int, float] = {}
    notes = []
    for pos, msg in messages:
        if msg.type == "note_on" and msg.velocity > 0:
            assert msg.note not in sounding, f"note {msg.note} struck again at {pos} without a note-off"
            sounding[msg.note] = pos
        elif msg.type in ("note_on", "note_off"):
            assert msg.note in sounding, f"note-off for {msg.note} at {pos} that is not sounding"
            notes.append((msg.note, sounding.pop(msg.note), pos))
    assert not sounding, f"notes left hanging: {sounding}"
    return notes


def states_in_order(states: list[str]) -> list[str]:
    return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]


# -- call and response ---------------------------------------------------------------------------


def test_the_session_picks_the_performance_agents():
    assert agent_class("call-response", "performance") is PerformanceCallResponse
    assert agent_class("duet", "performance") is Duet
    assert agent_class("continue", "performance") is PerformanceContinue


@pytest.mark.parametrize("quantize, grid", [("step", 6), ("beat", 24), ("bar", 96)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_answer_starts_with_a_note_on_the_grid_point_after_the_call(quantize, grid, seed):
    model = random_model(DYNAMICS, seed=seed)
    run = Run(model, spec(response_quantize=quantize, silence=4), seed=seed).play(CALL, 600).finish()
    silence_over = CALL_END + 4 * 6
    start = -(-silence_over // grid) * grid
    onsets = run.onsets()
    assert onsets, "no answer"
    assert min(onsets) == pytest.approx(start)
    order = states_in_order(run.states)
    if start - (CALL_END + 4 * 6 - 3) <= 5:  # an answer due within the look-ahead starts at once
        order.insert(2, "waiting")
    assert order == ["idle", "listening", "waiting", "answering", "idle"]
    assert run.states[start - 1] in ("waiting", "answering") and run.states[9] == "idle"
    # the answer lasts as long as the call (first note-on to last note-off: 48 ticks)
    notes = notes_of(run.messages)
    assert max(end for _, _, end in notes) <= start + 48 + 1e-6
    assert run.agent.call.answers == 1


def shift_loving_model(seed: int = 0) -> Model:
    """A random model that nearly always draws a time shift."""
    model = random_model(DYNAMICS, seed=seed)
    weights = {k: v.copy() for k, v in model.weights.items()}
    one_hot = PerformanceOneHotEncoding(num_velocity_bins=32)
    shifts = [i for i in range(one_hot.num_classes) if one_hot.decode_event(i).kind == TIME_SHIFT]
    weights[OUTPUT_BIAS][shifts] += 6.0
    return Model(model.config, weights, where="time-shift-loving model")


def test_the_answer_begins_with_a_note_even_when_the_model_would_rather_wait():
    for seed in (0, 1, 2):
        run = Run(shift_loving_model(seed), spec(), seed=seed).play(CALL, 300).finish()
        assert min(run.onsets()) == pytest.approx(96)


def test_response_bars_sets_the_answer_length():
    params = Params(response_bars=2)
    run = Run(random_model(DYNAMICS), spec(params=params)).play(CALL, 800).finish()
    start = 96  # the beat after the silence (58 + 24 = 82)
    assert run.agent.call.answer_start == start and run.agent.call.answer_end == start + 2 * 96
    notes = notes_of(run.messages)
    assert max(end for _, _, end in notes) <= start + 192 + 1e-6
    assert max(s for _, s, _ in notes) > start + 96  # it really plays into the second bar


def test_the_player_is_fed_as_performance_events():
    run = Run(random_model(DYNAMICS), spec()).play(CALL, 60)
    events = run.agent.stream.events
    # after the primer (a one-second shift): the call, 10 ms shifts between its notes (12 ticks
    # at 120 BPM = 0.25 s = 25 steps), one velocity event for velocity 80, note-ons and note-offs
    played = [e for e in events[1:] if e.kind != TIME_SHIFT]
    assert [(e.kind, e.value) for e in played] == [
        (4, 20), (1, 60), (2, 60), (1, 64), (2, 64), (1, 67), (2, 67), (1, 72), (2, 72)
    ]
    gaps = [e.value for e in events[1:] if e.kind == TIME_SHIFT]
    assert gaps[1:] == [25, 25, 25, 25]


def test_a_short_call_is_ignored():
    run = Run(random_model(DYNAMICS), spec(min_call=4)).play(phrase(10, [(60, 6)]), 300).finish()
    assert run.onsets() == [] and run.agent.call.calls_ignored == 1 and run.agent.state == "idle"


def test_end_call_ends_the_call_at_once():
    run = Run(random_model(DYNAMICS), spec(response_quantize="step", silence=16))
    run.play(CALL, 60)
    run.session.agents[0].end_call(60)
    run.play([], 400).finish()
    assert min(run.onsets()) == pytest.approx(66)  # the step after tick 60 + half a step


def test_a_long_call_ends_at_its_maximum_length():
    held = [(10, mido.Message("note_on", note=60, velocity=80)), (500, mido.Message("note_off", note=60, velocity=0))]
    run = Run(random_model(DYNAMICS), spec(response_quantize="beat", max_call=16)).play(held, 200)
    assert run.agent.state in ("waiting", "answering") and run.agent.call.answer_start == 120


def test_every_note_ends_and_none_is_longer_than_five_seconds():
    # a busy model holding many notes: every note-on gets its note-off, no note outlasts 5 s
    run = Run(random_model(DYNAMICS, seed=3), spec("duet", params=Params(density=0.8))).play([], 30 * 48).finish()
    notes = notes_of(run.messages)
    assert len(notes) > 50
    longest = max(end - start for _, start, end in notes) / TICKS_PER_SECOND
    assert longest <= 5.0 + 1e-6


def test_answers_end_their_notes_and_a_player_note_cuts_the_answer():
    model = random_model(DYNAMICS, seed=1)
    params = Params(response_bars=4)
    run = Run(model, spec(params=params)).play(CALL, 150)
    assert run.agent.state == "answering" and run.onsets()
    cut = 150
    second = phrase(cut, [(62, 12), (65, 12)])  # the player plays again in the middle of the answer
    run.play(second, 600).finish()
    assert run.agent.call.answers == 1  # the first answer was cut, the second one played out
    before = [(pos, msg) for pos, msg in run.messages if pos <= cut]
    after = [(pos, msg) for pos, msg in run.messages if pos > cut]
    notes_of(before)  # the cut ended every note of the first answer at the cut
    assert not [pos for pos, msg in after if pos < run.agent.call.answer_start]  # silence while listening
    assert min(p for p, m in after if m.type == "note_on") == pytest.approx(run.agent.call.answer_start)
    assert run.agent.call.answer_start == 216  # the beat after 150 + 24 ticks of call + 24 of silence
    assert "listening" in run.states[cut:]
    notes_of(run.messages)


def test_loop_repeats_the_answer():
    params = Params(loop=True, response_bars=1)
    run = Run(random_model(DYNAMICS, seed=2), spec(params=params)).play(CALL, 96 + 3 * 96 - 10)
    assert run.agent.call.answers >= 2 and run.agent.state == "answering"
    notes = notes_of(run.finish().messages)
    first = sorted((p, s - 96, e - 96) for p, s, e in notes if 96 <= s < 192)
    second = sorted((p, s - 192, e - 192) for p, s, e in notes if 192 <= s < 288)
    assert first and len(first) == len(second)
    for a, b in zip(first, second):
        assert a[0] == b[0] and a[1] == pytest.approx(b[1]) and a[2] == pytest.approx(b[2])


def test_mutate_answers_the_answer():
    params = Params(mutate=True, response_bars=1)
    run = Run(random_model(DYNAMICS, seed=2), spec(params=params)).play(CALL, 96 + 3 * 96 - 10).finish()
    onsets = run.onsets()
    for start in (96, 192, 288 - 96):
        assert start in [pytest.approx(o) for o in onsets]  # each answer begins on its bar
    assert run.agent.call.answers >= 2


def test_same_seed_same_file_byte_for_byte(tmp_path):
    call = tmp_path / "call.mid"
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    last = 0
    for tick, msg in CALL + phrase(400, [(55, 24), (59, 6), (62, 30)], velocity=110):
        track.append(msg.copy(time=(tick - last) * 20))
        last = tick
    mid.tracks.append(track)
    mid.save(call)
    live.models.save(random_model(DYNAMICS), tmp_path / "perf.npz")
    live.models.save(random_model(MULTI), tmp_path / "multi.npz")
    specs = [
        spec(params=Params(response_bars=2), model=str(tmp_path / "perf.npz")),
        replace(spec("duet", model=str(tmp_path / "multi.npz")), name="duet", output_channel=2),
    ]
    outputs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out = tmp_path / f"{name}.mid"
        run_offline(call, out, [replace(s, params=replace(s.params)) for s in specs], seed=seed, tail_bars=2)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]
    for track in mido.MidiFile(tmp_path / "a.mid").tracks[2:]:
        notes_of([(0.0, m) for m in track if m.type in ("note_on", "note_off")])


def test_continue_plays_on_until_the_player_plays_again():
    run = Run(random_model(DYNAMICS), spec("continue")).play(CALL, 1000)
    assert run.agent.state == "answering" and run.agent.call.answer_start == 96
    assert max(run.onsets()) > 800  # still playing long after the call
    run.play(phrase(1000, [(60, 12)]), 1020)
    assert run.agent.state == "listening"
    notes_of(run.finish().messages)


@pytest.mark.parametrize("mode", ["duet", "call-response"])
def test_messages_are_handed_over_before_they_are_due(mode):
    run = Run(random_model(MULTI), spec(mode, params=Params(response_bars=4)))
    handed = []
    play = run.sink.play

    def spy(agent, out):
        handed.append((run.sink.now, out.tick + out.offset / run.agent.seconds_per_tick, out.msg))
        play(agent, out)

    run.sink.play = spy
    run.play(CALL, 10 * 48).finish()
    ons = [(now, pos) for now, pos, msg in handed if msg.type == "note_on"]
    assert len(ons) > 10
    assert all(pos >= now for now, pos in ons)
    assert all(pos >= now for now, pos, _ in handed)


def test_tempo_changes_keep_every_note_ended():
    run = Run(random_model(DYNAMICS), spec("duet")).play([], 200)
    run.session.set_tempo(60.0)
    run.play([], 400)
    run.session.set_tempo(180.0)
    run.play([], 600).finish()
    notes_of(run.messages)


# -- duet ----------------------------------------------------------------------------------------


def test_duet_keeps_playing():
    run = Run(random_model(DYNAMICS), spec("duet")).play(CALL, 20 * 48).finish()
    onsets = run.onsets()
    assert run.states[0] == "playing" and set(run.states) == {"playing"}
    for second in range(0, 20, 5):  # notes in every five seconds
        assert any(second * 48 <= o < (second + 5) * 48 for o in onsets)
    notes_of(run.messages)


def test_the_duet_places_nothing_on_the_tick_it_starts_from():
    # that tick's time has passed when it is processed: notes on it would go out late
    run = Run(random_model(DYNAMICS), spec("duet")).play([], 5 * 48).finish()
    lead_ticks = RESTART_LEAD_SECONDS / (60.0 / (BPM * 24))
    assert min(pos for pos, _ in run.messages) >= lead_ticks - 1e-9


def test_the_player_steers_the_duet_only_through_conditioning():
    # unconditioned: the player's notes change nothing (they are not fed to the duet's stream)
    alone = Run(random_model(DYNAMICS), spec("duet")).play([], 10 * 48).finish()
    along = Run(random_model(DYNAMICS), spec("duet")).play(CALL, 10 * 48).finish()
    assert alone.messages and alone.messages == along.messages
    # conditioned: they do
    alone = Run(random_model(MULTI), spec("duet")).play([], 10 * 48).finish()
    along = Run(random_model(MULTI), spec("duet")).play(CALL, 10 * 48).finish()
    assert alone.messages != along.messages


@pytest.mark.parametrize("config", [MULTI, "optional_" + MULTI, "density_conditioned_performance_with_dynamics", "pitch_conditioned_performance_with_dynamics"])
def test_duet_conditioning_follows_the_player(config):
    run = Run(random_model(config), spec("duet"))
    run.agent.keep_controls = True
    run.play([], 48)
    # nothing heard yet: Magenta's defaults
    first = run.agent.controls[-1]
    # the player plays C E G fast: 8 notes per second for 3 seconds
    fast = phrase(48, [(p, 6) for p in [60, 64, 67] * 8])
    run.play(fast, 48 + 3 * 48)
    busy = run.agent.controls[-1]
    # a rest, then F A slowly: 2 notes per second for 4 seconds (the fast notes left the window)
    slow = phrase(6 * 48, [(p, 24) for p in [65, 69] * 4])
    run.play(slow, 10 * 48)
    calm = run.agent.controls[-1]
    run.play([], 16 * 48)  # the player stops: the controls hold
    held = run.agent.controls[-1]
    run.finish()
    if config.startswith("optional_"):
        assert first[0] is False and busy[0] is False
        first, busy, calm, held = first[1], busy[1], calm[1], held[1]
    if config != "pitch_conditioned_performance_with_dynamics":
        density = NoteDensityEncoder()
        assert first[0] == 15.0
        assert 6.0 <= busy[0] <= 9.0 and 1.5 <= calm[0] <= 2.5
        assert density.density_to_bin(busy[0]) == 4 and density.density_to_bin(calm[0]) == 2
        assert held[0] == calm[0]
        first, busy, calm, held = first[1:], busy[1:], calm[1:], held[1:]
    if config != "density_conditioned_performance_with_dynamics":
        assert list(first[0]) == [1.0] * 12
        top = lambda h: sorted(np.argsort(h)[-3:].tolist())
        assert top(busy[0]) == [0, 4, 7]
        assert sorted(np.argsort(calm[0])[-2:].tolist()) == [5, 9]
        assert held[0] == calm[0]


def test_the_density_knob_scales_the_followed_density():
    for density, expected in ((0.5, 15.0), (0.0, 15.0 / 8), (1.0, 15.0 * 8)):
        run = Run(random_model(MULTI), spec("duet", params=Params(density=density)))
        run.agent.keep_controls = True
        run.play([], 5)
        assert run.agent.controls[-1][0] == pytest.approx(expected)


def planted_density_model(config_id: str = "density_conditioned_performance_with_dynamics") -> Model:
    """A random model with one planted unit: the higher the density control's bin, the less
    likely a time shift (what a trained conditioned model has learned, made plain)."""
    model = random_model(config_id, seed=4)
    weights = {k: v.copy() for k, v in model.weights.items()}
    kernel, bias = weights[LSTM_KERNEL.format(0)], weights[LSTM_BIAS.format(0)]
    units = bias.shape[0] // 4
    gates = [g * units for g in range(4)]  # i, j, f, o columns of unit 0
    kernel[:, gates] = 0.0
    bins = NoteDensityEncoder().input_size
    kernel[:bins, gates[1]] = 0.8 * (np.arange(bins) - (bins - 1) / 2)  # j: a ramp over the bins
    bias[gates] = (10.0, 0.0, -10.0, 10.0)  # input and output gates open, no memory
    out = weights[OUTPUT_KERNEL]
    one_hot = PerformanceOneHotEncoding(num_velocity_bins=32)
    shifts = [i for i in range(one_hot.num_classes) if one_hot.decode_event(i).kind == TIME_SHIFT]
    out[0, shifts] = -4.0
    return Model(model.config, weights, where="planted density model")


def notes_per_second(model: Model, density: float, seed: int, seconds: int = 20) -> float:
    run = Run(model, spec("duet", params=Params(density=density)), seed=seed).play([], seconds * 48).finish()
    return len(run.onsets()) / seconds


@pytest.mark.parametrize("conditioned", [False, True])
def test_density_changes_the_notes_per_second(conditioned):
    model = planted_density_model() if conditioned else random_model(DYNAMICS, seed=5)
    rates = {d: np.mean([notes_per_second(model, d, seed) for seed in (1, 2, 3)]) for d in (0.1, 0.5, 0.9)}
    assert rates[0.1] < rates[0.5] < rates[0.9], rates
    assert rates[0.9] > 1.5 * rates[0.1], rates
