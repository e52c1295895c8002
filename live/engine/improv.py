"""``--mode improv``: an Improv RNN model improvises a melody over chords, continuously.

The chords come from one of two places:

- backing chords (``AgentSpec.backing_chords``, e.g. ``["C", "G", "Am", "F"]``), looped, each
  lasting ``steps_per_chord`` steps from step 0 (the clock's start), so with 16 steps per chord
  the chords change on the bar lines;
- the player: the notes the player holds (only those on ``chord_channel`` and/or below
  ``chord_below`` when these are set, otherwise every note this agent hears) are named by
  ``live.engine.chord_recognition``. A chord stays until another is recognized: lifting the
  hands between chords, or holding fewer than three pitch classes, keeps the last one.

The player plays the chords, the model plays the melody: the player's notes are not fed to the
model as melody. The model plays from the first step after the clock starts (from the step after
the first recognized chord, with live chords) until it is stopped.

The chord of a step is the model's control for predicting that step (``control``). Live chords
are known a step late: step ``s + 1`` is planned at the middle of step ``s`` with the chord held
then. Chords the model's encoding cannot take are refused up front for backing chords (a triad
encoding has no sus chords); recognized chords are steered to ones it can take (Csus4 -> C).
The key: Improv RNN models learn lead sheets moved to C, chords and melody together, so the
chords reach the model moved from the player's key (``--key``, or found from the notes of the
backing chords or of the chords the player holds) to C, and the melody comes back moved by as
much (at most half an octave either way; the melody keeps the model's own register).
"""

from __future__ import annotations

import mido
import numpy as np

from live.engine.accompany import Accompanist
from live.engine.agent import AgentSpec, AgentState, Sink
from live.engine.chord_recognition import recognize_chord
from live.engine.voices import StepInput
from live.errors import ChordSymbolError, ConfigFileError, EncodingError
from live.models.encodings.base import NO_CHORD, ConditionalEncoder
from live.models.encodings.chords import parse_chord, transpose_chord_symbol
from live.models.encodings.melody import MELODY_NO_EVENT
from live.models.model import Model

CONTROL_LOG = 2048  # steps of chord controls kept in ``Improv.controls``


