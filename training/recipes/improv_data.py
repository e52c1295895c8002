"""Lead sheets with real chords that exist offline: music21's Roman-numeral analyses.

music21's corpus holds 68 harmonic analyses in RomanText (``.rntxt``): 20 Bach chorales
(``bach/choraleAnalyses``, each naming its BWV number) and 48 Monteverdi madrigals
(``monteverdi/madrigal.B.N.rntxt`` beside the score ``madrigal.B.N.mxl``). Each analysis is
read with music21, each Roman numeral becomes a chord symbol (its pitches, named as note-seq
reads them) at the analysis's offset, and the symbols are laid into the score, which then
becomes a NoteSequence with CHORD_SYMBOL annotations (``training.convert.stream_to_sequence``).
The dataset step then uses these chords instead of inferring them. An analysis whose length
does not match its score's (another edition, a missing pickup) is skipped and counted.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import music21
from music21 import chord, harmony

from training.convert import stream_to_sequence
from training.recipes.common import DATA, music21_corpus


def pairs(corpus: Path) -> list[tuple[Path, Path]]:
    """(analysis, score) for every analysis whose score the corpus holds."""
    out = []
    for analysis in sorted((corpus / "bach" / "choraleAnalyses").glob("*.rntxt")):
        found = re.search(r"^BWV:\s*(\d+)", analysis.read_text(encoding="utf-8", errors="replace"), re.M)
        if found:
            score = next(iter(sorted((corpus / "bach").glob(f"bwv{found.group(1)}.mxl"))), None)
            if score is not None:
                out.append((analysis, score))
    for analysis in sorted((corpus / "monteverdi").glob("*.rntxt")):
        score = analysis.with_suffix(".mxl")
        if score.exists():
            out.append((analysis, score))
    return out


def analysed_sequence(analysis: Path, score_path: Path):
    """The score as a NoteSequence carrying the analysis's chords; ValueError if they differ."""
    score = music21.converter.parse(str(score_path))
    rn_stream = music21.converter.parse(str(analysis), format="romanText")
    length = float(score.highestTime)
    if abs(float(rn_stream.highestTime) - length) > 4.0:
        raise ValueError(f"analysis spans {float(rn_stream.highestTime):g} quarters, the score {length:g}")
    part = score.parts[0]
    for rn in rn_stream.recurse().getElementsByClass("RomanNumeral"):
        symbol = harmony.chordSymbolFromChord(chord.Chord(rn.pitches))
        part.insert(float(rn.getOffsetInHierarchy(rn_stream)), symbol)
    return stream_to_sequence(score, str(score_path.relative_to(score_path.parents[1])), 0)


def analyses(fresh: bool = False) -> Path:
    """``DATA/analyses.tfrecord``: the analysed scores as NoteSequences (made once)."""
    import tensorflow as tf

    out = DATA / "analyses.tfrecord"
    if out.exists() and not fresh:
        return out
    DATA.mkdir(parents=True, exist_ok=True)
    kept, skipped = 0, []
    with tf.io.TFRecordWriter(str(out)) as writer:
        for analysis, score in pairs(music21_corpus()):
            try:
                writer.write(analysed_sequence(analysis, score).SerializeToString())
                kept += 1
            except Exception as err:  # noqa: BLE001 - one bad analysis does not lose the rest
                skipped.append(f"{analysis.name}: {type(err).__name__}: {err}"[:160])
    print(f"analyses: {kept} scores with their chords; skipped {len(skipped)}", *skipped, sep="\n  ", file=sys.stderr)
    return out
