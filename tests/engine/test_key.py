"""The player's key: names, the key-finder on known scales, and the transposition to a model's key."""

from __future__ import annotations

import numpy as np
import pytest

from live.engine.key import (
    KEYS,
    MAJOR_SCALE,
    MINOR_SCALE,
    Key,
    KeyFinder,
    KeyNameError,
    Tonality,
    find_key,
    key_correlations,
    parse_key,
)
from live.errors import LiveError

# scale degrees (0-based) and beats: tonic, up the triad, up the scale, a cadence on the tonic
CADENCE = [(0, 1), (2, 0.5), (4, 0.5), (0, 0.5), (1, 0.5), (2, 0.5), (3, 0.5), (4, 1), (3, 0.5), (1, 0.5), (6, 0.5), (0, 2)]


def play(finder: KeyFinder, key: Key, melody=CADENCE, octave: int = 60) -> None:
    steps = MINOR_SCALE if key.minor else MAJOR_SCALE
    for degree, beats in melody:
        pitch = octave + key.tonic + steps[degree]
        finder.observe(pitch)


@pytest.mark.parametrize(
    "text, tonic, minor",
    [("C", 0, False), ("F#", 6, False), ("Gb", 6, False), ("Bb", 10, False), ("Am", 9, True), ("C#m", 1, True),
     ("ebm", 3, True), ("Eb minor", 3, True), ("B major", 11, False), ("Cb", 11, False), (" D ", 2, False)],
)
def test_key_names_parse(text, tonic, minor):
    assert parse_key(text) == Key(tonic, minor)


def test_auto_is_no_fixed_key_and_names_round_trip():
    assert parse_key("auto") is None and parse_key("AUTO") is None
    for key in KEYS:
        assert parse_key(key.name) == key


@pytest.mark.parametrize("text", ["H", "", "C##", "Cmaj7", "m", "A minorish", "12", "C/E"])
def test_a_bad_key_name_is_one_clear_error_naming_the_accepted_values(text):
    with pytest.raises(KeyNameError, match=r"not a key name; a key is a tonic A-G .* or auto") as info:
        parse_key(text)
    assert isinstance(info.value, LiveError) and isinstance(info.value, ValueError)


def test_scales_and_relative_majors():
    assert Key(0).scale == frozenset({0, 2, 4, 5, 7, 9, 11})
    assert Key(9, True).scale == Key(0).scale  # A minor: C major's notes
    assert Key(10, True).scale == Key(1).scale  # Bb minor: Db major's
    assert Key(9, True).major_tonic == 0 and Key(6).major_tonic == 6


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.name)
def test_the_shift_moves_every_key_onto_c_by_at_most_half_an_octave(key):
    shift = key.shift_to(0)
    assert -6 <= shift <= 5
    assert frozenset((pc + shift) % 12 for pc in key.scale) == Key(0).scale
    assert (key.shift_to(7) - shift) % 12 == 7  # another model key moves it by as much more


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.name)
def test_the_finder_names_every_major_and_minor_key_from_a_phrase(key):
    finder = KeyFinder()
    play(finder, key)
    assert finder.key == key
    assert find_key([60 + key.tonic + s for s in (MINOR_SCALE if key.minor else MAJOR_SCALE)] + [60 + key.tonic] * 3) == key


def test_no_key_before_min_notes_and_none_for_silence():
    finder = KeyFinder(min_notes=4)
    for pitch in (60, 64, 67):
        assert finder.observe(pitch) is None
    assert finder.observe(72) == Key(0)
    assert find_key([]) is None
    assert not key_correlations(np.zeros(12)).any()  # a flat histogram: no key, no NaN


def test_one_chromatic_passing_note_does_not_change_the_key():
    finder = KeyFinder()
    play(finder, Key(0))
    finder.observe(66)  # F#: a passing note
    assert finder.key == Key(0)


def test_the_estimate_follows_a_player_who_moves_to_another_key():
    finder = KeyFinder()
    play(finder, Key(0))
    play(finder, Key(0))
    assert finder.key == Key(0)
    for _ in range(4):
        play(finder, Key(3))  # Eb major, 48 notes later
    assert finder.key == Key(3)


def test_older_notes_fade():
    finder = KeyFinder(half_life=4.0, min_notes=1)
    finder.observe(62)
    for _ in range(4):
        finder.observe(64)
    assert finder.histogram[2] == pytest.approx(0.5 ** (4 / 4.0))  # four notes later: half
    assert finder.histogram[4] == pytest.approx(sum(0.5 ** (k / 4.0) for k in range(4)))


def test_the_two_bar_calls_of_the_quality_benchmark_name_their_keys():
    """The calls the musical-quality benchmark plays, in all 24 keys (Krumhansl and Kessler's
    profiles named 24 of these 48; a phrase may end on its fifth)."""
    from benchmarks.musical_quality import call_notes

    for key in KEYS:
        for phrase in (0, 1):
            finder = KeyFinder()
            for _, _, pitch in call_notes(key, phrase):
                finder.observe(pitch)
            assert finder.key == key, (key.name, phrase, finder.key)


def tonality(fixed: Key | None = None) -> Tonality:
    return Tonality(fixed, 0, 48, 84)  # Magenta's melody range, C major


def test_the_offset_moves_the_key_and_the_register_to_the_models():
    t = tonality()
    assert t.offset() == 0  # nothing heard: as it is
    play(t.finder, Key(6), octave=60)  # F# major around F#4..F#5
    assert t.key == Key(6)
    assert t.offset() == -6  # F# -> C, register kept (around the model's middle)
    t = tonality()
    play(t.finder, Key(6), octave=84)  # two octaves up
    assert t.offset() == -6 - 24
    t = tonality()
    play(t.finder, Key(10, True), octave=36)  # Bb minor, low
    assert t.offset() == -1 + 12  # Db major's notes -> C's, an octave up


def test_a_fixed_key_wins_over_what_is_played_and_an_untransposed_model_keeps_zero():
    t = tonality(Key(2))
    play(t.finder, Key(6))
    assert t.key == Key(2) and t.shift() == -2
    free = Tonality(None, None, 0, 128)  # mono_rnn, polyphony...: never moved
    play(free.finder, Key(6), octave=84)
    assert free.offset() == 0 and free.key == Key(6)


def test_the_register_waits_for_a_clear_move():
    t = tonality()
    t.finder.observe(60)
    assert t.offset() == 0
    t.finder.reset()
    t.finder.observe(74 + 1)  # the middle is 66: 9 semitones above, past 6 + 2 of hysteresis
    assert t.offset() == -12
    t.finder.reset()
    t.finder.observe(71)  # below the half-way point to the next octave (72), not by 2 semitones
    assert t.offset() == -12  # within the hysteresis: stays
    t.finder.reset()
    t.finder.observe(62)
    assert t.offset() == 0
