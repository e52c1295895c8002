"""``magenta-live generate`` end to end, and its helpers against note-seq's reference classes."""

from __future__ import annotations

import argparse
import pathlib
import re

import mido
import note_seq
import numpy as np
import pytest
from note_seq import sequences_lib
from note_seq.protobuf import music_pb2

from live import generate as gen
from live.cli import build_parser, main
from live.midi_file import Note, read_midi, write_midi
from live.models import Model, ModelConfig, get_config, load
from live.models.encodings.chords import transpose_chord_symbol
from live.models.encodings.melody import squash_melody
from live.models.encodings.performance import TIME_SHIFT, PerfEvent
from live.models.model import expected_shapes
from live.models.modelfile import save
from tests.corpus import bach_chorales, chorale_voice

BUNDLES = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "magenta_bundles"
PERFORMANCE_CONFIGS = [
    "performance",
    "performance_with_dynamics",
    "performance_with_dynamics_compact",
    "performance_with_dynamics_and_modulo_encoding",
    "density_conditioned_performance_with_dynamics",
    "pitch_conditioned_performance_with_dynamics",
    "multiconditioned_performance_with_dynamics",
    "optional_multiconditioned_performance_with_dynamics",
]
RANDOM_CONFIGS = [
    "basic_rnn",
    "mono_rnn",
    "basic_improv",
    "attention_improv",
    "chord_pitches_improv",
    "drum_kit",
    "one_drum",
] + PERFORMANCE_CONFIGS
NAME_RE = re.compile(r"^\d{4}-\d\d-\d\d_\d{6}_(\d+)\.mid$")


# --------------------------------------------------------------------------- models


def random_model(config_id: str, layers=(16, 16), seed: int = 0) -> Model:
    spec = get_config(config_id)
    encoder = spec.make_encoder()
    config = ModelConfig(config_id, list(layers), encoder.input_size, encoder.num_classes, attn_length=spec.attn_length)
    rng = np.random.default_rng(seed)
    weights = {k: (rng.standard_normal(s) * 0.3).astype(np.float32) for k, s in expected_shapes(config).items()}
    return Model(config, weights)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """Model files: the real fixture bundles (converted once) and small random models."""
    root = tmp_path_factory.mktemp("models")
    paths = {}
    for name in ("attention_rnn_64x2", "lookback_rnn_256x2", "polyphony_128x2"):
        bundle = BUNDLES / f"{name}.mag"
        assert bundle.exists(), f"fixture bundle missing: {bundle}"
        path = root / f"{name}.npz"
        save(load(bundle), path)
        paths[name.split("_rnn")[0].split("_128")[0]] = str(path)
    for config_id in RANDOM_CONFIGS:
        path = root / f"{config_id}.npz"
        save(random_model(config_id), path)
        paths[config_id] = str(path)
    return paths


def run_cli(model: str, out: pathlib.Path, *flags: str, outputs: int = 1) -> list[pathlib.Path]:
    """Run ``generate`` and return the written files, checking exit status and names."""
    code = main(["generate", "--model", model, "--output-dir", str(out), "--num-outputs", str(outputs), *flags])
    assert code == 0
    files = sorted(out.glob("*.mid"))
    assert len(files) == outputs
    digits = len(str(outputs))
    for i, f in enumerate(files):
        m = NAME_RE.match(f.name)
        assert m, f.name
        assert m.group(1) == str(i + 1).zfill(digits)
    return files


def read_ns(path: pathlib.Path) -> music_pb2.NoteSequence:
    return note_seq.midi_file_to_note_sequence(str(path))


def steps_of(ns: music_pb2.NoteSequence, steps_per_second: float, program: int | None = None) -> list[tuple[int, int, int]]:
    """(start step, end step, pitch) of every note (of ``program``), sorted."""
    return sorted(
        (round(n.start_time * steps_per_second), round(n.end_time * steps_per_second), n.pitch)
        for n in ns.notes
        if program is None or n.program == program
    )


def make_args(**flags) -> argparse.Namespace:
    """Parsed ``generate`` flags (defaults filled in as ``run`` does)."""
    argv = ["generate", "--model", "unused"]
    for key, value in flags.items():
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    args = build_parser().parse_args(argv)
    return args


# --------------------------------------------------------------------------- every family


@pytest.mark.parametrize(
    "name, flags",
    [
        ("attention", ["--num-steps", "48"]),
        ("lookback", ["--num-steps", "48"]),
        ("basic_rnn", ["--num-steps", "48"]),
        ("mono_rnn", ["--num-steps", "48"]),
        ("basic_improv", ["--backing-chords", "C G"]),
        ("attention_improv", ["--backing-chords", "Am7 D7 Gmaj7"]),
        ("chord_pitches_improv", ["--backing-chords", "A13 Cdim F#m7b5"]),
        ("polyphony", ["--num-steps", "24", "--primer-pitches", "[60, 64]"]),
        ("drum_kit", ["--num-steps", "32"]),
        ("one_drum", ["--num-steps", "32"]),
    ]
    + [(c, ["--num-steps", "200", "--primer-pitches", "[60, 64]"]) for c in PERFORMANCE_CONFIGS],
)
def test_every_family_writes_the_requested_files(models, tmp_path, name, flags):
    files = run_cli(models[name], tmp_path, *flags, "--seed", "1", outputs=3)
    for f in files:
        ns = read_ns(f)
        assert ns.notes, f"{name}: no notes in {f.name}"


