"""Musical quality of the answers: do they stay in the player's key, how busy and how high are they.

    .venv/bin/python -m benchmarks.musical_quality            # prints the section
    .venv/bin/python -m benchmarks.musical_quality --quick    # fewer keys and seeds
    .venv/bin/python -m benchmarks.musical_quality --update benchmarks/RESULTS.md   # replace this section only

``python -m benchmarks.run`` runs it too (``--no-quality`` skips it).

A call is a two-bar phrase played into a call-and-response agent (the same ``Session`` the
daemon and offline mode run, on a simulated clock); the answer is what the agent plays after
it. The calls are written here (four phrases, two major and two natural minor, in steps of the
scale), so no model trained on them; each of the 24 major and minor keys gets 4 seeds, the
seed picking the phrase of the key's mode and the agent's random generator. Measured per model:

- in-scale ratio: the share of the answer's notes whose pitch class is in the call's key
  (major, or natural minor), worst key and all keys together (a random pitch: 7/12 = 0.58);
- notes per bar of the answer against the call's (density 0.5, the model left alone);
- the answer's range, and how far its median pitch lies from the call's (semitones);
- the same with ``--key C`` (no transposition: the daemon before it followed the key) and
  with ``--scale-lock 1``.

Improv: the improv agent plays 4 bars over I-vi-IV-V in each major key (and i-VI-iv-v in
each minor one); the in-scale ratio counts its melody notes in the key or the chord of the
moment.

Harmonize: the calls, played twice in a row, under which the bundled polyphony model adds
voices; per melody onset, the share of the voices sent with it that are consonant with the
melody note (unison, thirds, fourth, fifth, sixths, octaves), the voices per onset, and their
share in the key.

Drums: the bundled drums model alone for 8 bars, per seed: hits per bar, the share of bass-drum
hits on a beat, and the share of snare hits on the backbeat (beats 2 and 4).
"""

from __future__ import annotations

import functools
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import mido

from benchmarks import section_main
from live.engine.agent import AgentSpec, Out, Params
from live.engine.key import KEYS, Key
from live.engine.session import Session
from live.models.encodings.chords import parse_chord, transpose_chord_symbol
from live.models.model import Model

HEADING = "## Musical quality: answers in the player's key"
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "magenta_bundles"
FIXTURE_MELODY = ("attention_rnn_64x2.mag", "lookback_rnn_256x2.mag")

TICKS_PER_EIGHTH = 12
TICKS_PER_BAR = 96
# (semitones above the tonic, length in eighths): two bars each
MAJOR_CALLS = (
    ((0, 1), (2, 1), (4, 1), (5, 1), (7, 2), (4, 2), (5, 1), (4, 1), (2, 1), (-1, 1), (0, 4)),
    ((7, 2), (9, 1), (7, 1), (5, 2), (4, 2), (2, 1), (4, 1), (5, 1), (2, 1), (0, 4)),
)
MINOR_CALLS = (
    ((0, 1), (3, 1), (7, 1), (3, 1), (2, 2), (-2, 2), (0, 1), (2, 1), (3, 1), (5, 1), (7, 4)),
    ((7, 2), (8, 1), (7, 1), (5, 1), (3, 1), (2, 2), (3, 1), (5, 1), (3, 1), (2, 1), (0, 4)),
)
MAJOR_PROGRESSION = ("C", "Am", "F", "G")
MINOR_PROGRESSION = ("Am", "F", "Dm", "Em")  # as in A minor; moved to each key
SEEDS = 4


class _Collect:
    """A sink that keeps the note-ons (tick, pitch) each agent plays."""

    def __init__(self) -> None:
        self.notes: list[tuple[int, int]] = []

    def play(self, agent: object, out: Out) -> None:
        if out.msg.type == "note_on" and out.msg.velocity:
            self.notes.append((out.tick, out.msg.note))

    def cancel(self, agent: object, tick: int) -> None:
        pass


def call_notes(key: Key, phrase: int) -> list[tuple[int, int, int]]:
    """The call: (start tick, end tick, pitch), two bars, tonic in octave 4 (C4..B4)."""
    calls = MINOR_CALLS if key.minor else MAJOR_CALLS
    notes, tick = [], 0
    for semitones, eighths in calls[phrase % len(calls)]:
        length = eighths * TICKS_PER_EIGHTH
        notes.append((tick, tick + length - 1, 60 + key.tonic + semitones))
        tick += length
    return notes


HELDOUT = Path(__file__).resolve().parent / "heldout_calls.json"  # benchmarks/heldout_calls.py writes it


