"""``--mode vary`` and ``--mode morph``: a MusicVAE answers the player's phrase.

The agent listens like call-and-response (``live.engine.call.Call``: the same silence rule,
end-call control, ``min_call``/``max_call``, answer grid, ``response_bars``, loop and mutate),
on a sixteenth-note grid. It keeps the call's notes as (start step, end step, pitch). When the
call ends, the call is cut into two-bar windows from the bar line before its first note, and:

- vary: each window is encoded, and the answer decodes a code ``(1 - strays) * mu + strays * e``
  (``e`` from the prior): at ``strays`` 0 the call re-voiced, at 1 a free sample, between a
  variation that strays that far from the call;
- morph: the answer walks from the previous call's code to this one's in ``morph_steps``
  two-bar phrases (spherical interpolation; the last is this call re-voiced), then the next call
  walks on from this one; the answer lasts the whole walk (unless ``response_bars`` says
  otherwise). The first call has no previous one: its answer is a variation.

Every phrase is decoded at ``temperature``; the scale lock keeps the pitch classes outside the
key the player plays in (``live.engine.key``) from being drawn, as the melody agents' does. A
MusicVAE is key-free (it trained on every transposition) and answers in the call's register, so
nothing is transposed. The answer opens with its first note on the answer's grid point (leading
rests of the decoded phrase are skipped) and lasts as long as the call or ``response_bars``.
All the decoding happens once, when the call ends: one batch of windows or phrases, a few
milliseconds (benchmarks/RESULTS.md, "MusicVAE"), inside the half step of look-ahead.
"""

from __future__ import annotations

import mido
import numpy as np

from live.clock.base import TICKS_PER_QUARTER
from live.engine.agent import Agent, AgentSpec, AgentState, OnSteps, Sink
from live.engine.call import AnswersCalls, Call
from live.engine.key import Key, Tonality
from live.engine.voices.base import ScaleLock
from live.models.vae import FIRST_PITCH_CLASS, MusicVae, classes_notes, melody_classes, slerp

STEP_TICKS = TICKS_PER_QUARTER // 4  # a sixteenth note

Note = tuple[int, int, int]  # (start step, end step, pitch)