def test_a_magenta_bundle_can_be_given_directly(tmp_path):
    (f,) = run_cli(str(BUNDLES / "lookback_rnn_256x2.mag"), tmp_path, "--num-steps", "32", "--seed", "1")
    assert read_ns(f).notes[0].pitch == 60


def test_ten_outputs_get_two_digit_names(models, tmp_path):
    files = run_cli(models["basic_rnn"], tmp_path, "--num-steps", "8", outputs=10)
    assert [f.name[-6:] for f in files] == [f"{i:02d}.mid" for i in range(1, 11)]


# --------------------------------------------------------------------------- melody


@pytest.mark.parametrize("name", ["attention", "basic_rnn"])
def test_melody_starts_with_the_primer_in_its_own_key_and_stays_in_range(models, tmp_path, name):
    primer = [86, -2, 88, -2, 90, -2, -2, -1, 86]  # D major, above the model range 48..84
    files = run_cli(models[name], tmp_path, "--primer-melody", str(primer), "--num-steps", "64", "--seed", "3", outputs=2)
    _, amount = squash_melody(primer + [-1, -2], 48, 84, 0)
    assert amount != 0
    for f in files:
        notes = steps_of(read_ns(f), 8)  # 120 qpm, 4 steps per quarter
        assert notes[:4] == [(0, 2, 86), (2, 4, 88), (4, 7, 90), (8, 9, 86)]
        generated = notes[4:]
        assert generated and all(start >= 11 for start, _, _ in generated), "generation starts after a gap step"
        assert all(48 <= pitch + amount < 84 for _, _, pitch in generated)
        assert max(end for _, end, _ in notes) <= 64


def test_melody_without_primer_starts_from_middle_c(models, tmp_path):
    (f,) = run_cli(models["lookback"], tmp_path, "--num-steps", "32", "--seed", "0")
    notes = steps_of(read_ns(f), 8)
    assert notes[0] == (0, 1, 60)
    assert all(start >= 3 for start, _, _ in notes[1:])


def test_qpm_sets_the_tempo_and_the_step_length(models, tmp_path):
    (f,) = run_cli(models["basic_rnn"], tmp_path, "--num-steps", "32", "--qpm", "90", "--primer-melody", "[60, -2]")
    ns = read_ns(f)
    assert ns.tempos[0].qpm == pytest.approx(90, abs=1e-3)
    assert ns.notes[0].end_time == pytest.approx(2 * 60 / 90 / 4, abs=2e-3)
    assert max(n.end_time for n in ns.notes) <= 32 * 60 / 90 / 4 + 1e-3


def test_primer_midi_melody_and_its_tempo(models, tmp_path):
    """A real melody (a chorale soprano) as primer: it comes back quantized, at its own tempo."""
    seq = chorale_voice(bach_chorales(1)[0])
    primer = music_pb2.NoteSequence()
    primer.tempos.add(qpm=100)
    primer.ticks_per_quarter = 220
    scale = 120.0 / 100.0
    for n in seq.notes:
        if n.start_time < 8:  # four bars at 120 qpm
            primer.notes.add(pitch=n.pitch, start_time=n.start_time * scale, end_time=n.end_time * scale, velocity=80)
    primer.total_time = max(n.end_time for n in primer.notes)
    path = tmp_path / "primer.mid"
    note_seq.sequence_proto_to_midi_file(primer, str(path))

    # note-seq's own extraction of the primer melody, as Magenta's melody generator does it.
    reference = note_seq.Melody()
    reference.from_quantized_sequence(
        note_seq.quantize_note_sequence(note_seq.midi_file_to_note_sequence(str(path)), 4),
        gap_bars=float("inf"),
        ignore_polyphonic_notes=True,
    )
    expected = steps_of(reference.to_sequence(qpm=100), 100 / 60 * 4)

    out = tmp_path / "out"
    steps = str(reference.end_step + 20)
    (f,) = run_cli(models["attention"], out, "--primer-midi", str(path), "--num-steps", steps, "--qpm", "150")
    ns = read_ns(f)
    assert ns.tempos[0].qpm == pytest.approx(100, abs=1e-3), "the primer MIDI's tempo wins over --qpm"
    notes = steps_of(ns, 100 / 60 * 4)
    assert notes[: len(expected)] == expected


# --------------------------------------------------------------------------- improv


