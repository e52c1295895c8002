"""Polyphony RNN encoding against a test-local reference written from Magenta's documented rules.

Magenta (not note-seq) holds this encoding and does not install here, so the reference below
follows the polyphony_rnn README and the layout of Magenta's PolyphonicSequence and
PolyphonyOneHotEncoding, written per step from those rules rather than incrementally:

- a sequence is START, then for every step the notes sounding on it sorted by descending
  pitch (a note struck on the step is NEW_NOTE, one struck earlier is CONTINUED_NOTE; for one
  pitch the CONTINUED_NOTE events come before the NEW_NOTE ones), then STEP_END; then END;
- notes starting before the first step are dropped, notes are cut at the last step;
- decoding: a note sounds on from its NEW_NOTE while each following step has a
  CONTINUED_NOTE of its pitch; the earliest struck notes of a pitch end first;
- one-hot: START 0, END 1, STEP_END 2, NEW_NOTE(p) 3 + p, CONTINUED_NOTE(p) 131 + p.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from live.errors import EncodingError, UnknownConfigError
from live.models.encodings.base import OneHotEventEncoder
from live.models.encodings.polyphony import (
    CONTINUED_NOTE,
    END,
    NEW_NOTE,
    POLY_END,
    POLY_START,
    POLY_STEP_END,
    START,
    STEP_END,
    PolyEvent,
    PolyphonyOneHotEncoding,
    poly_events_to_notes,
    poly_step_events,
    polyphony_encoder,
    sequence_to_poly_events,
)
from tests.corpus import bach_chorales, quantized

NUM_CHORALES = 6


# --- the test-local reference ----------------------------------------------------------------


def ref_events(notes, start_step, end_step):
    """Events as (kind, pitch) pairs, step by step from the documented rules."""
    kept = [n for n in notes if n[1] >= start_step]
    out = [(START, None)]
    for step in range(start_step, end_step):
        on_step = []
        for pitch, start, end in kept:
            if start == step:
                on_step.append((-pitch, 1, (NEW_NOTE, pitch)))
            elif start < step < end:
                on_step.append((-pitch, 0, (CONTINUED_NOTE, pitch)))
        out += [e for _, _, e in sorted(on_step)]
        out.append((STEP_END, None))
    out.append((END, None))
    return out


def ref_notes(events):
    """Notes of a stream ending in END, from the documented decoding rules."""
    body = list(events)
    assert body[-1][0] == END
    steps, current = [], []
    for kind, pitch in body[:-1]:  # START anywhere and END before the last are no-ops
        if kind == STEP_END:
            steps.append(current)
            current = []
        elif kind in (NEW_NOTE, CONTINUED_NOTE):
            current.append((kind, pitch))
    steps.append(current)  # the final END closes the last step
    open_notes = []  # [pitch, start] in the order struck
    notes = []
    for k, step_events in enumerate(steps):
        continued = Counter(p for kind, p in step_events if kind == CONTINUED_NOTE)
        # open notes struck before step k: per pitch, all beyond the continued count end at k
        before = [n for n in open_notes if n[1] < k]
        per_pitch = Counter(n[0] for n in before)
        to_end = {p: max(0, per_pitch[p] - continued[p]) for p in per_pitch}
        for n in before:
            if to_end[n[0]] > 0:
                to_end[n[0]] -= 1
                notes.append((n[0], n[1], k))
                open_notes.remove(n)
        open_notes += [[p, k] for kind, p in step_events if kind == NEW_NOTE]
    assert not open_notes
    return notes


def ref_index(event):
    kind, pitch = event
    return {START: 0, END: 1, STEP_END: 2}.get(kind) if pitch is None else (
        3 + pitch if kind == NEW_NOTE else 3 + 128 + pitch
    )


def has_nested_unison(notes):
    """Whether a note starts inside a longer one of the same pitch and ends before it.

    Decoding ends the earliest struck note of a pitch first, so such pairs come back with
    their ends swapped (the same steps sound, as other notes).
    """
    return any(
        p == q and a < c < b and d < b for p, a, b in notes for q, c, d in notes
    )


def piano_roll(notes, start_step, end_step):
    """Multiset of sounding pitches per step (clipped to the range), from notes."""
    return [
        Counter(p for p, a, b in notes if a <= s < b and a >= start_step)
        for s in range(start_step, end_step)
    ]


# --- real and random material ----------------------------------------------------------------


@pytest.fixture(scope="module")
def chorales():
    """(notes, total steps) of the first chorales at 4 steps per quarter."""
    out = []
    for seq in bach_chorales(NUM_CHORALES):
        qs = quantized(seq, 4)
        notes = [(n.pitch, n.quantized_start_step, n.quantized_end_step) for n in qs.notes]
        out.append((notes, qs.total_quantized_steps))
    return out


def random_notes(rng, count, total, pitches=(60, 60, 62, 64, 64, 67, 72)):
    """Notes with many repeated and overlapping same-pitch notes (unisons, re-strikes)."""
    notes = []
    for _ in range(count):
        start = int(rng.integers(0, total))
        notes.append((int(rng.choice(pitches)), start, start + int(rng.integers(1, 9))))
    return notes


# --- documented examples ----------------------------------------------------------------------


def test_readme_examples():
    chord16 = [(67, 0, 1), (60, 0, 1), (64, 0, 1)]
    assert sequence_to_poly_events(chord16) == [
        POLY_START,
        PolyEvent(NEW_NOTE, 67),
        PolyEvent(NEW_NOTE, 64),
        PolyEvent(NEW_NOTE, 60),
        POLY_STEP_END,
        POLY_END,
    ]
    quarter = [(60, 0, 4), (64, 0, 4), (67, 0, 4)]
    cont = [PolyEvent(CONTINUED_NOTE, p) for p in (67, 64, 60)] + [POLY_STEP_END]
    assert sequence_to_poly_events(quarter) == (
        [POLY_START] + [PolyEvent(NEW_NOTE, p) for p in (67, 64, 60)] + [POLY_STEP_END]
        + cont * 3 + [POLY_END]
    )
    assert sorted(poly_events_to_notes(sequence_to_poly_events(quarter))) == quarter


def test_event_numbering_is_magentas():
    assert (START, END, STEP_END, NEW_NOTE, CONTINUED_NOTE) == (0, 1, 2, 3, 4)
    assert PolyEvent(NEW_NOTE, 60).kind == 3 and PolyEvent(NEW_NOTE, 60).pitch == 60
    assert POLY_STEP_END == PolyEvent(STEP_END, None)


# --- one-hot ----------------------------------------------------------------------------------


def test_one_hot_layout():
    enc = PolyphonyOneHotEncoding()
    assert enc.num_classes == 259
    assert enc.default_event == POLY_STEP_END
    fixed = {
        POLY_START: 0, POLY_END: 1, POLY_STEP_END: 2,
        PolyEvent(NEW_NOTE, 0): 3, PolyEvent(NEW_NOTE, 60): 63, PolyEvent(NEW_NOTE, 127): 130,
        PolyEvent(CONTINUED_NOTE, 0): 131, PolyEvent(CONTINUED_NOTE, 127): 258,
    }
    for event, index in fixed.items():
        assert enc.encode_event(event) == index
        assert enc.decode_event(index) == event
    for index in range(259):
        event = enc.decode_event(index)
        assert enc.encode_event(event) == index == ref_index(event)
    # the pitch of an unpitched event does not matter (Magenta decodes them with pitch 0)
    assert enc.encode_event(PolyEvent(STEP_END, 0)) == 2
    assert [enc.event_to_num_steps(enc.decode_event(i)) for i in range(5)] == [0, 0, 1, 0, 0]


def test_one_hot_errors():
    enc = PolyphonyOneHotEncoding()
    for bad in (PolyEvent(NEW_NOTE, 128), PolyEvent(CONTINUED_NOTE, -1),
                PolyEvent(NEW_NOTE, None), PolyEvent(5, 60), PolyEvent(-1, None)):
        with pytest.raises(EncodingError):
            enc.encode_event(bad)
    for index in (-1, 259):
        with pytest.raises(EncodingError):
            enc.decode_event(index)


def test_encoder_sizes_and_factory():
    enc = polyphony_encoder()
    assert isinstance(enc, OneHotEventEncoder)
    assert (enc.input_size, enc.num_classes) == (259, 259)
    assert polyphony_encoder("polyphony").input_size == 259
    with pytest.raises(UnknownConfigError):
        polyphony_encoder("polyphony_rnn")


def test_encoder_on_chorales(chorales):
    buf = np.full(259, np.nan, np.float32)
    for notes, total in chorales[:3]:
        events = sequence_to_poly_events(notes, 0, total)
        enc = polyphony_encoder()
        for event in events:
            label = enc.event_to_label(event)
            assert label == ref_index(event)
            assert enc.label_to_event(label) == event
            enc.append(event)
            enc.encode_input(buf)
            assert buf[label] == 1.0 and buf.sum() == 1.0


# --- notes -> events --------------------------------------------------------------------------


def test_chorale_events_match_reference(chorales):
    for notes, total in chorales:
        assert len({p for p, _, _ in notes}) > 10
        events = sequence_to_poly_events(notes)  # end defaults to the last note end
        assert events == ref_events(notes, 0, total)
        assert sum(e.kind == STEP_END for e in events) == total
        # from the second bar on: notes begun before it are dropped, not continued
        assert sequence_to_poly_events(notes, 16, total) == ref_events(notes, 16, total)
        assert sequence_to_poly_events(notes, 5, 40) == ref_events(notes, 5, 40)


def test_chorales_hold_several_voices_per_step(chorales):
    events = sequence_to_poly_events(chorales[1][0])
    per_step, n = [], 0
    for e in events[1:]:
        if e.kind == STEP_END:
            per_step.append(n)
            n = 0
        elif e.kind in (NEW_NOTE, CONTINUED_NOTE):
            n += 1
    assert max(per_step) >= 4 and np.mean(per_step) > 3


def test_random_notes_with_unisons_match_reference():
    rng = np.random.default_rng(11)
    for _ in range(200):
        total = int(rng.integers(1, 30))
        notes = random_notes(rng, int(rng.integers(0, 25)), total)
        start = int(rng.integers(0, 4))
        end = int(rng.integers(start, total + 10))
        assert sequence_to_poly_events(notes, start, end) == ref_events(notes, start, end)


def test_duplicate_pitch_order_and_empty_ranges():
    # the same pitch held and struck again: CONTINUED_NOTE first, both counted
    notes = [(60, 0, 3), (60, 1, 2), (60, 1, 2), (64, 1, 2)]
    assert sequence_to_poly_events(notes, 0, 2) == [
        POLY_START, PolyEvent(NEW_NOTE, 60), POLY_STEP_END,
        PolyEvent(NEW_NOTE, 64), PolyEvent(CONTINUED_NOTE, 60),
        PolyEvent(NEW_NOTE, 60), PolyEvent(NEW_NOTE, 60), POLY_STEP_END,
        POLY_END,
    ]
    assert sequence_to_poly_events([]) == [POLY_START, POLY_END]
    assert sequence_to_poly_events([], 0, 2) == [POLY_START, POLY_STEP_END, POLY_STEP_END, POLY_END]
    assert sequence_to_poly_events([(60, 0, 4)], 5, 3) == [POLY_START, POLY_END]
    assert poly_step_events([64, 60], [67, 64]) == [
        PolyEvent(NEW_NOTE, 67), PolyEvent(CONTINUED_NOTE, 64), PolyEvent(NEW_NOTE, 64),
        PolyEvent(CONTINUED_NOTE, 60), POLY_STEP_END,
    ]


def test_bad_notes_raise():
    for bad in ([(128, 0, 1)], [(-1, 0, 1)], [(60, 2, 2)], [(60, 3, 1)], [(60.5, 0, 1)]):
        with pytest.raises(EncodingError):
            sequence_to_poly_events(bad)
    assert sequence_to_poly_events([(np.int64(60), 0, 1)])[1] == PolyEvent(NEW_NOTE, 60)


# --- events -> notes --------------------------------------------------------------------------


def test_chorale_round_trip(chorales):
    exact = 0
    for notes, total in chorales:
        events = sequence_to_poly_events(notes)
        back = poly_events_to_notes(events)
        assert back == ref_notes(events)
        assert piano_roll(back, 0, total) == piano_roll(notes, 0, total)
        if not has_nested_unison(notes):
            exact += 1
            assert sorted(back) == sorted(notes)
            later = poly_events_to_notes(sequence_to_poly_events(notes, 16, total), 16)
            assert sorted(later) == sorted(n for n in notes if n[1] >= 16)
    assert exact >= NUM_CHORALES // 2


def test_random_round_trip_matches_reference():
    rng = np.random.default_rng(12)
    exact = 0
    for _ in range(300):
        total = int(rng.integers(1, 30))
        notes = random_notes(rng, int(rng.integers(0, 25)), total)
        events = sequence_to_poly_events(notes, 0, total)
        back = poly_events_to_notes(events)
        assert back == ref_notes(events)
        assert piano_roll(back, 0, total) == piano_roll(notes, 0, total)
        clipped = [(p, a, min(b, total)) for p, a, b in notes]
        if not has_nested_unison(clipped):
            exact += 1
            assert sorted(back) == sorted(clipped)
    assert 50 < exact < 300


def test_decoding_rules():
    S, E = POLY_STEP_END, POLY_END
    N = lambda p: PolyEvent(NEW_NOTE, p)  # noqa: E731
    C = lambda p: PolyEvent(CONTINUED_NOTE, p)  # noqa: E731
    # a CONTINUED_NOTE of a pitch not sounding is ignored; START/END inside are ignored
    events = [POLY_START, N(60), S, C(60), C(62), POLY_START, S, E, C(60), S, E]
    assert poly_events_to_notes(events) == [(60, 0, 3)]
    assert poly_events_to_notes(events) == ref_notes(events)
    # striking a sounding pitch again ends the old note; the earliest of a pitch ends first
    events = [POLY_START, N(60), S, N(60), S, C(60), S, E]
    assert poly_events_to_notes(events) == [(60, 0, 1), (60, 1, 3)]
    events = [POLY_START, N(60), S, C(60), N(60), S, C(60), S, E]
    assert poly_events_to_notes(events) == [(60, 0, 2), (60, 1, 3)] == ref_notes(events)
    # a NEW_NOTE followed by CONTINUED in the same step does not continue it
    assert poly_events_to_notes([N(60), C(60), S, S, E]) == [(60, 0, 1)]
    assert poly_events_to_notes([N(60), S, S, E], start_step=8) == [(60, 8, 9)]
    # plain (kind, pitch) pairs work too
    assert poly_events_to_notes([(0, None), (3, 60), (2, None), (1, None)]) == [(60, 0, 1)]


def test_unfinished_streams_raise():
    with pytest.raises(EncodingError):
        poly_events_to_notes([POLY_START, PolyEvent(NEW_NOTE, 60), POLY_STEP_END])
    with pytest.raises(EncodingError):
        poly_events_to_notes([POLY_START, PolyEvent(NEW_NOTE, 60), POLY_END])
    with pytest.raises(EncodingError):
        poly_events_to_notes([POLY_START, PolyEvent(7, 60), POLY_END])
    assert poly_events_to_notes([POLY_START, POLY_STEP_END]) == []
