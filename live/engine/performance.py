"""Performance RNN in the daemon: call-and-response, continue and duet off the step grid.

Performance models speak in events with absolute timing, not steps: NOTE_ON(pitch),
NOTE_OFF(pitch), VELOCITY(bin) and TIME_SHIFT(n) moving time on by n 10 ms steps (see
``live.models.encodings.performance``). The agents here keep the model's clock as a song
position in fractional ticks, ``pos``: the time at the end of everything fed to or sampled
from the stream. A TIME_SHIFT of n steps moves ``pos`` by ``n * 0.01 / seconds_per_tick``
ticks at the tempo of the moment; messages are played at ``(floor(pos), seconds after it)``
(``Out.offset``), so the 10 ms grid survives the tick grid.

Generating ahead: at every tick the agent samples until ``pos`` is ``LOOKAHEAD_SECONDS``
beyond the tick (at most ``MAX_EVENTS_PER_TICK`` events per tick; an agent that falls
behind skips its clock forward to the tick). Rendering: a note-on is held back until the
next time shift, so a note ended at the instant it began (zero length, as Magenta drops
them) is never sent; a re-struck pitch is ended first; a note is cut after
``MAX_NOTE_SECONDS`` (5 s, as Magenta renders performances); every note the agent starts
gets its note-off from the agent. After ``MAX_EVENTS_PER_INSTANT`` events without a time
shift only time shifts may be drawn (a runaway model cannot stall time).

The player (call-response and continue): each note-on / note-off is fed as it arrives, as
TIME_SHIFTs for the time since the stream's end (in 10 ms steps, a gap longer than
``MAX_GAP_SECONDS`` is fed as that long), a VELOCITY event when its velocity bin changes
(dynamics configs) and NOTE_ON / NOTE_OFF. Calls end and answers are placed as in
``live.engine.call_response``: the call ends ``silence`` 16th-steps (6 ticks each)
after the player's last note-off, decided half a step early (``LEAD_TICKS``, the step
agents' look-ahead), by the end-call control, or at ``max_call``; the answer starts on
the first step / beat / bar at or after that point (``response_quantize``) with a note:
until its first note-on the answer may draw no time shift, so its first note sounds exactly
on the grid point. States: idle, listening, waiting, answering (the panel's names). At an
answer's end or a cut the stream's clock may have run ahead of the song (the look-ahead, or
the last time shift crossing the end); ``pos`` is set back to the song there, so the next
call or answer is timed from the song, not from the stream.

Density (``params.density``, 0..1, 0.5 neutral):

- conditioned configs (density / pitch / multi / optional multi): the controls follow what the
  player played: at each of the player's note-ons, the note-ons of the last ``FOLLOW_SECONDS``
  per second (over the span from the oldest of them to now, at least one second) and their
  pitch classes; the values are held in between, so when the player stops they stay (before
  the player plays: Magenta's defaults, 15 notes per second and a flat histogram). The density knob scales the followed
  density by ``2 ** ((density - 0.5) * 2 * DENSITY_OCTAVES)`` (1/8 at 0, 8x at 1): Magenta's
  density bins are an octave apart (1, 2, 4, ... 64 notes per second), so the knob's range is
  six bins. No logit bias is added for these models: the conditioning is the steering.
- unconditioned configs: ``density_bias`` on the "quiet" classes, the TIME_SHIFTs (more
  density: time moves on less often, so more notes and note-offs fit in a second). NOTE_OFF
  is not counted as quiet: biasing it would change note lengths, not how many notes start.

Duet (``--mode duet``): plays continuously from the first tick (state "playing"; after a
stop or panic it is silent and idle, and plays on from the next tick it is given). The
player's notes are *not* fed into the duet's stream: the model plays its own part, and the
player steers it through the conditioning (what they play sets the density and pitch
classes the model is asked for); for unconditioned models only the knobs steer it. Feeding
the player into the stream would interleave two performers in one event stream and pull the
model's clock back to the player's notes, which the model was never trained on.

Continue with a Performance model (``--mode continue``): :class:`PerformanceContinue`, the
call-and-response agent with an answer that never ends by itself (as ``Continue`` is for the
step families): the player's phrase is fed, then the model plays on from it until the player
plays again.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

import mido
import numpy as np

from live.clock.base import TICKS_PER_QUARTER
from live.engine.agent import Agent, AgentSpec, AgentState, Sink, density_bias
from live.engine.call import AnswersCalls, Call
from live.engine.key import Key, KeyFinder
from live.engine.voices.base import ScaleLock
from live.engine.sampling import MASKED
from live.engine.stream import Stream
from live.models.configs import get_config
from live.models.encodings.performance import (
    DEFAULT_NOTE_DENSITY,
    DEFAULT_PITCH_HISTOGRAM,
    NOTE_OFF,
    NOTE_ON,
    NOTES_PER_OCTAVE,
    TIME_SHIFT,
    VELOCITY,
    PerfEvent,
    velocity_bin_to_velocity,
    velocity_to_bin,
)
from live.models.model import Model

LOOKAHEAD_SECONDS = 0.12
"""How far ahead of the current tick the agents sample (seconds)."""
RESTART_LEAD_SECONDS = 0.05
"""Duet: where the stream's clock starts (or restarts, when it fell behind) after the tick being
processed (seconds). That tick's time has passed by the time it is processed, so events placed
on it would go out late (22 ms measured for the first chord); this leaves time to draw them."""
MAX_EVENTS_PER_TICK = 16
"""Most events sampled in one tick (bounds the work per tick: a step of a 512x3 model costs about
0.65 ms here, so at most ~10 ms, half a tick at 120 BPM; steady playing needs one or two)."""
MAX_EVENTS_PER_INSTANT = 24
"""Events without a time shift after which only time shifts may be drawn."""
MAX_NOTE_SECONDS = 5.0
"""Longest note an agent plays (seconds), as Magenta renders performances."""
MAX_GAP_SECONDS = 2.0
"""Longest silence fed to the stream as time shifts (seconds); longer gaps are shortened."""
FOLLOW_SECONDS = 4.0
"""Window over the player's recent notes that conditioned models follow (seconds)."""
DENSITY_OCTAVES = 3.0
"""The density knob scales the followed note density by up to 2**3 either way."""
LEAD_TICKS = 3
"""A call's end is decided this many ticks (half a 16th step) before its silence is complete."""
STEP_TICKS = TICKS_PER_QUARTER // 4  # a 16th step: the unit of silence and max_call
HISTOGRAM_PRIOR = 0.01  # added to every pitch class of the followed histogram