def test_improv_length_is_chords_times_steps_per_chord_and_renders_chords(models, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (plain,) = run_cli(models["basic_improv"], a, "--backing-chords", "C G Am F", "--steps-per-chord", "16", "--seed", "5")
    (rendered,) = run_cli(
        models["basic_improv"], b, "--backing-chords", "C G Am F", "--steps-per-chord", "16", "--seed", "5", "--render-chords"
    )
    melody = steps_of(read_ns(plain), 8)
    assert max(end for _, end, _ in melody) <= 64
    assert melody[0] == (0, 1, 60), "default primer: middle C"
    ns = read_ns(rendered)
    assert steps_of(ns, 8, program=0) == melody, "same seed, same melody; the chords are extra"
    chords = steps_of(ns, 8, program=88)
    assert all(n.velocity == 50 for n in ns.notes if n.program == 88)
    expected = []
    for bar, (tones, bass) in enumerate([((0, 4, 7), 0), ((7, 11, 2), 7), ((9, 0, 4), 9), ((5, 9, 0), 5)]):
        expected += [(16 * bar, 16 * bar + 16, 48 + pc) for pc in tones] + [(16 * bar, 16 * bar + 16, 36 + bass)]
    assert chords == sorted(expected)
    assert max(n.end_time for n in ns.notes) == pytest.approx(64 / 8, abs=2e-3)


def test_improv_feeds_the_next_steps_chord_transposed_with_the_melody(models):
    primer = [62, -2, 66, -2, 69, -2, 74]  # D major: squashed to C, chords move with it
    args = make_args(primer_melody=str(primer), backing_chords="D A7", steps_per_chord=8)
    args.num_steps = None
    model = load(models["basic_improv"])
    job = gen.MelodyJob(model, args, gen.build_primer(args, "improv", 0.125), improv=True)
    assert job.amount % 12 == 10  # D -> C
    down = [transpose_chord_symbol(c, job.amount) for c in ["D"] * 8 + ["A7"] * 8]
    assert down[0] == "C" and down[8] == "G7"
    assert job.start.controls == down
    assert [job.start.control_after(i) for i in range(16)] == down[1:] + [down[-1]]


def test_primer_longer_than_the_chords_is_an_error(models, tmp_path, capsys):
    code = main(["generate", "--model", models["basic_improv"], "--output-dir", str(tmp_path),
                 "--backing-chords", "C", "--steps-per-chord", "4", "--primer-melody", "[60, -2, -2, -2, 62]"])
    assert code == 1
    assert "chord" in capsys.readouterr().err


# --------------------------------------------------------------------------- polyphony


def test_polyphony_injects_the_primer_after_itself_by_default(models, tmp_path):
    (f,) = run_cli(models["polyphony"], tmp_path, "--primer-pitches", "[60, 64, 67]", "--num-steps", "32", "--seed", "2")
    notes = steps_of(read_ns(f), 8)
    # The primer (a quarter note: 4 steps), then generation from step 5 with the chord forced in.
    assert [n for n in notes if n[0] == 0] == [(0, 4, 60), (0, 4, 64), (0, 4, 67)]
    for pitch in (60, 64, 67):
        assert any(start == 5 and end >= 9 and p == pitch for start, end, p in notes), pitch
    assert max(end for _, end, _ in notes) <= 32


def test_polyphony_without_injection_or_with_conditioning(models, tmp_path):
    model = load(models["polyphony"])
    plain = gen.PolyJob(model, make_args(primer_pitches="[60, 64, 67]", num_steps=32, no_inject_primer_during_generation=True),
                         gen.build_primer(make_args(primer_pitches="[60, 64, 67]"), "polyphony", 0.125))
    assert len(plain.start.stream) == 1, "not conditioned: only START is fed"
    assert plain.start.inject == [] and plain.start.total_steps == 32 - 5
    cond = gen.PolyJob(model, make_args(primer_pitches="[60, 64, 67]", num_steps=32, condition_on_primer=True),
                        gen.build_primer(make_args(primer_pitches="[60, 64, 67]"), "polyphony", 0.125))
    # START, 4 steps of the chord (3 notes + STEP_END each), an empty step, then step 0 injected.
    assert len(cond.start.stream) == 1 + 4 * 4 + 1 + 3
    assert cond.start.steps == 5 and cond.start.total_steps == 32

    out = tmp_path / "cond"
    (f,) = run_cli(models["polyphony"], out, "--primer-pitches", "[60, 64, 67]", "--num-steps", "32",
                   "--condition-on-primer", "--seed", "2")
    notes = steps_of(read_ns(f), 8)
    assert [n for n in notes if n[0] == 0] == [(0, 4, 60), (0, 4, 64), (0, 4, 67)]
    assert {p for s, _, p in notes if s == 5} >= {60, 64, 67}
    out = tmp_path / "noinject"
    (f,) = run_cli(models["polyphony"], out, "--primer-melody", "[60, -2, 62, -2]", "--num-steps", "32",
                   "--no-inject-primer-during-generation", "--seed", "2")
    notes = steps_of(read_ns(f), 8)
    assert notes[:2] == [(0, 2, 60), (2, 4, 62)]
    assert max(end for _, end, _ in notes) <= 32


def test_polyphony_counts_steps_not_events(models):
    model = load(models["polyphony"])
    args = make_args(num_steps=40, seed=0)
    args.num_outputs = 1
    job = gen.PolyJob(model, args, gen.build_primer(args, "polyphony", 0.125))
    cand = gen.generate_from(job.start, np.random.default_rng(0), args)
    from live.models.encodings.polyphony import STEP_END

    # No primer: generation starts at step 1 (Magenta's quantization of time 0 with cutoff 0).
    assert sum(e.kind == STEP_END for e in cand.stream.events) == 39
    assert cand.stream.events[-1].kind == STEP_END


# --------------------------------------------------------------------------- drums


def test_drums_are_written_on_channel_10(models, tmp_path):
    (f,) = run_cli(models["drum_kit"], tmp_path, "--num-steps", "32", "--seed", "4")
    ns = read_ns(f)
    assert all(n.is_drum for n in ns.notes)
    notes = steps_of(ns, 8)
    assert notes[0] == (0, 1, 36), "default primer: one bass drum hit"
    assert max(end for _, end, _ in notes) <= 32
    channels = {m.channel for track in mido.MidiFile(f).tracks for m in track if m.type in ("note_on", "note_off")}
    assert channels == {9}


def test_drum_primer_is_kept(models, tmp_path):
    (f,) = run_cli(models["drum_kit"], tmp_path, "--primer-drums", "[(36, 42), (), (42,)]", "--num-steps", "24", "--seed", "1")
    notes = steps_of(read_ns(f), 8)
    assert notes[:3] == [(0, 1, 36), (0, 1, 42), (2, 3, 42)]
    assert all(start >= 5 for start, _, _ in notes[3:])


# --------------------------------------------------------------------------- performance


@pytest.mark.parametrize("config_id", ["performance", "performance_with_dynamics"])
def test_performance_lasts_num_steps_times_10_ms(models, tmp_path, config_id):
    model = load(models[config_id])
    args = make_args(num_steps=400, primer_pitches="[60, 64, 67]")
    job = gen.PerfJob(model, args, gen.build_primer(args, "performance", 0.125))
    cand = gen.generate_from(job.start, np.random.default_rng(0), args)
    events = list(cand.stream.events)
    gen.set_performance_length(events, job.total, job.max_shift)
    assert sum(e.value for e in events if e.kind == TIME_SHIFT) == 400

    (f,) = run_cli(models[config_id], tmp_path, "--num-steps", "400", "--primer-pitches", "[60, 64, 67]", "--seed", "0")
    ns = read_ns(f)
    assert max(n.end_time for n in ns.notes) <= 4.0 + 0.003
    assert steps_of(ns, 100)[:3] == [(0, 50, 60), (0, 50, 64), (0, 50, 67)]
    if config_id == "performance_with_dynamics":
        assert {n.velocity for n in ns.notes} <= {1 + 4 * b for b in range(32)}, "velocities come from 32 bins"
    else:
        assert {n.velocity for n in ns.notes} == {100}


def test_conditioned_performance_takes_constant_controls(models):
    def job(config_id: str, **flags) -> gen.PerfJob:
        args = make_args(num_steps=300, **flags)
        return gen.PerfJob(load(models[config_id]), args, gen.build_primer(args, "performance", 0.125))

    histogram = [2, 0, 1, 0, 1, 1, 0, 2, 0, 1, 0, 1]
    assert job("density_conditioned_performance_with_dynamics", notes_per_second=4).start.control_at(10) == (4.0,)
    assert job("pitch_conditioned_performance_with_dynamics", pitch_class_histogram=str(histogram)).start.control_at(0) == (
        [float(x) for x in histogram],
    )
    multi = job("multiconditioned_performance_with_dynamics", notes_per_second="[2, 8]")
    assert multi.start.control_at(0) == (2.0, [1.0] * 12) and multi.start.control_at(299) == (8.0, [1.0] * 12)
    optional = "optional_multiconditioned_performance_with_dynamics"
    assert job(optional).start.control_at(0)[0] is True, "no controls given: conditioning disabled"
    assert job(optional, notes_per_second=4).start.control_at(0) == (False, (4.0, [1.0] * 12))
    assert job(optional, notes_per_second=4, disable_conditioning="True").start.control_at(0)[0] is True


def test_controls_change_the_output(models, tmp_path):
    model = models["multiconditioned_performance_with_dynamics"]
    (a,) = run_cli(model, tmp_path / "a", "--num-steps", "300", "--seed", "9", "--notes-per-second", "1")
    (b,) = run_cli(model, tmp_path / "b", "--num-steps", "300", "--seed", "9", "--notes-per-second", "40",
                   "--pitch-class-histogram", "[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]")
    assert a.read_bytes() != b.read_bytes()


# --------------------------------------------------------------------------- determinism, sampling


@pytest.mark.parametrize("name", ["attention", "polyphony", "drum_kit", "optional_multiconditioned_performance_with_dynamics"])
def test_the_same_seed_gives_the_same_bytes(models, tmp_path, name):
    steps = "600" if "performance" in name else "32"
    a = run_cli(models[name], tmp_path / "a", "--num-steps", steps, "--seed", "11", outputs=2)
    b = run_cli(models[name], tmp_path / "b", "--num-steps", steps, "--seed", "11", outputs=2)
    c = run_cli(models[name], tmp_path / "c", "--num-steps", steps, "--seed", "12", outputs=2)
    assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b]
    assert [f.read_bytes() for f in a] != [f.read_bytes() for f in c]
    assert a[0].read_bytes() != a[1].read_bytes(), "outputs of one run differ"


