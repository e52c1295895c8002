"""Call and response, and "continue", for the step-grid families.

The player's notes are fed to the agent's stream step by step while they play (teacher
forcing), so when the call ends the model's state already holds the phrase and the answer's
first step only costs one draw. Timeline, with ``s`` the step whose input just completed:

- idle: nothing is fed; a note-on starts a call on its step.
- listening: step ``s`` is fed. The call ends after ``silence`` steps with no note
  sounding, on the end-call control, or when it reaches ``max_call``. A call shorter
  than ``min_call`` (counted to the end of its last note) is ignored.
- waiting: the steps up to the answer's start (the next step, beat or bar, ``response_quantize``)
  are fed as silence; a note-on resumes the call.
- answering: at step ``s`` the agent samples step ``s + 1`` and schedules it on that step's
  first tick. The answer lasts as long as the call (counted to its last note's end) or
  ``response_bars``. Then, with ``loop`` it plays the same answer again, with ``mutate`` it
  answers its own answer, else it goes idle. A player's note-on cuts the answer at once
  (its notes get their note-offs) and a new call begins.

"continue" is the same with an endless answer: the model keeps playing from the player's last
phrase until the player plays again.
"""

from __future__ import annotations

from typing import Hashable

import mido
import numpy as np

from live.engine.agent import AgentSpec, AgentState, Sink, ticks_per_step
from live.engine.call import AnswersCalls, Call
from live.engine.step_agent import StepAgent
from live.engine.voices import StepInput
from live.models.model import Model


class CallResponse(AnswersCalls, StepAgent):
    """``--mode call-response`` for melody, improv, polyphony and drum models: the call machine
    (``live.engine.call.Call``) in steps."""

    mode = "call-response"
    endless = False  # "continue": the answer goes on until the player plays

    def __init__(
        self, spec: AgentSpec, model: Model, sink: Sink, rng: np.random.Generator, ticks_per_bar: int = 96, ticks_per_beat: int = 24
    ) -> None:
        step_ticks = ticks_per_step(model)
        grid = {"step": 1, "beat": max(1, ticks_per_beat // step_ticks), "bar": max(1, ticks_per_bar // step_ticks)}
        self.call = Call(spec, 1, grid, self.endless)
        super().__init__(spec, model, sink, rng, ticks_per_bar, ticks_per_beat)
        self.last_active = 0  # last step in which the player had a note sounding
        self.answer: list[list[Hashable]] = []  # the current answer's events, step by step
        self.replay: list[list[Hashable]] | None = None  # loop: the answer being repeated
        self.call_log: list[tuple[int, StepInput, frozenset[int]]] = []  # the call's steps: (step, input, held after)

    # -- player --------------------------------------------------------------------------------

    def note(self, tick: int, msg: mido.Message) -> None:
        super().note(tick, msg)
        if msg.type == "note_on" and msg.velocity > 0 and self.state == AgentState.ANSWERING:
            self.interrupt(tick)

    def interrupt(self, tick: int) -> None:
        """The player plays during an answer: cut it (no note hangs) and listen again."""
        self.sink.cancel(self, tick)
        self.voice.forget()
        self.replay = None
        self.begin(self.step_of(tick))

    def begin(self, step: int) -> None:
        """A call starts at ``step``."""
        self.call.begin(step)
        self.last_active = step
        self.call_log.clear()

    def end_call(self, tick: int) -> None:
        self.call.end_call()

    # -- steps ---------------------------------------------------------------------------------

    def process(self, step: int) -> None:
        got = self.take_input(step)
        if self.state == AgentState.IDLE:
            if not got.onsets:
                return
            self.begin(step)
        if self.state in (AgentState.LISTENING, AgentState.WAITING):
            self.listen(step, got)
        elif self.state == AgentState.ANSWERING:
            self.answer_next(step)

    def listen(self, step: int, got: StepInput) -> None:
        call = self.call
        self.call_log.append((step, got, frozenset(self.held)))
        if not self.retune():
            self.feed(self.voice.player_events(got, self.held), step + 1)
        if got.onsets:  # a new note: the call goes on (even while waiting for the answer)
            self.last_active = step
            self.state = AgentState.LISTENING
        elif self.held and self.state == AgentState.LISTENING:  # a held note keeps the call open
            self.last_active = step
        if self.state == AgentState.LISTENING and self.call_ended(step):
            if call.close(step + 1, self.last_active + 1 - call.call_start):
                self.answer = []
        if self.state == AgentState.WAITING and step + 1 == call.answer_start:
            self.state = AgentState.ANSWERING
            self.answer_next(step)

    def retune(self) -> bool:
        """If the key or register in use moved the transposition, feed the call so far again at
        the new one (the stream starts afresh from the call's first step) and return True.

        A call of 128 steps costs 128 model steps: a few milliseconds, inside the half step of
        look-ahead, so the answer still opens on its grid point."""
        offset = self.tonality.offset()
        if offset == self.voice.offset:
            return False
        self.voice.retune(offset)
        self.stream.reset()
        for s, got, held in self.call_log:
            self.feed(self.voice.player_events(got, set(held)), s + 1)
        self.retunes += 1
        return True

    def call_ended(self, step: int) -> bool:
        """The step rule: ``silence`` steps with nothing sounding, the end-call control, or
        ``max_call``."""
        return self.call.ended(step, self.last_active)

    def answer_next(self, step: int) -> None:
        """Plan step ``step + 1`` of the answer (or end the answer there)."""
        call = self.call
        target = step + 1
        if target >= call.answer_end:
            self.finish_answer(step)
            return
        if self.replay is not None:
            events = self.replay[(target - call.answer_start) % len(self.replay)]
            self.feed(events, target + 1)
        else:  # an answer opens with a note, on its grid point (a performance answer does too)
            events = self.sample_step(target, must_sound=target == call.answer_start)
        self.answer.append(events)
        self.render(events, target)

    def finish_answer(self, step: int) -> None:
        """The answer's last step was ``step``: end its notes, then loop, mutate or rest."""
        self.silence(step + 1)
        next_ = self.call.finish(step + 1, bool(self.answer))
        if next_ == "loop":
            self.replay = self.replay or self.answer
            self.call.answer_end = self.call.answer_start + len(self.replay)
            self.answer = []
            self.answer_next(step)
            return
        self.replay = None
        if next_ == "mutate":
            self.last_active = step  # the "call" (the answer just played) ended with this step
            self.call_log.clear()  # the "call" is the model's own answer, already in its key
            self.answer = []
            if step + 1 == self.call.answer_start:
                self.state = AgentState.ANSWERING
                self.answer_next(step)


class Continue(CallResponse):
    """``--mode continue``: after the player's phrase the model plays on until the player plays again."""

    mode = "continue"
    endless = True