class Improv(Accompanist):
    """``--mode improv`` for Improv RNN models (basic_improv, attention_improv, chord_pitches_improv).

    Attributes:
        backing: the backing chord symbols, or None (chords from the player).
        chord: the last chord recognized from the player (None before the first).
        chords_now: the chord of the step just taken (for the panel), or None.
        controls: step -> the chord symbol given as that step's control (the latest steps).
    """

    mode = "improv"
    rest = MELODY_NO_EVENT
    follows_register = False  # the player's chords are low; the melody keeps the model's register

    def __init__(
        self, spec: AgentSpec, model: Model, sink: Sink, rng: np.random.Generator, ticks_per_bar: int = 96, ticks_per_beat: int = 24
    ) -> None:
        super().__init__(spec, model, sink, rng, ticks_per_bar, ticks_per_beat)
        encoder = self.stream.encoder
        if not isinstance(encoder, ConditionalEncoder):
            raise ValueError(f"--mode improv needs an Improv RNN model (chord-conditioned), not {model.config_id}")  # noqa: TRY004 (as agent_class)
        self._chord_encoder = encoder.control
        self._chord_buf = np.zeros(encoder.control.input_size, np.float32)
        self._fits: dict[str, bool] = {}
        if spec.steps_per_chord < 1:
            raise ConfigFileError(f"steps per chord must be at least 1, not {spec.steps_per_chord}")
        self.backing: list[str] | None = None
        if spec.backing_chords:
            for symbol in spec.backing_chords:
                self.check_chord(symbol)
            self.backing = list(spec.backing_chords)
        self.chord: str | None = None
        self.chords_now: str | None = None
        self.controls: dict[int, str] = {}
        self._moved: dict[tuple[str, int], str] = {}  # (symbol, semitones) -> the symbol moved
        if self.backing and spec.key is None:
            for symbol in self.backing:  # the progression names its key
                for pc in parse_chord(symbol).pitches:
                    self.tonality.observe(60 + pc)
        self.voice.offset = self.tonality.offset()
        self.state = AgentState.IDLE if self.backing else AgentState.LISTENING
        self.prime()

    # -- chords ----------------------------------------------------------------------------------

    def check_chord(self, symbol: str) -> None:
        """Raise ChordSymbolError / EncodingError (with the reason) if the model cannot take ``symbol``."""
        try:
            self._chord_buf[:] = 0.0
            self._chord_encoder.encode(symbol, self._chord_buf)
        except ChordSymbolError as err:
            raise ChordSymbolError(f"backing chords: {err}") from err
        except EncodingError as err:
            raise EncodingError(f"backing chords: {symbol!r} cannot be fed to {self.model.config_id}: {err}") from err

    def fits(self, symbol: str) -> bool:
        """True if the model's chord encoding takes ``symbol``."""
        ok = self._fits.get(symbol)
        if ok is None:
            try:
                self._chord_buf[:] = 0.0
                self._chord_encoder.encode(symbol, self._chord_buf)
                ok = True
            except (ChordSymbolError, EncodingError):
                ok = False
            self._fits[symbol] = ok
        return ok

    def chord_at(self, step: int) -> str:
        """The chord of ``step`` as known now (live chords: the one held now)."""
        if self.backing is not None:
            return self.backing[(step // self.spec.steps_per_chord) % len(self.backing)]
        return self.chord or NO_CHORD

    def control(self, step: int) -> str:
        """The chord of ``step`` as the model hears it: moved into the model's key."""
        symbol = self.chord_at(step)
        self.controls[step] = symbol
        if len(self.controls) > CONTROL_LOG:
            for old in list(self.controls)[: CONTROL_LOG // 2]:
                del self.controls[old]
        return self.moved(symbol, self.voice.offset)

    def moved(self, symbol: str, semitones: int) -> str:
        """``symbol`` transposed by ``semitones`` (cached: symbols repeat)."""
        if semitones == 0:
            return symbol
        moved = self._moved.get((symbol, semitones))
        if moved is None:
            if len(self._moved) > CONTROL_LOG:
                self._moved.clear()
            moved = self._moved[(symbol, semitones)] = transpose_chord_symbol(symbol, semitones)
        return moved

    def allowed_pitch_classes(self, step: int) -> frozenset[int] | None:
        """The key's scale and the chord's tones (scale lock), as the model sees them."""
        scale = super().allowed_pitch_classes(step)
        tones = frozenset((pc + self.voice.offset) % 12 for pc in parse_chord(self.chord_at(step)).pitches)
        if scale is None:
            return tones or None
        return scale | tones

    def is_chord_note(self, msg: mido.Message) -> bool:
        """True if the player's ``msg`` takes part in the chord (channel and register filters)."""
        spec = self.spec
        if spec.chord_channel is not None and msg.channel + 1 != spec.chord_channel:
            return False
        return spec.chord_below is None or msg.note < spec.chord_below

    # -- the player and the steps ----------------------------------------------------------------

    def note(self, tick: int, msg: mido.Message) -> None:
        if self.backing is None and self.is_chord_note(msg):
            super().note(tick, msg)

    def heard(self, step: int, got: StepInput) -> None:
        self.voice.offset = self.tonality.offset()  # from the next step on, in the key in use
        if self.backing is None and self.held:
            symbol = recognize_chord(self.held, accept=self.fits)
            if symbol != NO_CHORD:
                self.chord = symbol
        self.chords_now = self.chord_at(step) if (self.backing is not None or self.chord) else None

    def ready(self, step: int) -> bool:
        return self.backing is not None or self.chord is not None

    def stop(self, tick: int) -> None:
        super().stop(tick)
        if self.backing is None:
            self.state = AgentState.LISTENING