_DENSITY_CONFIGS = (
    "density_conditioned_performance_with_dynamics",
    "multiconditioned_performance_with_dynamics",
    "optional_multiconditioned_performance_with_dynamics",
)
_PITCH_CONFIGS = (
    "pitch_conditioned_performance_with_dynamics",
    "multiconditioned_performance_with_dynamics",
    "optional_multiconditioned_performance_with_dynamics",
)


class PerformanceAgent(Agent):
    """What the Performance agents share: the stream and its clock, conditioning, rendering.

    Attributes:
        stream: the model's event stream.
        pos: song position (fractional ticks) of the end of the stream.
        sounding: pitch -> position (ticks) where a note the agent plays started.
        controls: the control value of every event fed or sampled, in order, when
            ``keep_controls`` is set (tests read it); conditioned models only.
    """

    def __init__(
        self, spec: AgentSpec, model: Model, sink: Sink, rng: np.random.Generator, ticks_per_bar: int = 96, ticks_per_beat: int = 24
    ) -> None:
        super().__init__(spec, model, sink, rng, ticks_per_bar, ticks_per_beat)
        config = get_config(model.config_id)
        if config.family != "performance":
            raise ValueError(f"{model.config_id} is not a Performance RNN model")
        self.steps_per_second = config.steps_per_second or 100
        self.stream = Stream(model, scored=False)
        encoder = self.stream.encoder
        one_hot = getattr(getattr(encoder, "target", encoder), "one_hot", None)
        if one_hot is None:
            raise ValueError(f"{model.config_id}: this encoding cannot be played live")
        self.num_velocity_bins = one_hot.num_velocity_bins
        self.max_shift = one_hot.max_shift_steps
        kinds = np.array([one_hot.decode_event(i).kind for i in range(one_hot.num_classes)])
        self.quiet = np.flatnonzero(kinds == TIME_SHIFT)
        self._only_time = np.where(kinds == TIME_SHIFT, 0.0, MASKED).astype(np.float32)
        self._no_time = np.where((kinds == TIME_SHIFT) | (kinds == NOTE_OFF), MASKED, 0.0).astype(np.float32)
        pitches = np.array([one_hot.decode_event(i).value if k == NOTE_ON else -1 for i, k in enumerate(kinds)])
        self.scale_lock = ScaleLock(pitches)  # on the NOTE_ON classes
        self.key_finder = KeyFinder()  # the player's key, for the scale lock (the model is key-free)
        cid = model.config_id
        self.uses_density = cid in _DENSITY_CONFIGS
        self.uses_histogram = cid in _PITCH_CONFIGS
        self.optional = cid.startswith("optional_")
        self.conditioned = self.uses_density or self.uses_histogram
        # the player's recent note-ons, for conditioning: (tick, pitch)
        self.heard: deque[tuple[int, int]] = deque()
        self.followed_density = DEFAULT_NOTE_DENSITY
        self.followed_histogram: tuple[float, ...] = tuple(DEFAULT_PITCH_HISTOGRAM)
        self.keep_controls = False
        self.controls: list[Any] = []
        # the stream and its clock
        self.pos = 0.0
        self.stream_sounding: set[int] = set()  # pitches sounding as the stream has it
        self.velocity_bin = 0  # the stream's current velocity bin (0: none yet)
        self.since_shift = 0  # events since the last time shift
        self.need_note = False  # no time shift may be drawn before the next note-on
        self.gen_end = math.inf  # position beyond which nothing is played
        # rendering
        self.velocity = spec.params.velocity
        self.sounding: dict[int, float] = {}
        self.pending_on: dict[int, int] = {}  # note-ons at ``pos`` waiting for a time shift: pitch -> velocity
        # prime the stream as Magenta does without a primer: a second of silence
        self._feed(PerfEvent(TIME_SHIFT, self.max_shift))
        self.since_shift = 0

    # -- time -----------------------------------------------------------------------------------

    def shift_ticks(self, steps: int) -> float:
        """Ticks in ``steps`` 10 ms steps at the current tempo."""
        return steps / self.steps_per_second / self.seconds_per_tick

    def lookahead_ticks(self) -> float:
        return LOOKAHEAD_SECONDS / self.seconds_per_tick

    def at(self, position: float) -> tuple[int, float]:
        """(tick, seconds after it) of song position ``position`` (fractional ticks)."""
        tick = math.floor(position + 1e-9)
        return tick, max(0.0, position - tick) * self.seconds_per_tick

    def play_at(self, position: float, msg: mido.Message) -> None:
        tick, offset = self.at(position)
        self.play(tick, msg, offset=offset)

    # -- conditioning ---------------------------------------------------------------------------

    def hear(self, tick: int, msg: mido.Message) -> None:
        """Note the player's note-on and update the followed density and pitch classes: over
        the note-ons of the last FOLLOW_SECONDS, the span from the oldest to now (at least a
        second). They change only when the player plays, so they hold when the player stops."""
        if not (msg.type == "note_on" and msg.velocity > 0):
            return
        self.key_finder.observe(msg.note)
        self.heard.append((tick, msg.note))
        window = FOLLOW_SECONDS / self.seconds_per_tick
        while self.heard[0][0] < tick - window:
            self.heard.popleft()
        span = max((tick - self.heard[0][0]) * self.seconds_per_tick, 1.0)
        self.followed_density = len(self.heard) / span
        counts = [HISTOGRAM_PRIOR] * NOTES_PER_OCTAVE
        for _, pitch in self.heard:
            counts[pitch % NOTES_PER_OCTAVE] += 1.0
        self.followed_histogram = tuple(counts)

    def target_density(self) -> float:
        """The note density (notes per second) asked of a conditioned model: the followed one
        scaled by the density knob."""
        return self.followed_density * 2.0 ** ((self.params.density - 0.5) * 2.0 * DENSITY_OCTAVES)

    def control(self) -> Any:
        """The control fed with the next event (None for unconditioned models)."""
        if not self.conditioned:
            return None
        values: list[Any] = []
        if self.uses_density:
            values.append(self.target_density())
        if self.uses_histogram:
            values.append(self.followed_histogram)
        control = (False, tuple(values)) if self.optional else tuple(values)
        if self.keep_controls:
            self.controls.append(control)
        return control

    # -- the stream -----------------------------------------------------------------------------

    def _track(self, event: PerfEvent) -> None:
        if event.kind == TIME_SHIFT:
            self.since_shift = 0
            return
        self.since_shift += 1
        if event.kind == NOTE_ON:
            self.stream_sounding.add(event.value)
        elif event.kind == NOTE_OFF:
            self.stream_sounding.discard(event.value)
        elif event.kind == VELOCITY:
            self.velocity_bin = event.value

    def _feed(self, event: PerfEvent) -> None:
        self.stream.feed(event, self.control())
        self._track(event)

    def advance_to(self, position: float) -> None:
        """Feed time shifts moving the stream's clock to ``position`` (nearest 10 ms step;
        gaps over MAX_GAP_SECONDS are fed as that long); nothing if it is there already."""
        steps = round((position - self.pos) * self.seconds_per_tick * self.steps_per_second)
        if steps <= 0:
            return
        longest = round(MAX_GAP_SECONDS * self.steps_per_second)
        if steps > longest:
            steps, self.pos = longest, float(position)
        else:
            self.pos += self.shift_ticks(steps)
        while steps > 0:
            shift = min(steps, self.max_shift)
            self._feed(PerfEvent(TIME_SHIFT, shift))
            steps -= shift

    def feed_player(self, tick: int, msg: mido.Message) -> None:
        """Feed the player's note-on / note-off at ``tick`` (teacher forcing)."""
        self.advance_to(tick)
        if msg.type == "note_on" and msg.velocity > 0:
            if self.num_velocity_bins:
                b = velocity_to_bin(msg.velocity, self.num_velocity_bins)
                if b != self.velocity_bin:
                    self._feed(PerfEvent(VELOCITY, b))
            self._feed(PerfEvent(NOTE_ON, msg.note))
        elif msg.note in self.stream_sounding:
            self._feed(PerfEvent(NOTE_OFF, msg.note))

    def close_stream_notes(self) -> None:
        """Tell the stream that the notes it has sounding ended (after a cut or an answer's end)."""
        for pitch in sorted(self.stream_sounding):
            self._feed(PerfEvent(NOTE_OFF, pitch))

    @property
    def key(self) -> Key | None:
        """The player's key in use (``--key`` or found from the notes heard), or None."""
        return self.spec.key or self.key_finder.key

    def scale_bias(self) -> np.ndarray | None:
        """The scale lock on NOTE_ON classes (see ``Params.scale_lock``), or None."""
        key = self.key
        return None if key is None else self.scale_lock.bias(key.scale, self.params.scale_lock)

    def bias(self) -> np.ndarray | None:
        """The logit bias for the next draw: density (unconditioned models), the scale lock and
        the masks."""
        bias = None if self.conditioned else density_bias(self.quiet, self.model.num_classes, self.params.density)
        scale = self.scale_bias()
        if scale is not None:
            bias = scale if bias is None else bias + scale
        mask = None
        if self.need_note:
            mask = self._no_time
        elif self.since_shift >= MAX_EVENTS_PER_INSTANT:
            mask = self._only_time
        if mask is None:
            return bias
        return mask if bias is None else bias + mask

    def next_event(self) -> PerfEvent:
        """Draw the next event (appending it to the stream)."""
        event, _ = self.stream.sample(self.rng, self.params.temperature, self.control(), self.bias(), self.params.top_p)
        self._track(event)
        return event

    def generate(self, until: float) -> int:
        """Draw and play events until the stream's clock reaches ``until`` (ticks), at most
        MAX_EVENTS_PER_TICK of them. Returns how many were drawn."""
        count = 0
        while self.pos < until and count < MAX_EVENTS_PER_TICK:
            self.render(self.next_event())
            count += 1
        return count

    # -- rendering ------------------------------------------------------------------------------

    def render(self, event: PerfEvent) -> None:
        """Play ``event`` at the stream's clock (see the module docstring)."""
        kind, value = event
        if kind == TIME_SHIFT:
            self.flush_pending()
            self.pos += self.shift_ticks(value)
            self.cap_notes(min(self.pos, self.gen_end))
        elif kind == VELOCITY:
            if self.num_velocity_bins:
                self.velocity = max(1, min(127, velocity_bin_to_velocity(value, self.num_velocity_bins)))
        elif kind == NOTE_ON:
            self.need_note = False
            if value in self.sounding:  # re-struck: end it first
                self.note_off(value, self.pos)
            self.pending_on[value] = self.velocity
        elif kind == NOTE_OFF and self.pending_on.pop(value, None) is None and value in self.sounding:
            self.note_off(value, self.pos)

    def flush_pending(self) -> None:
        """Play the note-ons held back at the current position."""
        for pitch, velocity in self.pending_on.items():
            self.play_at(self.pos, mido.Message("note_on", channel=self.channel, note=pitch, velocity=velocity))
            self.sounding[pitch] = self.pos
        self.pending_on.clear()

    def note_off(self, pitch: int, position: float) -> None:
        self.sounding.pop(pitch, None)
        self.play_at(position, mido.Message("note_off", channel=self.channel, note=pitch, velocity=0))

    def cap_notes(self, position: float) -> None:
        """End the notes that are MAX_NOTE_SECONDS long by ``position``, at that length."""
        longest = MAX_NOTE_SECONDS / self.seconds_per_tick
        for pitch, start in list(self.sounding.items()):
            if start + longest <= position:
                self.note_off(pitch, start + longest)

    def release(self, position: float) -> None:
        """End every note the agent plays at ``position``; held-back note-ons are dropped."""
        self.pending_on.clear()
        for pitch in sorted(self.sounding):
            self.note_off(pitch, position)

    def forget(self) -> None:
        """Forget what is sounding (a cancel ended it)."""
        self.sounding.clear()
        self.pending_on.clear()

    def stop(self, tick: int) -> None:
        super().stop(tick)
        self.forget()
        self.close_stream_notes()
        self.need_note = False
        self.pos = max(self.pos, float(tick))


