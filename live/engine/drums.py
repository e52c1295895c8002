"""``--mode drums``: a Drums RNN model plays a kit part, continuously, locked to the clock.

:class:`DrumVoice` is the drums family's voice (also used by call-and-response with a drum
model): an event is a frozenset of General MIDI drum pitches struck on one step, the empty set
being a step with no hit. Each hit is a note-on on the step's first tick with a note-off one
step later (drums have no length; the note-off keeps every synth and the note ledger tidy).

:class:`DrumsAgent` plays from the first step after the clock starts and keeps going. It is
primed by

- a pattern file (``AgentSpec.pattern_file``): its drum notes (MIDI channel 10) are quantized
  to the model's steps from the file's start and fed before the agent plays, padded with empty
  steps to a whole number of bars (not played: the model continues from it);
- what the player taps on drum pads: notes on MIDI channel 10 (or on the agent's
  ``input_channels`` when set). A step with taps is fed as the player played it (teacher
  forcing) instead of the model's plan. While the player taps, the agent stays silent so it
  never doubles the player (a tap cuts the step the agent had planned), and feeds the player's
  steps, rests included; after ``silence`` steps without a tap it plays again,
  continuing the player's pattern.

Without a pattern file the stream starts with an empty step (the step on which the clock started
or the bar line before it).
"""

from __future__ import annotations

import os
from collections.abc import Hashable

import mido
import numpy as np

from live.engine.accompany import Accompanist
from live.engine.agent import AgentSpec, AgentState, Sink
from live.engine.voices import StepInput
from live.engine.voices.drums import EMPTY, DrumVoice
from live.midi_file import DRUM_CHANNEL, read_input_file
from live.models.model import Model

def read_pattern(path: str | os.PathLike, step_ticks: int, steps_per_bar: int) -> list[frozenset[int]]:
    """The drum notes (channel 10) of a MIDI file as steps of ``step_ticks`` ticks from its start,
    padded with empty steps to a whole number of bars of ``steps_per_bar`` steps.

    A note belongs to the nearest step start. Raises FileNotFoundError, or MidiFileError for a
    file that is not a readable MIDI file.
    """
    source = read_input_file(path)
    hits: dict[int, set[int]] = {}
    for tick, msg in source.messages:
        if msg.type == "note_on" and msg.velocity > 0 and msg.channel == DRUM_CHANNEL:
            hits.setdefault((tick + step_ticks // 2) // step_ticks, set()).add(msg.note)
    if not hits:
        return []
    length = -(-(max(hits) + 1) // steps_per_bar) * steps_per_bar
    return [frozenset(hits.get(s, ())) for s in range(length)]


class DrumsAgent(Accompanist):
    """``--mode drums`` for Drums RNN models (drum_kit, one_drum).

    Attributes:
        pattern: the pattern file's steps (fed before playing), or [].
        last_tap: the last step in which the player tapped, or None.
        fed: step -> the events fed for it, and who played them ("player" or "model") (the
            latest steps).
    """

    mode = "drums"
    rest = EMPTY
    FED_LOG = 2048

    def __init__(
        self, spec: AgentSpec, model: Model, sink: Sink, rng: np.random.Generator, ticks_per_bar: int = 96, ticks_per_beat: int = 24
    ) -> None:
        super().__init__(spec, model, sink, rng, ticks_per_bar, ticks_per_beat)
        if not isinstance(self.voice, DrumVoice):
            raise ValueError(f"--mode drums needs a Drums RNN model, not {model.config_id}")  # noqa: TRY004 (as agent_class)
        self.pattern: list[frozenset[int]] = []
        if spec.pattern_file:
            self.pattern = read_pattern(spec.pattern_file, self.step_ticks, self.steps_per_bar)
        self.last_tap: int | None = None
        self.fed: dict[int, tuple[frozenset[int], str]] = {}
        self.prime()

    def hears(self, msg: mido.Message) -> bool:
        """The drum pads: MIDI channel 10, unless the spec names input channels."""
        if self.spec.input_channels is None:
            return msg.channel == DRUM_CHANNEL
        return super().hears(msg)

    def primer(self) -> list[list[Hashable]]:
        return [[event] for event in self.pattern]

    # -- the player --------------------------------------------------------------------------------

    def note(self, tick: int, msg: mido.Message) -> None:
        super().note(tick, msg)
        if msg.type == "note_on" and msg.velocity > 0 and self.state == AgentState.PLAYING:
            self.take_over(tick)

    def take_over(self, tick: int) -> None:
        """The player taps while the agent plays: the agent's plans from ``tick`` on are dropped
        (its sounding hits end now), so nothing the player plays is doubled."""
        self.sink.cancel(self, tick)
        self.voice.forget()
        self.planned.clear()
        self.state = AgentState.LISTENING
        self.last_tap = self.step_of(tick)

    # -- steps -----------------------------------------------------------------------------------

    def heard(self, step: int, got: StepInput) -> None:
        if got.onsets:
            self.last_tap = step
            if self.state != AgentState.LISTENING:
                self.take_over(step * self.step_ticks + self.step_ticks // 2)
        elif self.state == AgentState.LISTENING and self.last_tap is not None and step - self.last_tap >= self.spec.silence:
            self.state = AgentState.PLAYING

    def start(self, step: int) -> None:
        listening = self.state == AgentState.LISTENING
        super().start(step)
        if listening:
            self.state = AgentState.LISTENING

    def truth(self, step: int, got: StepInput) -> list[Hashable]:
        if self.state == AgentState.LISTENING:
            events, who = self.voice.player_events(got, self.held), "player"
        else:
            events, who = self.planned.pop(step, [EMPTY]), "model"
        self.fed[step] = (frozenset(events[0]), who)  # type: ignore[arg-type]
        if len(self.fed) > self.FED_LOG:
            for old in list(self.fed)[: self.FED_LOG // 2]:
                del self.fed[old]
        return events

    def plays(self, step: int) -> bool:
        return self.state == AgentState.PLAYING

