"""The player's key: names, scales, a running key-finder, and the transposition to a model's key.

Magenta trains its melody and improv models on melodies moved to one key (C major / A minor)
and into one range (C3..C6). The daemon does what Magenta's generators do to a primer, live:
the player's notes reach the model moved into its key and register, and the model's answer is
moved back (see :class:`Tonality`).

The key is found with the Krumhansl-Schmuckler method: a pitch-class histogram of what the
player plays, each note-on adding 1 and older notes fading (half of their weight gone after
``half_life`` notes), is correlated with major and minor key profiles in all 12 transpositions;
the best of the 24 wins. The profiles are Temperley's (2007), from the Kostka-Payne corpus: on
short melodic phrases they name the key's scale more often than Krumhansl and Kessler's
listening-test profiles (measured: 170 of 202 folk tunes' first 16 notes against 154, and 48 of
48 against 24 of the two-bar calls of ``benchmarks/musical_quality.py``; weighting notes by
their length helped neither profile as much). A new key replaces the one in use only when it
correlates better by ``margin`` (so the estimate does not flicker between a key and its
neighbours on every note).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from live.errors import LiveError

PC_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor: the relative major's pitch classes

# Temperley (2007, "Music and Probability"), from the Kostka-Payne corpus: how likely each pitch
# class is in a passage in a major / minor key on its tonic.
MAJOR_PROFILE = (0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400)
MINOR_PROFILE = (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330)

KEY_HELP = "a key is a tonic A-G with an optional # or b, then m for minor (C, F#, Bb, Am, C#m, Ebm), or auto"


class KeyNameError(LiveError, ValueError):
    """A key name that does not parse (``--key H``)."""


@dataclass(frozen=True)
class Key:
    """A major or (natural) minor key.

    Attributes:
        tonic: pitch class of the tonic, 0..11 (C = 0).
        minor: True for a minor key.
    """

    tonic: int
    minor: bool = False

    @property
    def name(self) -> str:
        """"F#", "Bbm"."""
        return PC_NAMES[self.tonic] + ("m" if self.minor else "")

    @property
    def scale(self) -> frozenset[int]:
        """The key's seven pitch classes (natural minor for minor keys)."""
        steps = MINOR_SCALE if self.minor else MAJOR_SCALE
        return frozenset((self.tonic + s) % 12 for s in steps)

    @property
    def major_tonic(self) -> int:
        """The tonic of the major key with the same scale (A minor -> C = 0)."""
        return (self.tonic + 3) % 12 if self.minor else self.tonic

    def shift_to(self, model_key: int) -> int:
        """Semitones (-6..5) that move this key's scale onto major key ``model_key``'s
        (Magenta's ``transpose_to_key``: 0 for C major / A minor)."""
        return (model_key - self.major_tonic + 6) % 12 - 6

    def __str__(self) -> str:
        return self.name


_KEY_RE = re.compile(r"([A-Ga-g])([#b]?)(m|min|minor|maj|major)?")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def parse_key(text: str) -> Key | None:
    """``--key``: "C", "F#", "Bb", "Am", "C#m", "Eb minor"... as a Key; "auto" (any case) as None.

    Raises:
        KeyNameError: naming the accepted values.
    """
    if not isinstance(text, str):
        raise KeyNameError(f"--key: {text!r} is not a key name; {KEY_HELP}")
    cleaned = text.strip().replace(" ", "")
    if cleaned.lower() == "auto":
        return None
    match = _KEY_RE.fullmatch(cleaned)
    if match is None:
        raise KeyNameError(f"--key: {text!r} is not a key name; {KEY_HELP}")
    letter, accidental, quality = match.groups()
    pc = (_LETTER_PC[letter.upper()] + {"#": 1, "b": -1, "": 0}[accidental]) % 12
    return Key(pc, quality in ("m", "min", "minor"))


def _profiles() -> np.ndarray:
    """The 24 key profiles, centred and scaled to unit length [24, 12]: rows 0..11 major on
    C..B, rows 12..23 minor on C..B."""
    rows = [np.roll(MAJOR_PROFILE, t) for t in range(12)] + [np.roll(MINOR_PROFILE, t) for t in range(12)]
    p = np.array(rows, np.float64)
    p -= p.mean(axis=1, keepdims=True)
    return p / np.linalg.norm(p, axis=1, keepdims=True)


_PROFILES = _profiles()
KEYS = tuple(Key(t, False) for t in range(12)) + tuple(Key(t, True) for t in range(12))
"""The 24 keys, in the order of the profile rows."""


def key_correlations(histogram: np.ndarray) -> np.ndarray:
    """Pearson correlation [24] of a pitch-class histogram [12] with each key's profile (rows as
    ``KEYS``); all zeros for a flat or empty histogram."""
    h = np.asarray(histogram, np.float64) - float(np.mean(histogram))
    norm = float(np.linalg.norm(h))
    if norm < 1e-12:
        return np.zeros(24)
    return _PROFILES @ (h / norm)