class VaeAgent(AnswersCalls, OnSteps, Agent):
    """What vary and morph share: the call, its notes, the answer's plan and its playing."""

    mode = "?"
    step_ticks = STEP_TICKS  # as every step-grid agent says its step

    def __init__(self, spec: AgentSpec, model: MusicVae, sink: Sink, rng: np.random.Generator,
                 ticks_per_bar: int = 96, ticks_per_beat: int = 24) -> None:
        self.steps_per_bar = max(1, ticks_per_bar // STEP_TICKS)
        grid = {"step": 1, "beat": max(1, ticks_per_beat // STEP_TICKS), "bar": self.steps_per_bar}
        self.call = Call(spec, 1, grid, False)
        super().__init__(spec, model, sink, rng, ticks_per_bar, ticks_per_beat)
        self.vae = model
        self.tonality = Tonality(spec.key, None, model.config.min_pitch, model.config.max_pitch + 1, False)
        self.inputs: dict[int, list[tuple[int, int]]] = {}  # step -> (pitch, velocity) the player played
        self.processed = -1
        self.last_active = 0
        self.call_notes: list[Note] = []  # the call's finished notes
        self.open_notes: dict[int, int] = {}  # pitch -> start step of the player's sounding notes
        self.plan: list[Note] = []  # the answer, steps from its start
        self.sounding: dict[int, int] = {}  # pitch -> end step (absolute) of the answer's sounding notes
        self.previous: np.ndarray | None = None  # morph: the last call's code
        self.morph_at = 0  # morph: phrases of the walk played so far (the panel shows it)
        c = model.config
        label_pitch = [-1] * FIRST_PITCH_CLASS + list(range(c.min_pitch, c.max_pitch + 1))
        self.scale_lock = ScaleLock(np.array(label_pitch))  # the melody agents' scale lock, over the VAE's classes

    # -- the player ----------------------------------------------------------------------------

    @property
    def key(self) -> Key | None:
        return self.tonality.key

    def note(self, tick: int, msg: mido.Message) -> None:
        velocity = msg.velocity if msg.type == "note_on" else 0
        step = self.step_of(tick)
        self.inputs.setdefault(step, []).append((msg.note, velocity))
        if velocity:
            self.tonality.observe(msg.note)
            if self.state == AgentState.ANSWERING:  # the player plays: the answer stops, a call begins
                self.sink.cancel(self, tick)
                self.sounding.clear()
                self.begin(step)

    def begin(self, step: int) -> None:
        self.call.begin(step)
        self.last_active = step
        self.call_notes, self.open_notes = [], {}

    def end_call(self, tick: int) -> None:
        self.call.end_call()

    # -- the clock ----------------------------------------------------------------------------

    def process(self, step: int) -> None:
        played = []
        for s in sorted(k for k in self.inputs if k <= step):
            played += self.inputs.pop(s)
        onsets = [p for p, v in played if v]
        if self.state == AgentState.IDLE and onsets:
            self.begin(step)
        if self.state in (AgentState.LISTENING, AgentState.WAITING):
            self.listen(step, played, bool(onsets))
        elif self.state == AgentState.ANSWERING:
            self.answer_step(step)

    def listen(self, step: int, played: list[tuple[int, int]], onsets: bool) -> None:
        for pitch, velocity in played:
            if pitch in self.open_notes:  # a note-off, or the same key struck again
                self.call_notes.append((self.open_notes.pop(pitch), step, pitch))
            if velocity:
                self.open_notes[pitch] = step
        if onsets:
            self.last_active = step
            self.state = AgentState.LISTENING
        elif self.open_notes and self.state == AgentState.LISTENING:
            self.last_active = step
        call = self.call
        if self.state == AgentState.LISTENING and call.ended(step, self.last_active):
            notes = self.call_notes + [(s, step + 1, p) for p, s in self.open_notes.items()]
            if call.close(step + 1, self.last_active + 1 - call.call_start) and notes:
                self.plan = self.answer_to(notes)
            elif call.state == AgentState.WAITING:
                call.state = AgentState.IDLE
        if self.state == AgentState.WAITING and step + 1 == call.answer_start:
            self.state = AgentState.ANSWERING
            self.answer_step(step)

    # -- the answer ----------------------------------------------------------------------------

    def windows(self, notes: list[Note]) -> np.ndarray:
        """The call as two-bar windows of classes [W, steps], from the bar line before its first note."""
        steps = self.vae.config.steps
        origin = min(s for s, _, _ in notes)
        origin -= origin % self.steps_per_bar
        last = max(e for _, e, _ in notes)
        count = max(1, -(-(last - origin) // steps))
        rows = []
        for w in range(count):
            at = origin + w * steps
            part = [(s - at, e - at, p) for s, e, p in notes if at <= s < at + steps]
            if part or not rows:
                rows.append(melody_classes(part, steps, self.vae.config.min_pitch, self.vae.config.num_classes))
        return np.stack(rows)

    def codes(self, mu: np.ndarray) -> np.ndarray:
        """The codes to decode for the call's codes ``mu`` [W, Z] (vary: one per window)."""
        s = self.params.strays
        return ((1.0 - s) * mu + s * self.rng.standard_normal(mu.shape)).astype(np.float32)

    def bias(self) -> np.ndarray | None:
        """The scale lock as a logit bias over the classes (None: free, or no key yet)."""
        key = self.key
        return self.scale_lock.bias(key.scale if key is not None else None, self.params.scale_lock)

    def answer_to(self, notes: list[Note]) -> list[Note]:
        """Encode the call, decode the answer: its notes, steps from the answer's start."""
        mu, _ = self.vae.encode(self.windows(notes))
        rows = self.vae.decode(self.codes(mu), self.params.temperature, self.rng, bias=self.bias())
        return self.phrases(rows)

    def phrases(self, rows: np.ndarray) -> list[Note]:
        """Decoded rows, one after another, leading rests skipped: (start, end, pitch) from 0."""
        steps = self.vae.config.steps
        out = [(s + i * steps, e + i * steps, p) for i, row in enumerate(rows) for s, e, p in classes_notes(row, self.vae.config.min_pitch)]
        if not out:
            return []
        first = out[0][0]
        return [(s - first, e - first, p) for s, e, p in out]

    def answer_step(self, step: int) -> None:
        """Play what starts and ends at step ``step + 1`` (or end the answer there)."""
        call, target = self.call, step + 1
        for pitch in [p for p, end in self.sounding.items() if end <= target or target >= call.answer_end]:
            del self.sounding[pitch]
            self.play(target * STEP_TICKS, mido.Message("note_off", channel=self.channel, note=pitch, velocity=0))
        if target >= call.answer_end:
            self.finish(step)
            return
        at = target - call.answer_start
        for start, end, pitch in self.plan:
            if start == at and pitch not in self.sounding:
                self.sounding[pitch] = call.answer_start + min(end, call.answer_end - call.answer_start)
                self.play(target * STEP_TICKS, mido.Message("note_on", channel=self.channel, note=pitch,
                                                            velocity=self.params.velocity))

    def finish(self, step: int) -> None:
        next_ = self.call.finish(step + 1, bool(self.plan))
        if next_ == "mutate":  # the answer is the next call
            self.plan = self.answer_to(self.plan) if self.plan else []
        if next_ in ("loop", "mutate") and self.call.answer_start == step + 1:
            self.state = AgentState.ANSWERING
            self.answer_step(step)

    # -- life cycle ----------------------------------------------------------------------------

    def stop(self, tick: int) -> None:
        super().stop(tick)
        self.inputs.clear()
        self.sounding.clear()
        self.open_notes.clear()
        self.processed = -1

    def warm_up(self) -> None:
        """Encode and decode one phrase nobody hears (the first costs many times a later one)."""
        z, _ = self.vae.encode(np.zeros((1, self.vae.config.steps), np.int64))
        self.vae.decode(z, 0.0, np.random.default_rng(0))


class Vary(VaeAgent):
    """``--mode vary``: variations of the call."""

    mode = "vary"


class Morph(VaeAgent):
    """``--mode morph``: from the last call to this one in ``morph_steps`` phrases."""

    mode = "morph"

    def answer_to(self, notes: list[Note]) -> list[Note]:
        mu, _ = self.vae.encode(self.windows(notes)[:1])  # the call's opening two bars
        latest = mu[0]
        if self.previous is None:
            z = self.codes(mu)
        else:
            n = max(1, int(self.params.morph_steps))
            z = np.stack([slerp(self.previous, latest, (k + 1) / n) for k in range(n)])
        self.previous = latest
        self.morph_at = len(z)
        if self.params.response_bars is None:  # the walk is the answer: every phrase of it
            self.call.answer_end = self.call.answer_start + len(z) * self.vae.config.steps
        rows = self.vae.decode(z, self.params.temperature, self.rng, bias=self.bias())
        return self.phrases(rows)
