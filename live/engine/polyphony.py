"""Polyphony RNN in the daemon: the polyphonic voice (call and response) and ``--mode harmonize``.

Polyphony events (``live.models.encodings.polyphony``): a step is its notes in descending
pitch, ``NEW_NOTE(p)`` for a note struck on the step and ``CONTINUED_NOTE(p)`` for one held
from the step before, then ``STEP_END``. The model runs once per event, so one step costs as
many model steps as it has notes, plus one.

Sampling a step (:meth:`PolyVoice.sample_step`) draws events until ``STEP_END`` and masks what
cannot happen: ``START`` and ``END``; a ``CONTINUED_NOTE`` of a pitch the voice is not
sounding; any note event not *below* the step's previous one (the training data is always in
descending pitch, so this also forbids a second event of one pitch in a step); at most
:data:`MAX_NOTES_PER_STEP` of the model's notes per step. Given notes that must be in the
step (the player's), the model's draws are merged with them in pitch order: a draw above the
next given note is the model's; a draw at or below it, or ``STEP_END``, means "nothing more
above it", and the given note is fed instead.

Density: the quiet events are ``STEP_END`` and ``CONTINUED_NOTE`` (both play nothing new).
Lowering density makes a step likelier to end before more notes are struck and held notes
likelier to be held rather than re-struck; raising it does the opposite, so notes per bar
follow the knob (see tests/engine/test_polyphony.py).

Harmonize (:class:`Harmonize`): the player's melody is the top voice and the model adds the
voices below it, on the step grid, as the melody is played:

- A player's note-on whose step is not yet fed opens that step at once (its step: the nearest
  step start; at a step's mid-point, the earlier step while that one is not yet fed): the steps
  before it are completed, the player's events for the step are fed (``NEW_NOTE(p)`` first,
  with anything the player holds), then the model's voices for the step are sampled below
  ``p`` and sent immediately (``Out.now``) as they are drawn, followed by ``STEP_END``. The
  harmony leaves within one model step per note of the player's note. Every melody onset gets
  at least one voice below it, struck or continued (``STEP_END`` is masked until the model has
  put one note in the step); density decides how many more.
- More note-ons in an open step (a chord, a grace note) re-open it: the stream is rewound to
  the step's start and the step is fed again with every note the player struck in it, the
  harmony already sent kept as it is (teacher-forced); the model may add notes in the gaps,
  below the highest note struck. A harmony note on a pitch the player then strikes ends.
  The step closes for good at its mid-point (its input is complete); a note-on after that,
  or after :data:`MAX_REOPENS` re-opens, counts on the next step (no harmony of its own).
- A step in which the player strikes nothing is fed at its mid-point (``StepAgent.tick``):
  the player's held notes continue, the model may only continue or end its own notes (no new
  harmony without a melody onset), and its note-offs are sent at that tick, half a step after
  the step's start (only then is it known that no melody note comes).
- Harmony notes end when the model stops continuing them; at a melody onset the ones at or
  above the new melody note end (the melody is the top voice); and they never outlast the
  player: in a step where the player sounds nothing, every harmony note ends.
- After ``silence`` steps with nothing sounding the agent goes idle and stops feeding
  the stream (the gap is not fed: the next onset continues the stream where it stopped).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import mido
import numpy as np

from live.engine.agent import AgentSpec, AgentState, Sink
from live.engine.step_agent import StepAgent
from live.engine.stream import Stream
from live.engine.voices.polyphony import Interrupted, PolyVoice
from live.messages import note_off
from live.models.encodings.polyphony import (
    CONTINUED_NOTE,
    NEW_NOTE,
    POLY_START,
    PolyEvent,
)
from live.models.model import Model

MAX_REOPENS = 3
"""Harmonize: how many more note-ons may re-open a step after its first (a four-note chord);
later ones in that step count on the next step."""


LOOKAHEAD_SPAN = 12
"""Harmonize: the model steps of the player's likely next note-ons are worked out ahead
(``Stream.lookahead``) for every pitch within this many semitones of the last melody note."""

REHEARSE_SECONDS = 10.0
"""Harmonize: the rehearsal (``Harmonize.keep_warm``) runs while the player's last note-on is at
most this many seconds old; before the first note and after a longer rest it does not (the
first note after it finds a colder CPU: about 0.5 ms more)."""

LOOKAHEAD_CHAIN = 3
"""Harmonize: after each likely note-on, the lookahead also works out the continuations of up
to this many notes sounding below it (one model step each, none of them sends a note)."""


@functools.lru_cache(maxsize=256)
def likely_openings(last: int, held: frozenset[int], sounding: frozenset[int]) -> tuple[tuple[PolyEvent, ...], ...]:
    """How a step that a melody note opens is likely to begin, as paths of events for
    ``Stream.lookahead``, likeliest first. For each pitch ``p`` within LOOKAHEAD_SPAN semitones
    of the ``last`` melody note, nearest first: ``NEW_NOTE(p)``, the player having let go of
    the notes it ``held``; and where it holds any, the same with them still held, as in a
    legato line (the ``CONTINUED_NOTE`` of each one above ``p`` before ``NEW_NOTE(p)``). After
    each opening, the continuations of the highest LOOKAHEAD_CHAIN notes sounding below ``p``
    (the harmony's ``sounding``, and the player's where still held), one by one from the top:
    a continuation sends nothing, so a harmony note struck after it would wait for those steps."""
    pitches = sorted(range(max(0, last - LOOKAHEAD_SPAN), min(127, last + LOOKAHEAD_SPAN) + 1), key=lambda p: (abs(p - last), p))
    paths: list[tuple[PolyEvent, ...]] = []
    for p in pitches:
        let_go = ((PolyEvent(NEW_NOTE, p),), sounding - held)
        still_held = (tuple(PolyEvent(CONTINUED_NOTE, q) for q in sorted((q for q in held if q > p), reverse=True)) + let_go[0], sounding | held)
        for head, below in (let_go, still_held) if held else (let_go,):
            chain = tuple(PolyEvent(CONTINUED_NOTE, q) for q in sorted((q for q in below if q < p), reverse=True)[:LOOKAHEAD_CHAIN])
            paths += [head + chain[:k] for k in range(len(chain) + 1)]
    return tuple(dict.fromkeys(paths))  # once each


class _Mark:
    """Where a stream stood at a step's start, to feed the step again (a chord's later notes).

    Polyphony's encoder keeps no features beyond its event list, so truncating the list and
    restoring the recurrent state and logits rewinds the stream exactly, without copying the
    session's whole history (as ``Stream.fork`` would). Nor the state: a model step makes a
    new one and new logits and never writes into the old (``live.models.cells.State``)."""

    def __init__(self, stream: Stream) -> None:
        self.length = len(stream.encoder.events)
        self.state = stream.state
        self.logits = stream.logits
        self.log_likelihood = stream.log_likelihood

    def restore(self, stream: Stream) -> None:
        del stream.encoder.events[self.length :]
        stream.state = self.state
        stream.logits = self.logits
        stream.log_likelihood = self.log_likelihood


class Harmonize(StepAgent):
    """``--mode harmonize``: Polyphony RNN adds voices below the player's melody as it is played
    (see the module's docstring for the rules)."""

    mode = "harmonize"

    def __init__(
        self, spec: AgentSpec, model: Model, sink: Sink, rng: np.random.Generator, ticks_per_bar: int = 96, ticks_per_beat: int = 24
    ) -> None:
        super().__init__(spec, model, sink, rng, ticks_per_bar, ticks_per_beat)
        assert isinstance(self.voice, PolyVoice)
        self.poly: PolyVoice = self.voice
        self.open: int | None = None  # the step opened by a note-on whose mid-point has not come
        self.mark: _Mark | None = None  # the stream at the open step's start
        self.open_struck: list[int] = []  # the player's pitches struck in the open step
        self.open_base: tuple[set[int], set[int]] = (set(), set())  # the voice's sounding and heard before it
        self.open_model: list[PolyEvent] = []  # the model's note events in the open step
        self.reopens = 0  # times the open step was re-opened
        self._rehearsal_rng = np.random.default_rng(0)  # keep_warm's draws, never the agent's
        self.rehearsals_interrupted = 0  # rehearsals that gave way to input
        self.quiet_steps = 0  # consecutive fed steps with nothing sounding
        self.harmony_seconds = 0.0  # the last note-on's time from arrival to its harmony sent
        self.last_pitch = 72  # the player's last melody note (where to look ahead from)
        self.last_note_at = -math.inf  # perf_counter seconds of the player's last note-on

    # -- the player's side -----------------------------------------------------------------------

    def nearest_step(self, tick: int) -> int:
        """The step whose start is nearest to ``tick``. A tick half way between two starts (a
        step's mid-point) goes to the earlier step while that one is still open for input: the
        daemon rounds a note's time to the nearest tick, so a note up to half a tick before the
        mid-point comes with the mid-point's tick, maybe before the clock has handed that tick
        over, and handing it to the later step would first cost the earlier step's model steps,
        before the harmony (a tenth of the notes, played at random)."""
        step = (tick + self.step_ticks // 2) // self.step_ticks
        if self.step_ticks % 2 == 0 and tick % self.step_ticks == self.step_ticks // 2 and step - 1 > self.processed:
            return step - 1
        return step

    def step_of(self, tick: int) -> int:
        step = self.nearest_step(tick)
        if step == self.open:
            return step
        return max(step, self.processed + 1)

    def note(self, tick: int, msg: mido.Message) -> None:
        """A player's note: a note-on is harmonized at once, with the key found before it; the
        key finder hears it after the harmony has left (its update would delay the harmony)."""
        if not self.record(tick, msg):
            return
        started = time.perf_counter()
        try:
            step = self.nearest_step(tick)
            if step == self.open:
                if self.reopens >= MAX_REOPENS:
                    return  # counts on the next step
                self.reopens += 1
                self.reopen(step, tick)
            elif step > self.processed:
                self.open_step(step, tick, msg.note)
            else:
                return  # its step is closed: it counts on the next one (no harmony of its own)
            self.harmony_seconds = time.perf_counter() - started
        finally:
            self.tonality.observe(msg.note)
            self.last_pitch = msg.note
            self.last_note_at = started

    # -- steps -----------------------------------------------------------------------------------

    def bias(self) -> np.ndarray | None:
        """Density and scale lock (the key found from the melody), as ``sampling_bias``."""
        return self.sampling_bias(self.processed + 1)

    def now_play(self, tick: int) -> Callable[[int, mido.Message], None]:
        return lambda _tick, msg: self.play(tick, msg, now=True)

    def open_step(self, step: int, tick: int, pitch: int) -> None:
        """A note-on of ``pitch`` opens ``step``: feed the player's events and send the harmony."""
        if self.state == AgentState.IDLE:
            self.take_input(step - 1)
            self.state = AgentState.PLAYING
            if not self.poly.started:
                self.stream.feed(POLY_START)
                self.poly.started = True
        else:
            for k in range(self.processed + 1, step):
                self.process(k)
        self.processed = step - 1
        msgs = self.take_input(step)
        self.open, self.mark, self.reopens = step, _Mark(self.stream), 0
        self.open_base = (set(self.poly.sounding), set(self.poly.heard))
        self.open_struck = [p for p, _ in msgs.onsets]
        self.open_model = []
        self.feed_open_step(tick, pitch, forced=[])

    def reopen(self, step: int, tick: int) -> None:
        """Another note-on in the open ``step``: feed the step again with all the player's notes,
        the harmony already sent kept."""
        assert self.mark is not None
        msgs = self.take_input(step)
        self.open_struck += [p for p, _ in msgs.onsets]
        self.mark.restore(self.stream)
        sounding_before, heard_before = self.open_base
        self.poly.heard = set(heard_before)
        forced = [e for e in self.open_model if e.pitch not in self.open_struck]
        for e in self.open_model:  # the player struck a pitch the harmony plays: it is the player's now
            if e.pitch in self.open_struck and e.pitch in self.poly.sounding:
                self.poly.sounding.discard(e.pitch)
                self.play(tick, note_off(self.channel, e.pitch), now=True)
        continuable = sounding_before & self.poly.sounding
        self.feed_open_step(tick, max(self.open_struck), forced, continuable)

    def feed_open_step(self, tick: int, top: int, forced: list[PolyEvent], continuable: set[int] | None = None) -> None:
        """Feed the open step (the player's events merged with ``forced`` model events and the
        model's draws below ``top``) and send the new harmony at once."""
        player = self.poly.player_step(self.open_struck, self.held | set(self.open_struck))
        given = sorted(player + forced, key=lambda e: (-e.pitch, e[0] == NEW_NOTE))
        play = self.now_play(tick)
        velocity = self.params.velocity
        drawn = self.poly.sample_step(
            self.stream, self.rng, self.params.temperature, self.bias(), given, below=top, top_p=self.params.top_p,
            continuable=(self.poly.sounding if continuable is None else continuable) - set(self.open_struck),
            emit=lambda e: self.poly.strike(e, tick, velocity, play),
            before_end=lambda: self.poly.close(tick, play, release=not forced),
            min_notes=0 if forced else 1,
        )
        self.open_model = sorted(forced + drawn[:-1], key=lambda e: -e.pitch)
        self.processed = self.open
        self.quiet_steps = 0
        self.stream.prepare()  # the harmony has left: half the next step's work, before it is due

    def tick(self, tick: int) -> None:
        if tick % self.step_ticks == self.step_ticks // 2 and tick // self.step_ticks == self.open:
            self.open = self.mark = None  # the open step's input window has closed
        super().tick(tick)

    def process(self, step: int) -> None:
        """Step ``step`` had no melody onset of its own: the player's held notes continue, the
        harmony may only continue or end (note-offs at this tick, the step's mid-point)."""
        msgs = self.take_input(step)
        if self.state == AgentState.IDLE:
            return
        tick = step * self.step_ticks + self.step_ticks // 2
        struck = [p for p, _ in msgs.onsets]  # note-ons that came after their step had closed
        player = self.poly.player_step(struck, self.held)
        continuable = self.poly.sounding if (self.held or struck) else set()
        drawn = self.poly.sample_step(
            self.stream, self.rng, self.params.temperature, self.bias(), player, new_notes=False, continuable=continuable,
            top_p=self.params.top_p,
        )
        self.poly.render(drawn, tick, self.params.velocity, self.play)
        self.stream.prepare()  # half the work of the next note's model step, before it comes
        if self.held or self.poly.sounding or struck:
            self.quiet_steps = 0
        else:
            self.quiet_steps += 1
            if self.quiet_steps >= self.spec.silence:
                self.state = AgentState.IDLE

    def stop(self, tick: int) -> None:
        super().stop(tick)
        self.poly.heard.clear()
        self.open = self.mark = None
        self.quiet_steps = 0

    def keep_warm(self, interrupted: Callable[[], bool] | None = None) -> None:
        """Between notes, make the next one cheap; what the agent plays is not changed.

        First the model steps of the likely next note-ons (``likely_openings``) are worked
        out ahead (``Stream.lookahead``, once per stream position): the player's note then
        costs no model step before its harmony is drawn (the stream's START is fed before
        the first note for that). Then, while the player plays (a note-on in the last
        REHEARSE_SECONDS), as a player's note is answered on a CPU gone cold since the last one
        (measured: 1.7 ms per note-on after 0.25 s idle, 0.6 ms warm), one is rehearsed: a
        note harmonized on the stream, which is then rewound (``_Mark``), with a random
        generator of the rehearsal's own. Not while a step is open (its notes may still come).
        Both give way between model steps once ``interrupted`` says input waits: a note that
        came meanwhile waits one model step, not the whole work."""
        if not self.poly.started:  # the stream's first event, as the first note would feed it
            self.stream.feed(POLY_START)
            self.poly.started = True
        if self.open is not None:
            self.warm_up()
            return
        held = frozenset(self.held & self.poly.heard)  # what the player's next step continues
        openings = likely_openings(self.last_pitch, held, frozenset(self.poly.sounding))
        if not self.stream.lookahead(openings, interrupted):
            self.rehearsals_interrupted += 1
            return
        if time.perf_counter() - self.last_note_at > REHEARSE_SECONDS:
            return  # nobody plays: a daemon that waits costs nothing
        mark = _Mark(self.stream)
        try:
            self.poly.sample_step(
                self.stream, self._rehearsal_rng, self.params.temperature, self.bias(), [PolyEvent(NEW_NOTE, self.last_pitch)],
                below=self.last_pitch, continuable=set(), min_notes=1, interrupted=interrupted,
            )
        except Interrupted:
            self.rehearsals_interrupted += 1
        finally:
            mark.restore(self.stream)
