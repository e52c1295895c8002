"""Naming the chord a player holds: a set of pitch classes -> a chord symbol ``parse_chord`` reads.

Used by ``--mode improv`` when no backing chords are given: the notes the player holds (in a
register or on a channel) become the chord the Improv RNN model improvises over.

How a chord is chosen. Every held pitch class is tried as the root against a table of chord
kinds (triads, sus chords, sixths, sevenths, ninths). A kind fits when all its tones are held,
except that the perfect fifth may be left out of chords of four or more tones (``C E Bb`` is
``C7``), and at most one held tone is not in the chord (``C E G D`` is ``C``). Of the kinds that
fit, the one with the fewest held tones left over wins, then the fewest tones missing, then a
root in the bass (the lowest held note), then the simpler kind (the table's order). So ``A C E G``
is ``Am7`` over A and ``C6`` over C, and ``C/E`` is written when C major is held over an E.
Fewer than ``min_pitch_classes`` distinct pitch classes (default 3) name no chord: ``"N.C."``.

``accept`` lets a caller keep only the chords it can use (a triad-only Improv model cannot
encode ``Csus4``): a rejected sus chord is tried as its nearest plain chord (sus chords become
major, ``7sus`` becomes ``7``), then the next best reading is tried; ``"N.C."`` if none passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from live.models.encodings.base import NO_CHORD

PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# (kind as written in the symbol, semitones above the root), simplest first.
CHORD_KINDS: tuple[tuple[str, frozenset[int]], ...] = tuple(
    (kind, frozenset(tones))
    for kind, tones in (
        ("", (0, 4, 7)),
        ("m", (0, 3, 7)),
        ("7", (0, 4, 7, 10)),
        ("m7", (0, 3, 7, 10)),
        ("maj7", (0, 4, 7, 11)),
        ("dim", (0, 3, 6)),
        ("aug", (0, 4, 8)),
        ("sus4", (0, 5, 7)),
        ("sus2", (0, 2, 7)),
        ("m7b5", (0, 3, 6, 10)),
        ("dim7", (0, 3, 6, 9)),
        ("6", (0, 4, 7, 9)),
        ("m6", (0, 3, 7, 9)),
        ("7sus", (0, 5, 7, 10)),
        ("mmaj7", (0, 3, 7, 11)),
        ("aug7", (0, 4, 8, 10)),
        ("9", (0, 2, 4, 7, 10)),
        ("maj9", (0, 2, 4, 7, 11)),
        ("m9", (0, 2, 3, 7, 10)),
    )
)

# The nearest plain chord of a kind some encodings lack (the triad quality is all a triad
# encoding keeps; a sus chord has none).
SIMPLER_KIND = {"sus4": "", "sus2": "", "7sus": "7"}

FIFTH = 7
MAX_EXTRA_TONES = 1
DEFAULT_MIN_PITCH_CLASSES = 3


def _symbol(root: int, kind: str, bass: int | None, tones: frozenset[int]) -> str:
    name = PITCH_CLASS_NAMES[root] + kind
    if bass is not None and bass != root and (bass - root) % 12 in tones:
        name += "/" + PITCH_CLASS_NAMES[bass]
    return name


def candidates(pitch_classes: Iterable[int], bass: int | None = None) -> list[tuple[int, str, frozenset[int]]]:
    """Every (root, kind, kind's tones) that fits the pitch classes, best first (see the module doc)."""
    held = {int(p) % 12 for p in pitch_classes}
    scored = []
    for root in held:
        rel = frozenset((p - root) % 12 for p in held)
        for priority, (kind, tones) in enumerate(CHORD_KINDS):
            missing = tones - rel
            if missing and (missing != {FIFTH} or len(tones) < 4):
                continue
            extra = len(rel - tones)
            if extra > MAX_EXTRA_TONES:
                continue
            key = (extra, len(missing), 0 if bass is None or bass == root else 1, priority, root)
            scored.append((key, root, kind, tones))
    scored.sort(key=lambda item: item[0])
    return [(root, kind, tones) for _, root, kind, tones in scored]


def chord_symbol(
    pitch_classes: Iterable[int],
    bass: int | None = None,
    min_pitch_classes: int = DEFAULT_MIN_PITCH_CLASSES,
    accept: Callable[[str], bool] | None = None,
) -> str:
    """The chord symbol for a set of pitch classes (0..11, C = 0; other ints are taken mod 12).

    bass: the pitch class of the lowest note, or None (it breaks ties between readings and
    makes slash chords such as ``"C/E"``). accept: a test a symbol must pass (see the module
    doc). Returns ``"N.C."`` for fewer than ``min_pitch_classes`` pitch classes or no fitting chord.
    """
    held = {int(p) % 12 for p in pitch_classes}
    if len(held) < max(1, min_pitch_classes):
        return NO_CHORD
    bass = None if bass is None else int(bass) % 12
    kinds = dict(CHORD_KINDS)
    for root, kind, tones in candidates(held, bass):
        symbol = _symbol(root, kind, bass, tones)
        if accept is None or accept(symbol):
            return symbol
        if kind in SIMPLER_KIND:
            simpler = SIMPLER_KIND[kind]
            symbol = _symbol(root, simpler, bass, kinds[simpler])
            if accept(symbol):
                return symbol
    return NO_CHORD


def recognize_chord(
    pitches: Iterable[int],
    min_pitch_classes: int = DEFAULT_MIN_PITCH_CLASSES,
    accept: Callable[[str], bool] | None = None,
) -> str:
    """The chord symbol for held MIDI ``pitches`` (the lowest is the bass); see ``chord_symbol``."""
    pitches = [int(p) for p in pitches]
    if not pitches:
        return NO_CHORD
    return chord_symbol(pitches, min(pitches) % 12, min_pitch_classes, accept)