@functools.cache
def heldout_calls() -> tuple[dict, ...]:
    """benchmarks/heldout_calls.json, read once."""
    return tuple(json.loads(HELDOUT.read_text()))


def heldout_notes(key: Key, phrase: int) -> list[tuple[int, int, int]]:
    """A held-out folk tune's opening two bars (benchmarks/heldout_calls.py) of the key's mode,
    moved to ``key`` by at most a tritone either way: (start tick, end tick, pitch)."""
    calls = [c for c in heldout_calls() if c["minor"] == key.minor]
    call = calls[(KEYS.index(key) * SEEDS + phrase) % len(calls)]
    shift = (key.tonic - call["tonic"]) % 12
    shift -= 12 if shift > 6 else 0
    return [(start * TICKS_PER_EIGHTH, (start + length) * TICKS_PER_EIGHTH - 1, pitch + shift)
            for start, length, pitch in call["notes"]]


Calls = Callable[[Key, int], list[tuple[int, int, int]]]


def play(session: Session, notes: list[tuple[int, int, int]], end: int) -> None:
    """Run ``session`` for ticks 0..end-1 with the player playing ``notes`` (start, end tick, pitch)."""
    events = sorted([(s, 1, p) for s, _, p in notes] + [(e, 0, p) for _, e, p in notes])
    i = 0
    for tick in range(end):
        while i < len(events) and events[i][0] <= tick:
            t, on, pitch = events[i]
            session.player(t, mido.Message("note_on" if on else "note_off", note=pitch, velocity=90 if on else 0))
            i += 1
        session.tick(tick)


@dataclass
class Answer:
    """One answer: its pitches and its length in bars."""

    pitches: list[int]
    bars: float
    found: Key | None = None  # the key the agent heard in the call (and answered in)


def answer_to(model: Model, key: Key, seed: int, fixed: Key | None, params: Params, calls: Calls = call_notes,
              mode: str = "call-response") -> Answer:
    """Play a call in ``key`` (from ``calls``) into an agent of ``mode`` and return its answer."""
    sink = _Collect()
    spec = AgentSpec(name="a", mode=mode, key=fixed, params=replace(params), response_quantize="bar")
    session = Session([spec], sink, seed=seed, models={0: model})
    call = calls(key, seed)
    play(session, call, 6 * TICKS_PER_BAR)
    agent = session.agents[0]
    response_bars = (agent.call.answer_end - agent.call.answer_start) * agent.step_ticks / TICKS_PER_BAR if agent.call.answers else 0.0
    return Answer([p for t, p in sink.notes if t >= call[-1][1]], response_bars, agent.key)


