"""Real music for tests: pieces from music21's bundled corpus, read by note-seq."""

from __future__ import annotations

import functools
import pathlib

import music21
import note_seq
from note_seq.protobuf import music_pb2

CORPUS = pathlib.Path(music21.__file__).parent / "corpus"


@functools.lru_cache(maxsize=None)
def bach_chorales(count: int = 8) -> tuple[music_pb2.NoteSequence, ...]:
    """The first ``count`` Bach chorales (MusicXML, four voices) as NoteSequences (seconds)."""
    paths = sorted((CORPUS / "bach").glob("bwv*.mxl"))[:count]
    return tuple(note_seq.musicxml_file_to_sequence_proto(str(p)) for p in paths)


def quantized(sequence: music_pb2.NoteSequence, steps_per_quarter: int = 4) -> music_pb2.NoteSequence:
    """``sequence`` quantized to ``steps_per_quarter`` steps per quarter note.

    Pickup bars make the MusicXML reader emit several time signatures at time 0; only the last
    one there and no later changes are kept, since note-seq quantizes one meter and one tempo.
    """
    out = music_pb2.NoteSequence()
    out.CopyFrom(sequence)
    at_zero = [ts for ts in out.time_signatures if ts.time == 0] or list(out.time_signatures[:1])
    last = music_pb2.NoteSequence.TimeSignature()
    if at_zero:
        last.CopyFrom(at_zero[-1])
    del out.time_signatures[:]
    if at_zero:
        out.time_signatures.add().CopyFrom(last)
    del out.tempos[1:]
    return note_seq.quantize_note_sequence(out, steps_per_quarter)


def chorale_voice(sequence: music_pb2.NoteSequence, voice: int = 0) -> music_pb2.NoteSequence:
    """One part (0 = soprano) of a chorale as its own NoteSequence: a real monophonic melody."""
    parts = sorted({n.part for n in sequence.notes})
    out = music_pb2.NoteSequence()
    out.CopyFrom(sequence)
    del out.notes[:]
    out.notes.extend(n for n in sequence.notes if n.part == parts[voice])
    return out