class PerformanceCallResponse(AnswersCalls, PerformanceAgent):
    """``--mode call-response`` with a Performance RNN model: polyphonic, expressive answers.

    The call machine (``live.engine.call.Call``) in ticks (the player's notes keep their own
    timing, to 10 ms). ``loop`` replays the last answer's events (fed to the stream again),
    ``mutate`` answers the last answer.
    """

    mode = "call-response"
    endless = False

    def __init__(
        self, spec: AgentSpec, model: Model, sink: Sink, rng: np.random.Generator, ticks_per_bar: int = 96, ticks_per_beat: int = 24
    ) -> None:
        self.call = Call(spec, STEP_TICKS, {"step": STEP_TICKS, "beat": ticks_per_beat, "bar": ticks_per_bar}, self.endless)
        super().__init__(spec, model, sink, rng, ticks_per_bar, ticks_per_beat)
        self.held: set[int] = set()  # pitches the player holds
        self.last_release = 0  # tick at which the player last let go of everything
        self.answer: list[PerfEvent] = []  # the current answer's drawn events
        self.replay: list[PerfEvent] | None = None  # loop: the answer being repeated
        self.replay_index = 0

    # -- player ---------------------------------------------------------------------------------

    def note(self, tick: int, msg: mido.Message) -> None:
        onset = msg.type == "note_on" and msg.velocity > 0
        self.hear(tick, msg)
        if onset and self.state == AgentState.ANSWERING:
            self.interrupt(tick)
        if onset:
            self.held.add(msg.note)
            if self.state == AgentState.IDLE:
                self.call.begin(tick)
            elif self.state == AgentState.WAITING:
                self.state = AgentState.LISTENING
        elif msg.note in self.held:
            self.held.discard(msg.note)
            if not self.held:
                self.last_release = tick
        if self.state == AgentState.LISTENING:
            self.feed_player(tick, msg)

    def interrupt(self, tick: int) -> None:
        """The player plays during an answer: cut it (no note hangs) and listen again."""
        self.sink.cancel(self, tick)
        self.forget()
        self.close_stream_notes()
        self.need_note = False
        self.replay = None
        self.gen_end = math.inf
        self.pos = float(tick)  # the stream ran ahead of the cut; the call is timed from here
        self.call.begin(tick)

    def end_call(self, tick: int) -> None:
        self.call.end_call()

    # -- ticks ------------------------------------------------------------------------------------

    def tick(self, tick: int) -> None:
        started = time.perf_counter()
        if self.state == AgentState.LISTENING:
            self.listen(tick)
        if self.state == AgentState.WAITING and tick + self.lookahead_ticks() >= self.call.answer_start:
            self.start_answer()
        if self.state == AgentState.ANSWERING:
            self.answer_tick(tick)
        self.step_seconds = time.perf_counter() - started

    def listen(self, tick: int) -> None:
        """The tick rule: ``silence`` steps after the player let go of everything (decided
        ``LEAD_TICKS`` early, as the step agents decide), the end-call control, or ``max_call``."""
        call = self.call
        silent = not self.held and tick >= self.last_release + self.spec.silence * STEP_TICKS - LEAD_TICKS
        if not (call.end_call_asked or silent or call.too_long(tick - call.call_start)):
            return
        length = (tick if self.held else self.last_release) - call.call_start
        if call.close(tick + LEAD_TICKS, max(length, 1)):
            self.answer = []

    def start_answer(self) -> None:
        """Bring the stream's clock to the answer's start and begin answering."""
        self.advance_to(self.call.answer_start)
        self.pos = float(self.call.answer_start)  # the first note exactly on the grid point
        self.gen_end = float(self.call.answer_end)
        self.need_note = self.replay is None
        self.replay_index = 0
        self.state = AgentState.ANSWERING

    def next_event(self) -> PerfEvent:
        if self.replay is not None and self.replay_index < len(self.replay):
            event = self.replay[self.replay_index]
            self.replay_index += 1
            self._feed(event)
        else:
            event = super().next_event()
        self.answer.append(event)
        return event

    def answer_tick(self, tick: int) -> None:
        if self.pos < tick:  # fell behind: skip ahead
            self.pos = float(tick)
        self.generate(min(tick + self.lookahead_ticks(), self.gen_end))
        if self.pos >= self.gen_end:
            self.finish_answer()

    def finish_answer(self) -> None:
        """The answer reached its end: end its notes there, then loop, mutate or rest."""
        end = self.call.answer_end
        self.release(float(end))
        self.close_stream_notes()
        self.need_note = False
        next_ = self.call.finish(end, bool(self.answer))
        if next_ == "loop":
            self.replay = self.replay or self.answer
            self.answer = []
            self.start_answer()
            return
        self.replay = None
        self.answer = []
        if next_ == "rest":
            self.gen_end = math.inf

    def stop(self, tick: int) -> None:
        super().stop(tick)
        self.held.clear()
        self.replay = None
        self.call.end_call_asked = False
        self.gen_end = math.inf


class PerformanceContinue(PerformanceCallResponse):
    """``--mode continue`` with a Performance model: after the player's phrase the model plays
    on from it until the player plays again."""

    mode = "continue"
    endless = True


class Duet(PerformanceAgent):
    """``--mode duet``: Performance RNN plays continuously; the player steers its conditioning
    (see the module docstring)."""

    mode = "duet"

    def note(self, tick: int, msg: mido.Message) -> None:
        self.hear(tick, msg)

    def tick(self, tick: int) -> None:
        started = time.perf_counter()
        self.state = AgentState.PLAYING
        if self.pos <= tick:  # the start, or fell behind: the clock skips to just after now
            self.pos = tick + RESTART_LEAD_SECONDS / self.seconds_per_tick
        self.generate(tick + self.lookahead_ticks())
        self.step_seconds = time.perf_counter() - started