def improv_notes(model: Model, key: Key, seed: int, params: Params) -> tuple[list[int], list[frozenset[int]]]:
    """The improv agent over four bars of the key's progression: its pitches, and for each the
    pitch classes of the chord it sounded over."""
    base = MINOR_PROGRESSION if key.minor else MAJOR_PROGRESSION
    shift = (key.tonic - (9 if key.minor else 0)) % 12
    chords = [transpose_chord_symbol(c, shift) for c in base]
    sink = _Collect()
    spec = AgentSpec(name="a", mode="improv", backing_chords=chords, steps_per_chord=16, params=replace(params))
    session = Session([spec], sink, seed=seed, models={0: model})
    for tick in range(4 * TICKS_PER_BAR):
        session.tick(tick)
    tones = [frozenset(parse_chord(chords[(t // TICKS_PER_BAR) % 4]).pitches) for t, _ in sink.notes]
    return [p for _, p in sink.notes], tones


@dataclass
class Row:
    name: str
    worst: float
    overall: float
    worst_key: str
    answer_per_bar: float
    call_per_bar: float
    low: int
    high: int
    median_gap: float
    in_found: float = 0.0  # the share of the answers' notes in the key the agent found


def measure(name: str, model: Model, keys: tuple[Key, ...], seeds: int, fixed: Key | None, params: Params,
            calls: Calls = call_notes, mode: str = "call-response") -> Row:
    per_key: dict[str, tuple[int, int]] = {}
    per_bar, gaps, pitches = [], [], []
    call_per_bar = []
    in_found = 0
    for key in keys:
        inside = total = 0
        for seed in range(seeds):
            answer = answer_to(model, key, seed, fixed, params, calls, mode)
            call = [p for _, _, p in calls(key, seed)]
            call_per_bar.append(len(call) / 2.0)
            inside += sum(1 for p in answer.pitches if p % 12 in key.scale)
            in_found += sum(1 for p in answer.pitches if p % 12 in (answer.found or key).scale)
            total += len(answer.pitches)
            if answer.bars:
                per_bar.append(len(answer.pitches) / answer.bars)
            if answer.pitches:
                gaps.append(statistics.median(answer.pitches) - statistics.median(call))
            pitches += answer.pitches
        per_key[key.name] = (inside, total)
    ratios = {k: i / t if t else 0.0 for k, (i, t) in per_key.items()}
    worst_key = min(ratios, key=ratios.get)
    inside = sum(i for i, _ in per_key.values())
    total = sum(t for _, t in per_key.values())
    return Row(
        name, ratios[worst_key], inside / max(total, 1), worst_key,
        statistics.mean(per_bar) if per_bar else 0.0, statistics.mean(call_per_bar),
        min(pitches, default=0), max(pitches, default=0), statistics.median(gaps) if gaps else 0.0,
        in_found / max(total, 1),
    )


def measure_improv(model: Model, keys: tuple[Key, ...], seeds: int, params: Params) -> tuple[float, float, str, float, float]:
    """(worst key's ratio in key or chord, overall, worst key, notes per bar, share of chord tones)."""
    ratios, inside_all, total_all, chord_all = {}, 0, 0, 0
    for key in keys:
        inside = total = 0
        for seed in range(seeds):
            pitches, tones = improv_notes(model, key, seed, params)
            inside += sum(1 for p, t in zip(pitches, tones) if p % 12 in key.scale or p % 12 in t)
            chord_all += sum(1 for p, t in zip(pitches, tones) if p % 12 in t)
            total += len(pitches)
        ratios[key.name] = inside / total if total else 0.0
        inside_all += inside
        total_all += total
    worst = min(ratios, key=ratios.get)
    return (ratios[worst], inside_all / max(total_all, 1), worst, total_all / (4.0 * seeds * len(keys)),
            chord_all / max(total_all, 1))


CONSONANT = frozenset({0, 3, 4, 5, 7, 8, 9})  # interval classes below a melody note


def measure_harmonize(model: Model, keys: tuple[Key, ...], seeds: int, params: Params) -> tuple[float, float, float]:
    """(consonant share, voices per onset, in-key share) of the harmony under the calls."""
    consonant = voices = inside = onsets = 0
    for key in keys:
        for seed in range(seeds):
            sink = _Collect()
            spec = AgentSpec(name="a", mode="harmonize", params=replace(params))
            session = Session([spec], sink, seed=seed, models={0: model})
            call = call_notes(key, seed)
            call = call + [(s + 2 * TICKS_PER_BAR, e + 2 * TICKS_PER_BAR, p) for s, e, p in call]
            play(session, call, 5 * TICKS_PER_BAR)
            melody = {s: p for s, _, p in call}
            for tick, pitch in sink.notes:
                if tick in melody:
                    voices += 1
                    consonant += (melody[tick] - pitch) % 12 in CONSONANT
                    inside += pitch % 12 in key.scale
            onsets += len(melody)
    return consonant / max(voices, 1), voices / max(onsets, 1), inside / max(voices, 1)


KICKS, SNARES = frozenset({35, 36}), frozenset({38, 40})


def measure_drums(model: Model, seeds: int, bars: int = 8) -> tuple[float, float, float]:
    """(hits per bar, bass drum on a beat, snare on the backbeat) of the drums agent alone."""
    hits = kicks = kicks_on = snares = snares_on = 0
    for seed in range(seeds):
        sink = _Collect()
        session = Session([AgentSpec(name="a", mode="drums", output_channel=10)], sink, seed=seed, models={0: model})
        for tick in range(bars * TICKS_PER_BAR):
            session.tick(tick)
        for tick, pitch in sink.notes:
            hits += 1
            if pitch in KICKS:
                kicks += 1
                kicks_on += tick % 24 == 0
            elif pitch in SNARES:
                snares += 1
                snares_on += tick % TICKS_PER_BAR in (24, 72)
    return hits / (bars * seeds), kicks_on / max(kicks, 1), snares_on / max(snares, 1)


def vae_model(log=print):
    """The bundled MusicVAE, or None when it is not installed."""
    from live.models.bundled import BUNDLED_DIR
    from live.models.vae import load_vae

    path = BUNDLED_DIR / "vae.npz"
    if not path.exists():
        log("  vae: not bundled, skipped")
        return None
    return load_vae(path)


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance between two class rows."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def measure_interpolation(vae, pairs: int = 12, steps: int = 5, temperature: float = 0.5) -> tuple[float, float, float, float]:
    """Held-out tune openings in pairs (the second moved to the first's key), morphed in
    ``steps`` phrases: (share of notes in the key, mean edit distance between neighbouring
    phrases per step, the same between the two ends, first phrase's agreement with its tune)."""
    import numpy as np

    from live.models.vae import classes_notes, melody_classes, slerp

    calls = heldout_calls()
    inside = total = 0
    neighbour, ends, agree = [], [], []
    rng = np.random.default_rng(0)
    for i in range(min(pairs, len(calls) // 2)):
        a, b = calls[2 * i], calls[2 * i + 1]
        shift = (a["tonic"] - b["tonic"]) % 12
        shift -= 12 if shift > 6 else 0
        rows = [melody_classes([(2 * s, 2 * (s + n), p + (shift if c is b else 0)) for s, n, p in c["notes"]],
                               vae.config.steps) for c in (a, b)]
        mu, _ = vae.encode(np.stack(rows))
        z = np.stack([slerp(mu[0], mu[1], t) for t in np.linspace(0.0, 1.0, steps)])
        out = vae.decode(z, temperature, rng)
        key = Key(a["tonic"], a["minor"])
        for row in out:
            pitches = [p for _, _, p in classes_notes(row)]
            inside += sum(1 for p in pitches if p % 12 in key.scale)
            total += len(pitches)
        neighbour += [edit_distance(list(out[k]), list(out[k + 1])) / vae.config.steps for k in range(steps - 1)]
        ends.append(edit_distance(list(out[0]), list(out[-1])) / vae.config.steps)
        agree.append(float((out[0] == rows[0]).mean()))
    return inside / max(total, 1), statistics.mean(neighbour), statistics.mean(ends), statistics.mean(agree)


def melody_models(log=print) -> list[tuple[str, Model]]:
    """The bundled melody default and the fixture melody bundles (these only with TensorFlow)."""
    import live.models
    from live.models.bundled import resolve_model

    models = [("melody (bundled)", live.models.load(resolve_model("melody", "call-response")))]
    for name in FIXTURE_MELODY:
        path = FIXTURES / name
        if not path.exists():
            log(f"  {name}: not found in {FIXTURES}, skipped")
            continue
        try:
            models.append((name, live.models.load(path)))
        except ImportError as err:  # .mag needs TensorFlow
            log(f"  {name}: {err}, skipped")
    return models


def run(quick: bool = False, log=print) -> str:
    """The report section (markdown)."""
    import live.models
    from live.models.bundled import resolve_model

    keys = KEYS[::6] if quick else KEYS  # quick: C, F#, Cm, F#m
    seeds = 2 if quick else SEEDS
    import datetime

    lines = [
        HEADING,
        "",
        f"`python -m benchmarks.musical_quality`, {datetime.date.today().isoformat()}: what the bundled models and the fixture",
        "bundles play, on simulated time (no timing is measured here).",
        "",
        f"Calls: two-bar phrases in {len(keys)} keys x {seeds} seeds (`benchmarks/musical_quality.py`); answers of",
        "a call-response agent at density 0.5, temperature 1.0. In-scale: the share of the answer's notes in the",
        "call's key (natural minor for minor keys); a random pitch scores 0.58. Gap: median answer pitch minus",
        "median call pitch (semitones).",
        "",
        "| model | setting | in-scale, worst key | in-scale, all keys | notes/bar answer (call) | range | median gap |",
        "|---|---|---|---|---|---|---|",
    ]
    settings = [
        ("--key auto (default)", None, Params()),
        ("--key C (not transposed)", Key(0), Params()),
        ("--scale-lock 1", None, Params(scale_lock=1.0)),
    ]
    models = melody_models(log)
    vae = vae_model(log)
    vae_settings = [("--mode vary --strays 0.25", None, Params(strays=0.25)), ("--mode vary --strays 1", None, Params(strays=1.0))]
    for name, model, mode, rows in [(n, m, "call-response", settings) for n, m in models] + (
            [("vae (bundled)", vae, "vary", vae_settings)] if vae is not None else []):
        for label, fixed, params in rows:
            log(f"  {name}, {label}")
            r = measure(name, model, keys, seeds, fixed, params, mode=mode)
            lines.append(
                f"| {name} | {label} | {r.worst:.2f} ({r.worst_key}) | {r.overall:.2f} | "
                f"{r.answer_per_bar:.1f} ({r.call_per_bar:.1f}) | {r.low}-{r.high} | {r.median_gap:+.1f} |"
            )
    heldout = heldout_calls()
    lines += [
        "",
        f"The same with real calls: the opening two bars of {len(heldout)} folk tunes the melody model never trained",
        f"on ({sum(not c['minor'] for c in heldout)} major, {sum(c['minor'] for c in heldout)} minor; the melody recipe's "
        "held-out 10%, picked by `benchmarks/heldout_calls.py`",
        "into `benchmarks/heldout_calls.json`), each moved to the key (by at most a tritone), a different tune for",
        "each key and seed. A tune's key is the one its score marks;",
        "from two bars the key finder may hear another (an opening on the dominant), and the answer follows what",
        "it heard: the last column counts the answer's notes in the key the agent found.",
        "",
        "| model | setting | in-scale, worst key | in-scale, all keys | notes/bar answer (call) | range | median gap | in the key it found |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, model, mode, rows in [(n, m, "call-response", settings[:2]) for n, m in models] + (
            [("vae (bundled)", vae, "vary", vae_settings)] if vae is not None else []):
        for label, fixed, params in rows:
            log(f"  {name}, held-out calls, {label}")
            r = measure(name, model, keys, seeds, fixed, params, heldout_notes, mode)
            lines.append(
                f"| {name} | {label} | {r.worst:.2f} ({r.worst_key}) | {r.overall:.2f} | "
                f"{r.answer_per_bar:.1f} ({r.call_per_bar:.1f}) | {r.low}-{r.high} | {r.median_gap:+.1f} | "
                f"{r.in_found:.2f} |"
            )
    improv = live.models.load(resolve_model("improv", "improv"))
    lines += [
        "",
        "Improv (bundled `improv`) over I-vi-IV-V (major keys) or i-VI-iv-v (minor keys), 4 bars: the share of",
        "its notes in the key's scale or the chord of the moment, and the share that are the chord's own tones.",
        "",
        "| setting | in key or chord, worst key | all keys | chord tones | notes/bar |",
        "|---|---|---|---|---|",
    ]
    for label, params in (("--key auto", Params()), ("--scale-lock 1", Params(scale_lock=1.0))):
        log(f"  improv, {label}")
        worst, overall, worst_key, per_bar, chord_tones = measure_improv(improv, keys, seeds, params)
        lines.append(f"| {label} | {worst:.2f} ({worst_key}) | {overall:.2f} | {chord_tones:.2f} | {per_bar:.1f} |")
    lines += ["", "The chorale-only improv model this one replaced (2026-12-06), measured the same way with `--key auto`: "
              "0.93 in key or chord (all keys), 0.55 chord tones, 4.1 notes per bar."]
    poly = live.models.load(resolve_model("polyphony", "harmonize"))
    lines += [
        "",
        "Harmonize (bundled `polyphony`) under the calls, played twice: the voices sent with each melody onset.",
        "",
        "| setting | consonant with the melody note | voices per onset | in the key |",
        "|---|---|---|---|",
    ]
    for label, params in (("free", Params()), ("--scale-lock 1", Params(scale_lock=1.0))):
        log(f"  harmonize, {label}")
        consonant, per_onset, in_key = measure_harmonize(poly, keys, seeds, params)
        lines.append(f"| {label} | {consonant:.2f} | {per_onset:.2f} | {in_key:.2f} |")
    lines += ["", "The same polyphony model at 3,000 training steps (its state before 2026-12-06's second session): free "
              "0.62 consonant, 2.68 voices, 0.64 in the key; with the scale lock 0.70, 2.57, 0.93. A random interval is "
              "consonant 0.58 of the time."]
    if vae is not None:
        log("  vae interpolation")
        in_key, step_edit, end_edit, agree = measure_interpolation(vae)
        lines += [
            "",
            "MusicVAE (bundled `vae`) morphs between pairs of the held-out tune openings (the second moved to the",
            "first's key), 5 phrases at temperature 0.5, as `generate --interpolate` makes them: "
            f"{in_key:.2f} of the notes in the key; neighbouring phrases differ in {step_edit:.2f} of their steps "
            f"(edit distance per step), the two ends in {end_edit:.2f}; the first phrase agrees with its tune on "
            f"{agree:.2f} of the steps.",
        ]
    drums = live.models.load(resolve_model("drums", "drums"))
    log("  drums")
    per_bar, kick_on_beat, snare_backbeat = measure_drums(drums, 4 * seeds)
    lines += [
        "",
        f"Drums (bundled `drums`), 8 bars alone, {4 * seeds} seeds: {per_bar:.1f} hits per bar; "
        f"{kick_on_beat:.2f} of the bass-drum hits on a beat; {snare_backbeat:.2f} of the snare hits on beats 2 and 4.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return section_main(__doc__, HEADING, run, "4 keys, 2 seeds", argv)


if __name__ == "__main__":
    raise SystemExit(main())
