"""Chord symbols and the Improv RNN chord (control) encodings.

``parse_chord`` reads the chord symbols that note-seq's ``chord_symbols_lib`` reads: a root
(``C``, ``F#``, ``Bb``, even ``D##``), a chord kind (``m``, ``7``, ``maj7``, ``m7b5``, ``dim``,
``sus4``, ``13``, ``6/9``...), optional scale degree changes (``b9``, ``#11``, ``add2``,
``no3``, with or without parentheses) and an optional ``/bass``. ``"N.C."`` means no chord.

Control encoders (chord symbol per step -> vector), as Magenta's improv_rnn configs:

- ``TriadChordEncoder``: basic_improv, attention_improv; 49 = no chord + 12 roots x
  (major, minor, augmented, diminished)
- ``PitchChordsEncoder``: chord_pitches_improv; 37 = no chord, root, pitch classes, bass
- ``MajorMinorChordEncoder``: 25 = no chord + 12 roots x (major, minor)

Encoders cache the result per symbol: a backing track repeats the same few symbols every step.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

import numpy as np

from live.errors import ChordSymbolError, EncodingError
from live.models.encodings.base import NO_CHORD, ControlEncoder

NOTES_PER_OCTAVE = 12

# Chord qualities (the numbering note-seq uses).
QUALITY_MAJOR = 0
QUALITY_MINOR = 1
QUALITY_AUGMENTED = 2
QUALITY_DIMINISHED = 3
QUALITY_OTHER = 4

# Chord kinds: abbreviations -> scale degrees of the chord ("b3" = flat third). A degree
# appears at most once in a kind; the order of the degrees is the order of the pitches.
_KINDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("", "maj", "M"), "1 3 5"),
    (("m", "min", "-"), "1 b3 5"),
    (("+", "aug"), "1 3 #5"),
    (("o", "dim"), "1 b3 b5"),
    (("7",), "1 3 5 b7"),
    (("maj7", "M7"), "1 3 5 7"),
    (("m7", "min7", "-7"), "1 b3 5 b7"),
    (("o7", "dim7"), "1 b3 b5 bb7"),
    (("+7", "aug7"), "1 3 #5 b7"),
    (("m7b5", "-7b5", "/o", "/o7"), "1 b3 b5 b7"),
    (
        (
            "mmaj7", "mM7", "minmaj7", "minM7", "-maj7", "-M7",
            "m(maj7)", "m(M7)", "min(maj7)", "min(M7)", "-(maj7)", "-(M7)",
        ),
        "1 b3 5 7",
    ),
    (("6",), "1 3 5 6"),
    (("m6", "min6", "-6"), "1 b3 5 6"),
    (("9",), "1 3 5 b7 9"),
    (("maj9", "M9"), "1 3 5 7 9"),
    (("m9", "min9", "-9"), "1 b3 5 b7 9"),
    (("+9", "aug9"), "1 3 #5 b7 9"),
    (("6/9",), "1 3 5 6 9"),
    (("11",), "1 3 5 b7 9 11"),
    (("maj11", "M11"), "1 3 5 7 9 11"),
    (("m11", "min11", "-11"), "1 b3 5 b7 9 11"),
    (("13",), "1 3 5 b7 9 11 13"),
    (("maj13", "M13"), "1 3 5 7 9 11 13"),
    (("m13", "min13", "-13"), "1 b3 5 b7 9 11 13"),
    (("sus2",), "1 2 5"),
    (("sus", "sus4"), "1 4 5"),
    (("sus7", "7sus"), "1 4 5 b7"),
    (("ped",), "1"),
    (("5",), "1 5"),
)


def _degree(text: str) -> tuple[int, int]:
    """"b3" -> (3, -1); "#5" -> (5, 1); "bb7" -> (7, -2)."""
    number = text.lstrip("#b")
    accidentals = text[: len(text) - len(number)]
    return int(number), accidentals.count("#") - accidentals.count("b")


KIND_DEGREES: dict[str, tuple[tuple[int, int], ...]] = {
    abbrev: tuple(_degree(d) for d in degrees.split()) for abbrevs, degrees in _KINDS for abbrev in abbrevs
}

_LETTERS = "CDEFGAB"
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_DEGREE_SEMITONES = {1: 0, 2: 2, 3: 4, 4: 5, 5: 7, 6: 9, 7: 11}

_PITCH = r"[A-G](?:#+|b*)(?![#b])"
# Longest kinds first, so that e.g. "maj7" is not read as "maj" followed by junk. (Where two
# readings both fit, such as "m7b5" = "m7" + "b5", they give the same chord.)
_KIND = "|".join(re.escape(k) for k in sorted(KIND_DEGREES, key=len, reverse=True))
_CHANGE = r"\(?(add[#b]?|no|[#b])([0-9]+)\)?"
_SYMBOL_RE = re.compile(rf"({_PITCH})({_KIND})((?:{_CHANGE})*)(?:/({_PITCH}))?")
_CHANGE_RE = re.compile(_CHANGE)

_SYNTAX_HELP = (
    "expected a root A-G with optional sharps (#) or flats (b), a chord kind such as m, 7, maj7,"
    " m7b5, dim, aug, sus4 or 13, optional degree changes such as b9, #11, add2 or no3, and an"
    " optional /bass, e.g. 'F#m7b5', 'C7(b9)', 'Bb/D'; or 'N.C.' for no chord"
)


@dataclasses.dataclass(frozen=True)
class Chord:
    """A parsed chord symbol.

    Attributes:
        symbol: the symbol as written.
        root: root pitch class 0..11 (C = 0); None for no chord.
        bass: bass pitch class 0..11 (the root when no /bass is written); None for no chord.
        pitches: the chord's pitch classes in the order of its scale degrees, as note-seq's
            ``chord_symbol_pitches`` lists them (the bass only when it is a chord tone; a
            pitch class may repeat, e.g. "C9(add2)").
        quality: QUALITY_MAJOR / MINOR / AUGMENTED / DIMINISHED from the 1-3-5 triad, else
            QUALITY_OTHER (also for no chord).
        degrees: (scale degree, alteration in semitones) pairs, in pitch order.
    """

    symbol: str
    root: int | None
    bass: int | None
    pitches: tuple[int, ...]
    quality: int
    degrees: tuple[tuple[int, int], ...] = ()

    @property
    def is_no_chord(self) -> bool:
        return self.root is None


def _pitch_class(text: str) -> tuple[str, int]:
    """"Bb" -> ("B", -1)."""
    return text[0], text.count("#") - text.count("b")


def _split(symbol: Any) -> re.Match[str]:
    if not isinstance(symbol, str):
        raise ChordSymbolError(f"a chord symbol must be a string, got {type(symbol).__name__} {symbol!r}")
    match = _SYMBOL_RE.fullmatch(symbol)
    if match is None:
        raise ChordSymbolError(f"cannot parse chord symbol {symbol!r}: {_SYNTAX_HELP}")
    return match


def parse_chord(symbol: str) -> Chord:
    """Parse a chord symbol such as "F#m7b5", "C7(b9)", "Bb/D" or "N.C." (results are cached).

    Raises:
        ChordSymbolError: for text that is not a chord symbol ("H7", "Cmaj8"), or a degree
            change that does not fit the chord ("C7(add3)": the 3rd is there already;
            "C(no7)": there is no 7th to remove).
    """
    if not isinstance(symbol, str):
        raise ChordSymbolError(f"a chord symbol must be a string, got {type(symbol).__name__} {symbol!r}")
    return _parse_chord(symbol)


@functools.lru_cache(maxsize=4096)
def _parse_chord(symbol: str) -> Chord:
    if symbol == NO_CHORD:
        return Chord(NO_CHORD, None, None, (), QUALITY_OTHER)
    match = _split(symbol)
    root_text, kind, changes, bass_text = match.group(1), match.group(2), match.group(3), match.group(6)
    degrees = dict(KIND_DEGREES[kind])
    pos = 0
    while pos < len(changes):
        change = _CHANGE_RE.match(changes, pos)
        assert change is not None and change.end() > pos  # the full match guarantees it
        pos = change.end()
        op, number = change.group(1), int(change.group(2))
        if op.startswith("add"):
            if number in degrees:
                raise ChordSymbolError(
                    f"chord symbol {symbol!r}: cannot add degree {number}, the chord already has it"
                )
            # "add7" means the flat (dominant) seventh.
            degrees[number] = op.count("#") - op.count("b") - (1 if number == 7 else 0)
        elif op == "no":
            if number not in degrees:
                raise ChordSymbolError(
                    f"chord symbol {symbol!r}: cannot remove degree {number}, the chord does not have it"
                )
            del degrees[number]
        else:  # "#" or "b": alter the degree, or add it altered
            degrees[number] = degrees.get(number, 0) + (1 if op == "#" else -1)
    root = _midi_pc(*_pitch_class(root_text))
    bass = _midi_pc(*_pitch_class(bass_text)) if bass_text else root
    pitches = tuple(
        (root + _DEGREE_SEMITONES[(number - 1) % 7 + 1] + alter) % NOTES_PER_OCTAVE
        for number, alter in degrees.items()
    )
    return Chord(symbol, root, bass, pitches, _quality(degrees), tuple(degrees.items()))


def _midi_pc(letter: str, alter: int) -> int:
    return (_LETTER_PC[letter] + alter) % NOTES_PER_OCTAVE


def _quality(degrees: dict[int, int]) -> int:
    if 1 not in degrees or 3 not in degrees or 5 not in degrees:
        return QUALITY_OTHER
    triad = (degrees[1], degrees[3], degrees[5])
    return {
        (0, 0, 0): QUALITY_MAJOR,
        (0, -1, 0): QUALITY_MINOR,
        (0, 0, 1): QUALITY_AUGMENTED,
        (0, -1, -1): QUALITY_DIMINISHED,
    }.get(triad, QUALITY_OTHER)


def _transpose_spelled(letter: str, alter: int, amount: int) -> str:
    """Spell the pitch class ``amount`` semitones above letter+alter, as note-seq spells it.

    Walk up letter names while the whole step or half step to the next letter fits in what
    is left; a remaining half step becomes a flat on the next letter when the note had no
    flats, else one flat fewer.
    """
    left = amount % NOTES_PER_OCTAVE
    index = _LETTERS.index(letter)
    while True:
        nxt = _LETTERS[(index + 1) % 7]
        gap = (_LETTER_PC[nxt] - _LETTER_PC[_LETTERS[index]]) % NOTES_PER_OCTAVE
        if left < gap:
            break
        left -= gap
        index = (index + 1) % 7
    if left:  # one semitone short of the next letter
        if alter >= 0:
            index = (index + 1) % 7
            alter -= 1
        else:
            alter += 1
    return _LETTERS[index] + ("#" * alter if alter >= 0 else "b" * -alter)


def transpose_chord_symbol(symbol: str, amount: int) -> str:
    """``symbol`` moved ``amount`` semitones (root and bass respelled; kind and changes kept).

    "N.C." stays as it is. Spelling matches note-seq's ``transpose_chord_symbol`` (so what
    ``ChordProgression.transpose`` gives): e.g. "Bb/D" up 2 is "C/E", "F#m7" up 1 is "Gm7".
    Improv RNN transposes the backing chords by the melody's squash amount.

    Raises:
        ChordSymbolError: when ``symbol`` does not parse.
    """
    if symbol == NO_CHORD:
        return symbol
    match = _split(symbol)
    root = _transpose_spelled(*_pitch_class(match.group(1)), amount)
    bass_text = match.group(6)
    bass = "/" + _transpose_spelled(*_pitch_class(bass_text), amount) if bass_text else ""
    return root + match.group(2) + match.group(3) + bass


_PC_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_QUALITY_SUFFIX = {QUALITY_MAJOR: "", QUALITY_MINOR: "m", QUALITY_AUGMENTED: "aug", QUALITY_DIMINISHED: "dim"}
_QUALITY_NAME = {QUALITY_MAJOR: "major", QUALITY_MINOR: "minor", QUALITY_AUGMENTED: "augmented",
                 QUALITY_DIMINISHED: "diminished"}
_CACHE_LIMIT = 4096


class _ChordClassEncoder(ControlEncoder):
    """One-hot of (triad quality, root) with class 0 for no chord; chords of other qualities fail."""

    qualities: tuple[int, ...]

    def __init__(self) -> None:
        self.num_classes = 1 + NOTES_PER_OCTAVE * len(self.qualities)
        self.input_size = self.num_classes
        self.default_event = NO_CHORD
        self._cache: dict[str, int] = {}

    def encode_event(self, symbol: str) -> int:
        """Class index of a chord symbol.

        Raises:
            ChordSymbolError: unreadable symbol.
            EncodingError: a chord whose triad quality this encoding lacks ("Csus4", "C5").
        """
        index = self._cache.get(symbol)
        if index is None:
            chord = parse_chord(symbol)
            if chord.is_no_chord:
                index = 0
            elif chord.quality in self.qualities:
                index = 1 + NOTES_PER_OCTAVE * self.qualities.index(chord.quality) + chord.root
            else:
                names = ", ".join(_QUALITY_NAME[q] for q in self.qualities)
                raise EncodingError(
                    f"chord {symbol!r} is not a {names} triad, which {type(self).__name__} needs"
                )
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[symbol] = index
        return index

    def decode_event(self, index: int) -> str:
        """A chord symbol for class ``index`` ("N.C.", "Eb", "C#m", "Abaug", "Bdim")."""
        if not 0 <= index < self.num_classes:
            raise EncodingError(f"chord class {index} is outside 0..{self.num_classes - 1}")
        if index == 0:
            return NO_CHORD
        quality, root = divmod(index - 1, NOTES_PER_OCTAVE)
        return _PC_NAMES[root] + _QUALITY_SUFFIX[self.qualities[quality]]

    def encode(self, control: Any, out: np.ndarray) -> None:
        out[self.encode_event(control)] = 1.0


class TriadChordEncoder(_ChordClassEncoder):
    """note-seq's ``TriadChordOneHotEncoding`` as a control: 49 inputs.

    0 = no chord; 1 + root = major; 13 + root = minor; 25 + root = augmented;
    37 + root = diminished (root pitch class, C = 0). A seventh chord counts as its triad
    ("Cm7" is C minor, "Bm7b5" B diminished).
    """

    qualities = (QUALITY_MAJOR, QUALITY_MINOR, QUALITY_AUGMENTED, QUALITY_DIMINISHED)


class MajorMinorChordEncoder(_ChordClassEncoder):
    """note-seq's ``MajorMinorChordOneHotEncoding`` as a control: 25 inputs.

    0 = no chord; 1 + root = major; 13 + root = minor.
    """

    qualities = (QUALITY_MAJOR, QUALITY_MINOR)


class PitchChordsEncoder(ControlEncoder):
    """note-seq's ``PitchChordsEncoderDecoder`` input (chord_pitches_improv): 37 inputs.

    [0] 1 for no chord (everything else 0 then); [1, 13) one-hot root pitch class;
    [13, 25) 1 for each pitch class in the chord; [25, 37) one-hot bass pitch class.
    """

    input_size = 1 + 3 * NOTES_PER_OCTAVE

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}

    def vector(self, symbol: str) -> np.ndarray:
        """The (cached, read-only) float32 [37] vector of a chord symbol."""
        vec = self._cache.get(symbol)
        if vec is None:
            chord = parse_chord(symbol)
            vec = np.zeros(self.input_size, np.float32)
            if chord.is_no_chord:
                vec[0] = 1.0
            else:
                vec[1 + chord.root] = 1.0
                for pc in chord.pitches:
                    vec[1 + NOTES_PER_OCTAVE + pc] = 1.0
                vec[1 + 2 * NOTES_PER_OCTAVE + chord.bass] = 1.0
            vec.flags.writeable = False
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[symbol] = vec
        return vec

    def encode(self, control: Any, out: np.ndarray) -> None:
        out[:] = self.vector(control)
