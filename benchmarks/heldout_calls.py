"""Calls for the musical-quality benchmark from tunes no bundled model trained on.

    .venv/bin/python -m benchmarks.heldout_calls    # rewrites benchmarks/heldout_calls.json

The melody recipe (training/recipes/melody.py) holds out 10% of music21's folk tunes by a hash
of each tune's id (``training.dataset.is_eval``, ratio 0.1, seed 0). This reads the same
converted tunes (``build/recipes/data/folk-all.tfrecord``, written by the recipe; TensorFlow
reads it), keeps the held-out ones in 4/4 whose key is marked major or minor, and writes the
first two bars of each (from its first note, on an eighth-note grid, the top note of each
onset) with its key: up to 24 major and 24 minor (12 minor ones exist), in the order of their ids' hashes. The JSON is
small and committed, so the benchmark itself needs neither TensorFlow nor the corpus.
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "build" / "recipes" / "data" / "folk-all.tfrecord"
OUT = Path(__file__).resolve().parent / "heldout_calls.json"
PER_MODE = 24
EIGHTHS = 16  # two bars of 4/4


def phrase(sequence) -> list[list[int]] | None:
    """[start eighth, length in eighths, pitch] for the first two bars from the first note, or
    None when the tune's opening does not make a usable call."""
    from note_seq import sequences_lib

    try:
        q = sequences_lib.quantize_note_sequence(sequence, steps_per_quarter=2)
    except Exception:  # noqa: BLE001 - odd tempo or time signature changes: not a call
        return None
    notes = sorted(q.notes, key=lambda n: (n.quantized_start_step, -n.pitch))
    if not notes:
        return None
    first = notes[0].quantized_start_step
    top: dict[int, tuple[int, int]] = {}
    for n in notes:
        start = n.quantized_start_step - first
        if 0 <= start < EIGHTHS and start not in top:
            top[start] = (n.quantized_end_step - first, n.pitch)
    starts = sorted(top)
    out = []
    for i, start in enumerate(starts):
        end, pitch = top[start]
        end = min(end, starts[i + 1] if i + 1 < len(starts) else EIGHTHS, EIGHTHS)
        if end > start:
            out.append([start, end - start, pitch])
    return out if len(out) >= 5 else None


def main() -> int:
    from note_seq.protobuf import music_pb2

    from training.dataset import is_eval, read_note_sequences

    if not SOURCE.exists():
        print(f"{SOURCE} not found: run python -m training.recipes.melody first", file=sys.stderr)
        return 1
    found: dict[bool, list[tuple[int, dict]]] = {False: [], True: []}
    for record in read_note_sequences(SOURCE):
        sequence = music_pb2.NoteSequence.FromString(record)
        if not is_eval(sequence.id, 0.1, 0):
            continue
        sigs = [ts for ts in sequence.time_signatures if ts.time == 0]
        keys = [k for k in sequence.key_signatures if k.time == 0]
        if len(sigs) != 1 or (sigs[0].numerator, sigs[0].denominator) != (4, 4) or len(keys) != 1:
            continue
        if keys[0].mode not in (music_pb2.NoteSequence.KeySignature.MAJOR, music_pb2.NoteSequence.KeySignature.MINOR):
            continue
        notes = phrase(sequence)
        if notes is None:
            continue
        minor = keys[0].mode == music_pb2.NoteSequence.KeySignature.MINOR
        found[minor].append((zlib.crc32(sequence.id.encode()), {"id": sequence.id, "tonic": int(keys[0].key) % 12,
                                                                 "minor": minor, "notes": notes}))
    calls = [c for minor in (False, True) for _, c in sorted(found[minor], key=lambda x: x[0])[:PER_MODE]]
    OUT.write_text("[\n" + ",\n".join(json.dumps(c, separators=(",", ":")) for c in calls) + "\n]\n")  # a call a line
    print(f"wrote {OUT}: {sum(not c['minor'] for c in calls)} major, {sum(c['minor'] for c in calls)} minor "
          f"(of {len(found[False])} and {len(found[True])} usable held-out tunes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
