"""The call-and-response machine every family's agent runs, over its own timeline.

A :class:`Call` holds the states and the decisions of call and response; the agent that owns it
says what its time unit is (steps for the step-grid families, ticks for Performance RNN's 10 ms
world) and does the playing. The states (``AgentState``) and their order:

- ``IDLE``: nothing to answer; the player's first note-on ``begin``\\ s a call.
- ``LISTENING``: the call comes in. The agent decides when it has ended (its silence rule), or
  the end-call control (``end_call``) or the call's longest length ends it; ``close`` then
  ignores a call shorter than the shortest one, or places the answer (``schedule``).
- ``WAITING``: until the answer's start (the next step, beat or bar: ``response_quantize``); a
  note-on from the player resumes the call.
- ``ANSWERING``: the agent plays the answer; at its end ``finish`` says what comes next: the
  same answer again (loop), an answer to the answer (mutate), or rest.
"""

from __future__ import annotations

from live.engine.agent import QUANTIZE, AgentSpec, AgentState, Params, answer_span


class Call:
    """One agent's call-and-response state, in that agent's time unit.

    Args:
        spec: the agent's set-up (``response_quantize``, ``min_call``, ``max_call``)
            and knobs (``response_bars``, ``loop``, ``mutate``).
        unit_per_step: how many of the agent's time units a 16th step is (1 for steps, 6 ticks).
        grid: the answer's start grid, units per "step", "beat" and "bar".
        endless: the answer goes on until the player plays again (``--mode continue``).

    Attributes:
        state: the AgentState (the agent shows it in the panel).
        call_start: the call's first unit; answer_start, answer_end: the answer's span (end
            exclusive); calls_ignored, answers: counters.
    """

    def __init__(self, spec: AgentSpec, unit_per_step: int, grid: dict[str, int], endless: bool) -> None:
        if spec.response_quantize not in QUANTIZE:
            raise ValueError(f"response quantize must be one of {', '.join(QUANTIZE)}, not {spec.response_quantize!r}")
        self.spec = spec
        self.unit_per_step = unit_per_step
        self.grid = grid
        self.endless = endless
        self.state = AgentState.IDLE
        self.call_start = 0
        self.answer_start = 0
        self.answer_end = 0
        self.end_call_asked = False
        self.calls_ignored = 0
        self.answers = 0

    @property
    def params(self) -> Params:
        return self.spec.params

    def begin(self, at: int) -> None:
        """A call starts at ``at`` (the player's note-on while idle, or cutting an answer)."""
        self.state = AgentState.LISTENING
        self.call_start = at
        self.end_call_asked = False

    def end_call(self) -> None:
        """The end-call control: the call being listened to ends at the next decision."""
        if self.state == AgentState.LISTENING:
            self.end_call_asked = True

    def ended(self, at: int, last_active: int) -> bool:
        """Whether the call being listened to has ended at ``at``: ``silence`` units with nothing
        sounding since ``last_active``, the end-call control, or ``max_call``."""
        return self.end_call_asked or at - last_active >= self.spec.silence or self.too_long(at + 1 - self.call_start)

    def too_long(self, length: int) -> bool:
        """Whether a call ``length`` units long has reached ``max_call``."""
        return length >= self.spec.max_call * self.unit_per_step

    def close(self, due: int, length: int) -> bool:
        """The call ended; its answer may start at ``due`` at the earliest. A call of ``length``
        units shorter than ``min_call`` is ignored (idle again: False); otherwise the answer
        is placed (waiting: True)."""
        self.end_call_asked = False
        if length < self.spec.min_call * self.unit_per_step:
            self.calls_ignored += 1
            self.state = AgentState.IDLE
            return False
        self.schedule(due, length)
        return True

    def schedule(self, due: int, length: int) -> None:
        """Place an answer to a call of ``length`` units: from the first grid point at or after
        ``due``, as long as the call or ``response_bars`` (or for ever)."""
        self.answer_start, self.answer_end = answer_span(
            due, length, self.grid[self.spec.response_quantize], self.grid["bar"], self.params.response_bars, self.endless
        )
        self.state = AgentState.WAITING

    def finish(self, end: int, has_answer: bool) -> str:
        """The answer ended at ``end``: "loop" (the same answer again from ``end``), "mutate" (an
        answer to the answer has been placed) or "rest" (idle)."""
        self.answers += 1
        length = self.answer_end - self.answer_start
        if self.params.loop and has_answer:
            self.answer_start, self.answer_end = end, end + length
            return "loop"
        if self.params.mutate:
            self.call_start = self.answer_start
            self.schedule(end, length)
            return "mutate"
        self.state = AgentState.IDLE
        return "rest"


class AnswersCalls:
    """Mixed into an agent that runs a :class:`Call` (``self.call``, made before the agent's own
    ``__init__`` runs): the agent's state is the call's."""

    call: Call

    @property
    def state(self) -> AgentState:
        """The call machine's state."""
        return self.call.state

    @state.setter
    def state(self, value: AgentState) -> None:
        self.call.state = value