def find_key(pitches: list[int]) -> Key | None:
    """The key of a set of notes (each note-on counted once, no fading); None for no notes."""
    if not pitches:
        return None
    hist = np.bincount(np.asarray(pitches) % 12, minlength=12)
    return KEYS[int(np.argmax(key_correlations(hist)))]


class KeyFinder:
    """A running key estimate over what the player plays (Krumhansl-Schmuckler, fading, with
    Temperley's profiles).

    Attributes:
        key: the key in use, or None until ``min_notes`` note-ons have been heard.
        center: the fading mean pitch of the notes heard (MIDI pitch), or None before any.
    """

    def __init__(self, half_life: float = 24.0, margin: float = 0.05, min_notes: int = 4) -> None:
        """half_life: note-ons after which a note's weight has halved. margin: how much better a
        new key must correlate before it replaces the one in use. min_notes: note-ons before the
        first estimate."""
        self.decay = 0.5 ** (1.0 / half_life)
        self.margin = margin
        self.min_notes = min_notes
        self.histogram = np.zeros(12)
        self.notes = 0
        self.key: Key | None = None
        self.center: float | None = None
        self._center_weight = 0.0

    def reset(self) -> None:
        self.histogram[:] = 0.0
        self.notes = 0
        self.key = None
        self.center = None
        self._center_weight = 0.0

    def observe(self, pitch: int) -> Key | None:
        """A note-on of ``pitch``: older notes fade by one note's worth, this one counts 1.
        Returns the key in use afterwards."""
        self.histogram *= self.decay
        self.histogram[pitch % 12] += 1.0
        self._center_weight = self._center_weight * self.decay + 1.0
        if self.center is None:
            self.center = float(pitch)
        else:
            self.center += (pitch - self.center) / self._center_weight
        self.notes += 1
        return self._update()

    def _update(self) -> Key | None:
        if self.notes >= self.min_notes:
            r = key_correlations(self.histogram)
            best = int(np.argmax(r))
            if self.key is None or r[best] > r[KEYS.index(self.key)] + self.margin:
                self.key = KEYS[best]
        return self.key


class Tonality:
    """Where a melody model's world meets the player's: the key in use and the transposition.

    ``offset`` semitones move a player's pitch to the model's (then folded into the model's
    range by octaves); an event the model plays goes back by ``-offset``. The offset is the key
    shift (the player's key onto the model's ``transpose_to_key``, -6..5 semitones) plus whole
    octaves that bring the player's register (the finder's fading mean pitch) to the middle of
    the model's range. Models that are not transposed (key-free families, ``mono_rnn``) keep 0.

    Attributes:
        fixed: the key given with ``--key`` (None: found from the player).
        finder: the running estimate (used when ``fixed`` is None).
        model_key: the model's key (0 = C major), or None: never transposed.
        follow_register: whether the offset also brings the player's register to the model's.
    """

    OCTAVE_HYSTERESIS = 2.0
    """Semitones past the half-way point between two octaves before the register moves."""

    def __init__(self, fixed: Key | None, model_key: int | None, low: int, high: int, follow_register: bool = True) -> None:
        """fixed, model_key: as the attributes; low, high: the model's range (MIDI pitches,
        high exclusive); follow_register: False moves by the key shift only (improv: the
        player's chords are low, the melody keeps the model's register)."""
        self.fixed = fixed
        self.finder = KeyFinder()
        self.model_key = model_key
        self.middle = (low + high) / 2.0
        self.octaves = 0
        self.follow_register = follow_register

    @property
    def key(self) -> Key | None:
        """The key in use (``--key`` or the estimate), or None while unknown."""
        return self.fixed if self.fixed is not None else self.finder.key

    def observe(self, pitch: int) -> None:
        """The player struck ``pitch``."""
        self.finder.observe(pitch)

    def shift(self) -> int:
        """Semitones (-6..5) from the key in use to the model's key (0 while unknown)."""
        key = self.key
        if key is None or self.model_key is None:
            return 0
        return key.shift_to(self.model_key)

    def offset(self) -> int:
        """Semitones from the player's pitches to the model's: key shift and register."""
        if self.model_key is None:
            return 0
        shift = self.shift()
        center = self.finder.center
        if center is not None and self.follow_register:
            x = (center + shift - self.middle) / 12.0  # octaves above the model's middle
            if abs(x - self.octaves) > 0.5 + self.OCTAVE_HYSTERESIS / 12.0:
                self.octaves = math.floor(x + 0.5)
        return shift - 12 * self.octaves

    def model_scale(self, offset: int) -> frozenset[int] | None:
        """The key's pitch classes as the model sees them at ``offset``; None while unknown."""
        key = self.key
        if key is None:
            return None
        return frozenset((pc + offset) % 12 for pc in key.scale)
