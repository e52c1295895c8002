"""The polyphonic voice (Polyphony RNN): any number of notes per step, drawn one model step each."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

import numpy as np

from live.engine.sampling import sample_class
from live.engine.stream import Stream
from live.engine.voices.base import Play, ScaleLock, StepInput, StepVoice
from live.messages import note_off, note_on
from live.models.encodings.polyphony import (
    CONTINUED_NOTE,
    NEW_NOTE,
    NUM_PITCHES,
    NUM_POLY_CLASSES,
    NUM_UNPITCHED_CLASSES,
    POLY_START,
    POLY_STEP_END,
    STEP_END,
    PolyEvent,
)
from live.models.model import Model

MAX_NOTES_PER_STEP = 16
"""The most notes the model may put in one step (its own, not counting the player's)."""

MAX_PLAYER_NOTES_PER_STEP = 16
"""The most of the player's notes fed in one step (the highest ones): a flood of notes costs
at most this many model steps per step."""

_NEW0 = NUM_UNPITCHED_CLASSES  # class of NEW_NOTE(0)
_CONT0 = NUM_UNPITCHED_CLASSES + NUM_PITCHES  # class of CONTINUED_NOTE(0)
_NEW = tuple(PolyEvent(NEW_NOTE, p) for p in range(NUM_PITCHES))  # NEW_NOTE(p), made once
_CONTINUED = tuple(PolyEvent(CONTINUED_NOTE, p) for p in range(NUM_PITCHES))

Emit = Callable[[PolyEvent], None]


class Interrupted(Exception):
    """``PolyVoice.sample_step`` gave way to waiting input (see its ``interrupted``)."""


class PolyVoice(StepVoice):
    """Polyphonic voice (Polyphony RNN): any number of notes per step.

    Attributes:
        sounding: pitches this voice plays now (it ends each one it starts).
        heard: the player's pitches in the last step fed by ``player_events``.
    """

    def __init__(self, model: Model, channel: int) -> None:
        super().__init__(model, channel)
        if model.num_classes != NUM_POLY_CLASSES:
            raise ValueError(f"{model.config_id}: {model.num_classes} classes, a polyphony model has {NUM_POLY_CLASSES}")
        self.sounding: set[int] = set()
        self.heard: set[int] = set()
        self.started = False  # START has been handed out (the stream's first event)
        self._new: set[int] = set()  # struck in the step being rendered
        self._kept: set[int] = set()  # continued in the step being rendered
        pitches = np.full(NUM_POLY_CLASSES, -1)
        pitches[_NEW0 : _NEW0 + NUM_PITCHES] = np.arange(NUM_PITCHES)  # only new notes are locked
        self.scale_lock = ScaleLock(pitches)

    @staticmethod
    def is_quiet(event: Hashable) -> bool:
        return event[0] in (STEP_END, CONTINUED_NOTE)  # type: ignore[index]

    # -- the player's side ---------------------------------------------------------------------

    def player_step(self, struck: Iterable[int], held: set[int]) -> list[PolyEvent]:
        """The player's note events of one step (descending pitch, no STEP_END).

        ``struck``: pitches struck in the step; ``held``: pitches the player holds after it.
        A held pitch heard in the previous step continues; ``heard`` becomes what still sounds.
        """
        struck = set(struck)
        continued = (held & self.heard) - struck
        kept = sorted(struck | continued, reverse=True)[:MAX_PLAYER_NOTES_PER_STEP]
        self.heard = {p for p in kept if p in held}
        # (as poly_step_events(continued, struck), the two sets being apart: this runs before a
        # harmony note leaves, and the general function costs several times more)
        return [_CONTINUED[p] if p in continued else _NEW[p] for p in kept]

    def player_events(self, step: StepInput, held: set[int]) -> list[Hashable]:
        events: list[Hashable] = [] if self.started else [POLY_START]
        self.started = True
        return events + self.player_step((p for p, _ in step.onsets), held) + [POLY_STEP_END]

    # -- sampling ------------------------------------------------------------------------------

    def sample(
        self, stream: Stream, rng: np.random.Generator, temperature: float, bias: np.ndarray | None, control: object,
        must_sound: bool = False, top_p: float = 1.0,
    ) -> list[Hashable]:
        return self.sample_step(stream, rng, temperature, bias, min_notes=int(must_sound), top_p=top_p)  # type: ignore[return-value]

    def scale_bias(self, stream: Stream, allowed: frozenset[int] | None, lock: float) -> np.ndarray | None:
        """New notes out of ``allowed`` are penalised (notes already sounding may go on)."""
        return self.scale_lock.bias(allowed, lock)
    def sample_step(
        self,
        stream: Stream,
        rng: np.random.Generator,
        temperature: float,
        bias: np.ndarray | None,
        given: Iterable[PolyEvent] = (),
        below: int | None = None,
        new_notes: bool = True,
        continuable: set[int] | None = None,
        emit: Emit | None = None,
        max_notes: int = MAX_NOTES_PER_STEP,
        before_end: Callable[[], None] | None = None,
        min_notes: int = 0,
        top_p: float = 1.0,
        interrupted: Callable[[], bool] | None = None,
    ) -> list[PolyEvent]:
        """Feed one whole step to ``stream``: the ``given`` note events merged with the model's.

        Args:
            stream: primed at a step boundary (after a STEP_END or START).
            given: note events that must be in the step (descending pitch), e.g. the player's.
            below: the model's notes must be lower than this pitch (None: no bound).
            new_notes: False: the model may only continue notes (no NEW_NOTE).
            continuable: pitches the model may continue (default: ``sounding``).
            emit: called with each of the model's events as soon as it is drawn (before the
                model steps on it), to send harmony without waiting for the rest of the step.
            max_notes: cap on the model's notes in the step.
            before_end: called once the step is complete, before STEP_END is fed (the model
                step that feeding costs need not delay the step's note-offs).
            min_notes: the model must put at least this many notes in the step (STEP_END is
                masked until it has, as long as it has a note it may play).
            top_p: nucleus sampling over the allowed classes (see ``sample_class``).
            interrupted: asked before each model step; once true, :class:`Interrupted` is raised
                (a rehearsal gives way; the stream is then part-way through the step).
        Returns:
            The model's events of the step (not the given ones), then STEP_END; every event
            given or drawn has been fed, STEP_END last.
        """
        # (plain Python sets and ranges here, not arrays: this runs before a harmony note
        # leaves, and on a CPU gone cold every numpy call costs several microseconds)
        pending = list(given)
        cont = self.sounding if continuable is None else continuable  # pitches 0..127
        top = NUM_PITCHES if below is None else max(0, min(NUM_PITCHES, below))
        drawn: list[PolyEvent] = []
        while True:
            if interrupted is not None and interrupted():
                raise Interrupted
            floor = pending[0].pitch if pending else -1  # model notes must be above this
            if len(drawn) >= max_notes or not ((new_notes and floor + 1 < top) or any(floor < q < top for q in cont)):
                if not pending:
                    break
                event = pending.pop(0)  # nothing of the model's can come before it
                stream.feed(event)
                top = min(top, event.pitch)
                continue
            scores = stream.logits if bias is None else stream.logits + bias
            masked = np.full(NUM_POLY_CLASSES, -np.inf, scores.dtype)  # what may come next, the rest -inf
            if len(drawn) >= min_notes or pending:
                masked[STEP_END] = scores[STEP_END]
            if new_notes:
                masked[_NEW0 : _NEW0 + top] = scores[_NEW0 : _NEW0 + top]
            for q in cont:
                if q < top:
                    masked[_CONT0 + q] = scores[_CONT0 + q]
            if pending:  # the given note itself stands for "nothing more above it"
                label = stream.encoder.event_to_label(pending[0])
                masked[label] = scores[label]
            index, _ = sample_class(masked, temperature, rng, top_p)
            event = stream.encoder.label_to_event(index)
            if event[0] == STEP_END or event.pitch <= floor:
                if not pending:
                    break
                event = pending.pop(0)
                stream.feed(event)
                top = min(top, event.pitch)
                continue
            if emit is not None:
                emit(event)
            drawn.append(event)
            stream.feed(event)
            top = event.pitch
        if before_end is not None:
            before_end()
        stream.feed(POLY_STEP_END)
        return drawn + [POLY_STEP_END]

    # -- rendering -----------------------------------------------------------------------------

    def strike(self, event: PolyEvent, tick: int, velocity: int, play: Play) -> None:
        """Play one of the model's events of the step being rendered: NEW_NOTE sounds (ending
        the same pitch first if it sounds), CONTINUED_NOTE keeps a sounding note."""
        if event[0] == NEW_NOTE:
            if event.pitch in self.sounding:
                play(tick, note_off(self.channel, event.pitch))
            play(tick, note_on(self.channel, event.pitch, velocity))
            self.sounding.add(event.pitch)
            self._new.add(event.pitch)
        elif event[0] == CONTINUED_NOTE:
            self._kept.add(event.pitch)

    def close(self, tick: int, play: Play, release: bool = True) -> None:
        """The step being rendered is complete: end the notes it neither struck nor continued
        (``release=False``: a step rendered again, whose note-offs were already sent)."""
        for pitch in sorted(self.sounding - self._new - self._kept) if release else ():
            play(tick, note_off(self.channel, pitch))
            self.sounding.discard(pitch)
        self._new.clear()
        self._kept.clear()

    def render(self, events: list[Hashable], tick: int, velocity: int, play: Play) -> None:
        """Play one step's events at ``tick``: note-offs of the notes the step does not
        continue (or re-strikes) first, then the note-ons."""
        kept = {e.pitch for e in events if e[0] == CONTINUED_NOTE}  # type: ignore[index]
        for pitch in sorted(self.sounding - kept):
            play(tick, note_off(self.channel, pitch))
            self.sounding.discard(pitch)
        for event in events:
            if event[0] == NEW_NOTE:  # type: ignore[index]
                self.strike(event, tick, velocity, play)  # type: ignore[arg-type]
        self._new.clear()
        self._kept.clear()

    def release(self, tick: int, play: Play) -> None:
        for pitch in sorted(self.sounding):
            play(tick, note_off(self.channel, pitch))
        self.forget()

    def forget(self) -> None:
        self.sounding.clear()
        self._new.clear()
        self._kept.clear()