def test_temperature_zero_is_deterministic_without_a_seed(models, tmp_path):
    a = run_cli(models["lookback"], tmp_path / "a", "--num-steps", "48", "--temperature", "0", outputs=2)
    b = run_cli(models["lookback"], tmp_path / "b", "--num-steps", "48", "--temperature", "0", outputs=1)
    assert a[0].read_bytes() == a[1].read_bytes() == b[0].read_bytes()


@pytest.mark.parametrize(
    "name, steps, family",
    [("attention", 40, "melody"), ("basic_improv", None, "improv"), ("polyphony", 20, "polyphony"), ("drum_kit", 24, "drums"),
     ("performance_with_dynamics", 150, "performance")],
)
def test_beam_search_runs_and_gives_the_right_length(models, name, steps, family):
    flags = dict(beam_size=3, branch_factor=2, steps_per_iteration=4)
    if steps:
        flags["num_steps"] = steps
    else:
        flags["backing_chords"] = "C G"
    args = make_args(**flags)
    model = load(models[name])
    primer = gen.build_primer(args, family, 0.125)
    job = {
        "melody": lambda: gen.MelodyJob(model, args, primer, False),
        "improv": lambda: gen.MelodyJob(model, args, primer, True),
        "polyphony": lambda: gen.PolyJob(model, args, primer),
        "drums": lambda: gen.DrumsJob(model, args, primer),
        "performance": lambda: gen.PerfJob(model, args, primer),
    }[family]()
    best = gen.generate_from(job.start, np.random.default_rng(0), args)
    events = best.stream.events
    if family in ("melody", "drums"):
        assert len(events) == steps
    elif family == "improv":
        assert len(events) == 32
    elif family == "polyphony":
        assert best.steps == steps - 1  # no primer: generation starts at step 1
    else:
        assert job.total == steps - 1  # no primer: generation starts at step 1
        assert job.total <= best.time_steps < job.total + 100, "stops at the time shift that reaches the end"
    assert len(job.start.stream) < len(events), "the primed start is left alone"


