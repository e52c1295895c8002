"""Answer a MIDI phrase offline with the Python API (the same logic as the live daemon).

    python examples/answer_offline.py examples/call.mid answer.mid [MODEL]
"""

from __future__ import annotations

import sys

from live.engine.agent import AgentSpec, Params
from live.offline import run_offline

if __name__ == "__main__":
    source, target = sys.argv[1], sys.argv[2]
    model = sys.argv[3] if len(sys.argv) > 3 else None  # None: the bundled melody model
    spec = AgentSpec(name="answer", mode="call-response", model=model, params=Params(temperature=0.9, response_bars=2))
    recording = run_offline(source, target, [spec], seed=1)
    played = sum(1 for _, _, m in recording.tracks["answer"] if m.type == "note_on" and m.velocity)
    print(f"wrote {target}: the model answered with {played} notes")