def test_beam_search_finds_likelier_sequences_than_sampling(models):
    model = load(models["attention"])
    plain_args = make_args(num_steps=48)
    beam_args = make_args(num_steps=48, beam_size=4, branch_factor=2, steps_per_iteration=2)
    job = gen.MelodyJob(model, plain_args, gen.build_primer(plain_args, "melody", 0.125), False)
    plain = [gen.generate_from(job.start, np.random.default_rng(s), plain_args).stream.log_likelihood for s in range(6)]
    beam = [gen.generate_from(job.start, np.random.default_rng(s), beam_args).stream.log_likelihood for s in range(6)]
    assert np.mean(beam) > np.mean(plain) + 5.0


def test_beam_search_through_the_cli(models, tmp_path):
    (f,) = run_cli(models["attention"], tmp_path, "--num-steps", "40", "--beam-size", "2", "--branch-factor", "3",
                   "--steps-per-iteration", "5", "--seed", "1")
    assert max(end for _, end, _ in steps_of(read_ns(f), 8)) <= 40


@pytest.mark.parametrize("config_id, stuck_class", [("polyphony", 3 + 60), ("performance_with_dynamics", 60)])
def test_a_model_that_never_advances_time_stops_with_a_warning(tmp_path, caplog, config_id, stuck_class):
    """Argmax on a model that always answers NEW_NOTE / NOTE_ON 60 would never end a step."""
    model = random_model(config_id, layers=(8,))
    model.weights["output/bias"][stuck_class] = 1e3
    path = tmp_path / "stuck.npz"
    save(Model(model.config, model.weights), path)
    steps = "16" if config_id == "polyphony" else "100"
    with caplog.at_level("WARNING"):
        (f,) = run_cli(str(path), tmp_path / "out", "--num-steps", steps, "--temperature", "0", "--primer-pitches", "[64]")
    assert "without reaching the requested length" in caplog.text
    ns = read_ns(f)
    limit = 16 / 8 if config_id == "polyphony" else 1.0
    assert ns.notes and max(n.end_time for n in ns.notes) <= limit + 0.003


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "model, flags, message",
    [
        ("basic_rnn", ["--primer-melody", "[60,"], "--primer-melody"),
        ("basic_rnn", ["--primer-melody", "[60, 128]"], "128"),
        ("basic_rnn", ["--primer-melody", "[60, -3]"], "-3"),
        ("basic_rnn", ["--primer-drums", "[(36,)]"], "--primer-drums"),
        ("basic_rnn", ["--backing-chords", "C G"], "--backing-chords"),
        ("basic_rnn", ["--primer-melody", "[60]", "--primer-midi", "x.mid"], "one primer"),
        ("basic_rnn", ["--temperature", "-1"], "--temperature"),
        ("basic_rnn", ["--num-outputs", "0"], "--num-outputs"),
        ("basic_rnn", ["--num-outputs", "1e9"], "--num-outputs"),  # no billion file names built first
        ("basic_rnn", ["--beam-size", "100000"], "--beam-size"),
        ("basic_rnn", ["--qpm", "nan"], "--qpm"),
        ("basic_rnn", ["--num-steps", "1e12"], "--num-steps"),
        ("basic_rnn", ["--num-steps", "2"], "--num-steps"),
        ("basic_rnn", ["--primer-midi", "missing.mid"], "missing.mid"),
        ("basic_improv", ["--backing-chords", "C H7 G"], "H7"),
        ("basic_improv", ["--backing-chords", "C Csus4"], "Csus4"),
        ("polyphony", ["--primer-pitches", "[60, 300]"], "300"),
        ("polyphony", ["--render-chords"], "--render-chords"),
        ("drum_kit", ["--primer-drums", "[(36,), 'x']"], "--primer-drums"),
        ("multiconditioned_performance_with_dynamics", ["--pitch-class-histogram", "[1, 2]"], "--pitch-class-histogram"),
        ("multiconditioned_performance_with_dynamics", ["--notes-per-second", "-2"], "--notes-per-second"),
        ("performance", ["--num-steps", "40", "--primer-pitches", "[60]"], "--num-steps"),
    ],
)
def test_bad_flags_give_a_clear_error(models, tmp_path, capsys, model, flags, message):
    code = main(["generate", "--model", models[model], "--output-dir", str(tmp_path), "--num-outputs", "1", *flags])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("magenta-live") and message in err and err.count("\n") == 1
    assert "Traceback" not in err
    assert not list(tmp_path.glob("*.mid"))


def test_an_output_dir_that_is_a_file_is_refused_before_any_work(models, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    assert main(["generate", "--model", models["basic_rnn"], "--output-dir", str(taken), "--num-outputs", "1"]) == 1
    assert "--output-dir" in capsys.readouterr().err and taken.read_text() == "a file"


def test_a_file_that_is_not_midi_is_a_clear_error(models, tmp_path, capsys):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file at all")
    code = main(["generate", "--model", models["basic_rnn"], "--output-dir", str(tmp_path), "--primer-midi", str(bad)])
    assert code == 1 and "not a readable MIDI file" in capsys.readouterr().err


def test_a_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main(["generate", "--model", str(tmp_path / "none.npz"), "--output-dir", str(tmp_path)]) == 1
    assert "no model" in capsys.readouterr().err


# --------------------------------------------------------------------------- helpers vs note-seq


def test_write_midi_reads_back_in_note_seq(tmp_path):
    rng = np.random.default_rng(0)
    notes = []
    for instrument, program in enumerate((5, 40, 73)):
        for pitch in rng.choice(128, size=20, replace=False):  # one note per pitch: no ambiguity
            start = float(rng.uniform(0, 10))
            end = start + float(rng.uniform(0.05, 2))
            notes.append(Note(int(pitch), start, end, int(rng.integers(1, 128)), instrument, program))
    notes += [Note(36, 0.5, 0.6, 90, 9, 0, True), Note(42, 0.5, 0.6, 70, 9, 0, True)]
    path = tmp_path / "w.mid"
    write_midi(path, notes, qpm=97.0)
    ns = note_seq.midi_file_to_note_sequence(str(path))
    assert ns.tempos[0].qpm == pytest.approx(97.0, abs=1e-3)
    tick = 60.0 / 97.0 / 220
    got = sorted(
        (n.program, n.is_drum, n.pitch, n.velocity, round(n.start_time / tick), round(n.end_time / tick)) for n in ns.notes
    )
    want = sorted((n.program, n.is_drum, n.pitch, n.velocity, round(n.start / tick), round(n.end / tick)) for n in notes)
    assert got == want
    again = tmp_path / "again.mid"
    write_midi(again, list(reversed(notes)), qpm=97.0)
    assert again.read_bytes() == path.read_bytes(), "the same notes give the same bytes, in any order"


def test_read_midi_agrees_with_note_seq_on_a_chorale(tmp_path):
    seq = bach_chorales(2)[1]
    path = tmp_path / "c.mid"
    note_seq.sequence_proto_to_midi_file(seq, str(path))
    ref = note_seq.midi_file_to_note_sequence(str(path))
    data = read_midi(path)
    assert data.qpm == pytest.approx(ref.tempos[0].qpm)
    assert data.total_time == pytest.approx(ref.total_time)
    want = sorted((n.pitch, round(n.start_time, 6), round(n.end_time, 6), n.velocity, n.program) for n in ref.notes)
    got = sorted((n.pitch, round(n.start, 6), round(n.end, 6), n.velocity, n.program) for n in data.notes)
    assert got == want


def test_read_midi_follows_tempo_changes_like_note_seq(tmp_path):
    """A type-0 file with a tempo change, running status notes (note-on velocity 0) and unison notes."""
    mid = mido.MidiFile(type=0, ticks_per_beat=96)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0))
    track.append(mido.Message("program_change", program=19, time=0))
    track.append(mido.Message("note_on", note=60, velocity=90, time=0))
    track.append(mido.Message("note_on", note=60, velocity=70, time=48))
    track.append(mido.Message("note_on", note=60, velocity=0, time=48))  # ends both
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(150), time=96))
    track.append(mido.Message("note_on", note=64, velocity=80, time=0))
    track.append(mido.Message("note_off", note=64, velocity=0, time=200))
    track.append(mido.Message("note_on", note=67, velocity=80, time=10))  # never released
    mid.tracks.append(track)
    path = tmp_path / "t.mid"
    mid.save(path)
    ref = note_seq.midi_file_to_note_sequence(str(path))
    data = read_midi(path)
    assert data.qpm == pytest.approx(100) and data.time_signature == (3, 4)
    want = sorted((n.pitch, round(n.start_time, 6), round(n.end_time, 6), n.velocity, n.program) for n in ref.notes)
    got = sorted((n.pitch, round(n.start, 6), round(n.end, 6), n.velocity, n.program) for n in data.notes)
    assert got == want and len(got) == 3


def _ns(notes: list[Note], qpm: float) -> music_pb2.NoteSequence:
    ns = music_pb2.NoteSequence()
    ns.tempos.add(qpm=qpm)
    ns.ticks_per_quarter = 220
    for n in notes:
        ns.notes.add(pitch=n.pitch, start_time=n.start, end_time=n.end, velocity=n.velocity, instrument=n.instrument,
                     is_drum=n.is_drum)
    ns.total_time = max((n.end for n in notes), default=0.0)
    return ns


def _quantized_ns(notes: list[Note], qpm: float, spq: int) -> music_pb2.NoteSequence:
    return note_seq.quantize_note_sequence(_ns(notes, qpm), spq)


def _rounded(rows) -> list[tuple]:
    return [tuple(round(x, 6) if isinstance(x, float) else x for x in row) for row in rows]


def _random_notes(rng: np.random.Generator, count: int, spacing: float = 0.3) -> list[Note]:
    notes, t = [], 0.0
    for _ in range(count):
        t += float(rng.choice([0.0, spacing, 2 * spacing, 0.07]))
        notes.append(Note(int(rng.integers(40, 90)), t, t + float(rng.uniform(0.05, 1.5)), int(rng.integers(1, 128))))
    return notes


def test_melody_extraction_and_rendering_match_note_seq():
    rng = np.random.default_rng(1)
    cases = [_random_notes(rng, 30) for _ in range(20)]
    for seq in bach_chorales(4):
        voice = chorale_voice(seq, 0)
        cases.append([Note(n.pitch, n.start_time, n.end_time, n.velocity or 1) for n in voice.notes])
    for notes in cases:
        q = _quantized_ns(notes, 120.0, 4)
        ref = note_seq.Melody()
        ref.from_quantized_sequence(q, gap_bars=float("inf"), ignore_polyphonic_notes=True)
        events, start = gen.extract_melody(gen.quantize(notes, 8.0), 16)
        assert events == list(ref) and start == ref.start_step
        for length in (len(events) + 3, len(events) - 2):
            ref_copy = note_seq.Melody(list(ref))
            ref_copy.set_length(length)
            mine = list(events)
            gen.set_melody_length(mine, length)
            assert mine == list(ref_copy)
        ref_ns = ref.to_sequence(qpm=120.0)
        mine_notes = gen.melody_to_notes(events, 0.125, start)
        assert _rounded((n.pitch, n.start, n.end) for n in mine_notes) == _rounded(
            (n.pitch, n.start_time, n.end_time) for n in ref_ns.notes
        )


def test_drum_extraction_and_rendering_match_note_seq():
    rng = np.random.default_rng(2)
    for _ in range(20):
        notes = [Note(int(rng.choice([36, 38, 42, 46, 49])), t, t + 0.1, 100, 9, 0, True)
                 for t in np.round(rng.uniform(0.5, 8, 25) * 8) / 8]
        q = _quantized_ns(notes, 120.0, 4)
        ref = note_seq.DrumTrack()
        ref.from_quantized_sequence(q, gap_bars=float("inf"))
        events, start = gen.extract_drums(gen.quantize(notes, 8.0), 16)
        assert events == list(ref) and start == ref.start_step
        ref_ns = ref.to_sequence(qpm=120.0)
        mine = gen.drums_to_notes(events, 0.125, start)
        assert sorted(_rounded((n.pitch, n.start, n.end) for n in mine)) == sorted(
            _rounded((n.pitch, n.start_time, n.end_time) for n in ref_ns.notes)
        )


def _perf_events(ref) -> list[PerfEvent]:
    return [PerfEvent(e.event_type, e.event_value) for e in ref]


@pytest.mark.parametrize("bins", [0, 32])
def test_performance_conversions_match_note_seq(bins):
    rng = np.random.default_rng(3)
    cases = [_random_notes(rng, 40, spacing=0.013) for _ in range(10)] + [_random_notes(rng, 10, spacing=1.7)]
    seq = bach_chorales(1)[0]
    cases.append([Note(n.pitch, n.start_time, n.end_time, n.velocity or 1) for n in seq.notes])
    for notes in cases:
        absolute = sequences_lib.quantize_note_sequence_absolute(_ns(notes, 120.0), 100)
        ref = note_seq.Performance(absolute, num_velocity_bins=bins)
        events = gen.notes_to_performance(gen.quantize(notes, 100), bins, 100)
        assert events == _perf_events(ref)
        for length in (ref.num_steps + 250, ref.num_steps - 37, ref.num_steps):
            ref_copy = note_seq.Performance(absolute, num_velocity_bins=bins)
            ref_copy.set_length(length)
            mine = list(events)
            gen.set_performance_length(mine, length, 100)
            assert mine == _perf_events(ref_copy)
            ref_ns = ref_copy.to_sequence(max_note_duration=5.0)
            got = gen.performance_to_notes(mine, bins)
            assert sorted(_rounded((n.pitch, n.start, n.end, n.velocity) for n in got)) == sorted(
                _rounded((n.pitch, n.start_time, n.end_time, n.velocity) for n in ref_ns.notes)
            )


def test_generation_start_steps_follow_note_seq_quantization():
    """Magenta starts generating at quantize_to_step(last end + 1 step, cutoff 0) (melody) and
    quantize_to_step(total time, cutoff 0) (polyphony, performance)."""
    for steps in range(0, 40):
        seconds = steps * 0.125
        assert gen.step_after(seconds, 8.0) == sequences_lib.quantize_to_step(seconds, 8.0, quantize_cutoff=0.0)
        mag = sequences_lib.quantize_to_step(seconds + 0.125, 8.0, quantize_cutoff=0.0)
        assert int(np.floor(seconds * 8 + 1e-6)) + 2 == mag
    for hundredths in (0, 50, 123, 999):
        assert gen.step_after(hundredths / 100, 100) == hundredths + 1


def test_performance_primer_melody_is_read_at_120_qpm():
    args = make_args(primer_melody="[60, -2, 62]", qpm=60)
    primer = gen.build_primer(args, "performance", 0.25)
    assert [(n.pitch, n.start, n.end) for n in primer.notes] == [(60, 0.0, 0.25), (62, 0.25, 0.375)]
    poly = gen.build_primer(args, "polyphony", 0.25)
    assert [(n.pitch, n.start, n.end) for n in poly.notes] == [(60, 0.0, 0.5), (62, 0.5, 0.75)]


@pytest.mark.parametrize("name, flags", [
    ("melody", {"primer_melody": "[60, -2, 62, -2, 64]", "num_steps": 48}),
    ("drums", {"primer_drums": "[(36, 42), (), (42,), ()]", "num_steps": 32}),
    ("polyphony", {"primer_pitches": "[60, 64, 67]", "num_steps": 32}),
])
def test_the_library_function_gives_what_the_command_writes(tmp_path, name, flags):
    options = gen.GenerateOptions(model=name, seed=5, num_outputs=2, **flags)
    pieces = gen.generate(load(name), options)
    library = [next(pieces) for _ in range(2)]
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in flags.items()]
    files = run_cli(name, tmp_path, "--seed", "5", *argv, outputs=2)
    for (notes, qpm), path in zip(library, files):
        written = read_midi(path)
        assert notes
        assert sorted((round(n.start, 3), n.pitch) for n in written.notes) == sorted((round(n.start, 3), n.pitch) for n in notes)
        assert written.qpm == qpm


def test_bad_options_are_refused_before_the_first_piece():
    with pytest.raises(ValueError, match="--beam-size must be at least 1"):
        gen.generate(load("melody"), gen.GenerateOptions(model="melody", beam_size=0))
