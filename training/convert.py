"""``magenta-live-train convert``: a directory of scores into a TFRecord of NoteSequence protos.

What Magenta's ``convert_dir_to_note_sequences`` does, for three kinds of file:

- MIDI (``.mid``, ``.midi``): note-seq's MIDI reader;
- MusicXML (``.xml``, ``.mxl``, ``.musicxml``): note-seq's MusicXML reader;
- ABC (``.abc``): music21's ABC reader, then ``stream_to_sequence`` below (one NoteSequence per
  tune of a tune book). note-seq's own ABC parser rejects more than half of the tunes in
  music21's folk collections (tuplets, variant endings, unusual characters), so it is not used.
  Chord symbols written in the ABC (``"Am"``) become CHORD_SYMBOL text annotations, as
  note-seq's MusicXML reader writes ``<harmony>`` elements, so lead sheets keep their chords.

Files that cannot be read, and files with no notes, are skipped and counted by reason in the
summary. The work runs in a pool of two processes (this machine has two cores); the parent
process writes the TFRecord in a stable order (sorted paths), so a rerun gives the same file.
``training.beam`` runs the same per-file work (``convert_file``) as an Apache Beam pipeline.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

import music21
import note_seq
from music21 import harmony, key, meter, tempo
from note_seq.protobuf import music_pb2

from live.files import atomic_path
from training.errors import DataError
from training.records import remove_shards

MIDI_EXTENSIONS = (".mid", ".midi")
MUSICXML_EXTENSIONS = (".xml", ".mxl", ".musicxml")
ABC_EXTENSIONS = (".abc",)
EXTENSIONS = MIDI_EXTENSIONS + MUSICXML_EXTENSIONS + ABC_EXTENSIONS


# music21 chord kinds -> the kind spellings note-seq's chord_symbols_lib (and live.models.
# encodings.chords) read. Kinds not listed fall back to music21's own figure.
_M21_KINDS = {
    "major": "",
    "minor": "m",
    "augmented": "aug",
    "diminished": "dim",
    "dominant-seventh": "7",
    "major-seventh": "maj7",
    "minor-seventh": "m7",
    "diminished-seventh": "dim7",
    "augmented-seventh": "aug7",
    "half-diminished-seventh": "m7b5",
    "major-minor": "mmaj7",
    "minor-major-seventh": "mmaj7",
    "major-sixth": "6",
    "minor-sixth": "m6",
    "dominant-ninth": "9",
    "major-ninth": "maj9",
    "minor-ninth": "m9",
    "dominant-11th": "11",
    "major-11th": "maj11",
    "minor-11th": "m11",
    "dominant-13th": "13",
    "major-13th": "maj13",
    "minor-13th": "m13",
    "suspended-second": "sus2",
    "suspended-fourth": "sus4",
    "power": "5",
    "pedal": "ped",
}


class ConvertError(Exception):
    """A file that could not be turned into NoteSequences; the message is the reason."""


@dataclass
class FileResult:
    """What one worker made of one file: serialized NoteSequences, or why there are none."""

    path: str
    sequences: list[bytes] = field(default_factory=list)
    error: str | None = None
    reason: str | None = None  # short key for the summary


def find_music_files(input_dir: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """The music files (by extension, case-insensitive) in ``input_dir``, sorted."""
    root = Path(input_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no such directory: {root}")
    if recursive:  # os.walk follows symlinked directories (a recipe links corpus folders together)
        found = [Path(d) / f for d, _, files in os.walk(root, followlinks=True) for f in files]
    else:
        found = list(root.iterdir())
    return sorted(p for p in found if p.suffix.lower() in EXTENSIONS and p.is_file())


def _pitch_name(pitch) -> str:
    """A music21 pitch as note-seq spells a chord root: letter plus # or b."""
    alter = round(pitch.alter)
    return pitch.step + ("#" * alter if alter > 0 else "b" * -alter)


def chord_symbol_text(symbol) -> str:
    """A music21 ChordSymbol as text that note-seq's chord symbol parser reads."""
    root = symbol.root()
    if root is None:
        return "N.C."
    kind = _M21_KINDS.get(symbol.chordKind)
    if kind is None or symbol.getChordStepModifications():  # "m7b5", "7(#9)": as written
        return symbol.figure.replace("-", "b")
    text = _pitch_name(root) + kind
    bass = symbol.bass()
    if bass is not None and bass.name != root.name:
        text += "/" + _pitch_name(bass)
    return text


def stream_to_sequence(score, source: str, index: int = 0):
    """A music21 Score (or Part) as a NoteSequence (times in seconds).

    Tempo: the first metronome mark, else 120 quarter notes per minute, for the whole piece.
    Each part is one instrument (``instrument`` = ``part`` = the part's index); ties are merged
    into single notes; grace notes (no duration) are left out; velocity is the note's own or 64.
    Chord symbols become CHORD_SYMBOL text annotations; time and key signatures are copied.
    """

    seq = music_pb2.NoteSequence()
    seq.ticks_per_quarter = 220
    seq.source_info.source_type = music_pb2.NoteSequence.SourceInfo.SCORE_BASED
    seq.source_info.encoding_type = music_pb2.NoteSequence.SourceInfo.ABC
    seq.source_info.parser = music_pb2.NoteSequence.SourceInfo.MUSIC21
    seq.filename = source
    seq.id = f"{source}#{index}"
    flat = score.flatten()
    marks = list(flat.getElementsByClass(tempo.MetronomeMark))
    qpm = 120.0
    if marks and marks[0].number:
        qpm = float(marks[0].getQuarterBPM() or marks[0].number)
    seq.tempos.add(time=0.0, qpm=qpm)
    sec = 60.0 / qpm

    for ts in flat.getElementsByClass(meter.TimeSignature):
        seq.time_signatures.add(time=float(ts.offset) * sec, numerator=ts.numerator, denominator=ts.denominator)
    for ks in flat.getElementsByClass(key.KeySignature):
        k = ks.asKey() if not isinstance(ks, key.Key) else ks
        entry = seq.key_signatures.add(time=float(ks.offset) * sec, key=k.tonic.pitchClass)
        entry.mode = entry.MINOR if k.mode == "minor" else entry.MAJOR

    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    end = 0.0
    for part_index, part in enumerate(parts):
        part_flat = part.stripTies().flatten()
        for element in part_flat.notes:
            if isinstance(element, harmony.ChordSymbol):
                continue
            quarters = float(element.duration.quarterLength)
            if quarters <= 0:
                continue
            start = float(element.offset) * sec
            stop = start + quarters * sec
            velocity = element.volume.velocity if element.volume.velocity is not None else 64
            for pitch in element.pitches:
                seq.notes.add(
                    pitch=int(pitch.midi), velocity=int(velocity), start_time=start, end_time=stop,
                    instrument=part_index, part=part_index,
                )
            end = max(end, stop)
        for symbol in part_flat.getElementsByClass(harmony.ChordSymbol):
            seq.text_annotations.add(
                time=float(symbol.offset) * sec, text=chord_symbol_text(symbol),
                annotation_type=music_pb2.NoteSequence.TextAnnotation.CHORD_SYMBOL,
            )
    seq.total_time = end
    return seq


def _abc_sequences(path: Path) -> list:

    try:
        parsed = music21.converter.parse(str(path), format="abc", forceSource=True)
    except Exception as err:  # music21 raises many kinds for bad ABC
        raise ConvertError(f"music21 could not parse the ABC ({type(err).__name__}: {err})") from err
    scores = list(parsed.scores) if isinstance(parsed, music21.stream.Opus) else [parsed]
    out = []
    for i, score in enumerate(scores):
        try:
            out.append(stream_to_sequence(score, str(path), i))
        except Exception as err:  # one broken tune does not lose the rest of the book
            if len(scores) == 1:
                raise ConvertError(f"tune could not be converted ({type(err).__name__}: {err})") from err
    return out


def file_to_sequences(path: str | os.PathLike, root: str | os.PathLike | None = None) -> list:
    """The NoteSequences in one file (several for an ABC tune book). Raises ConvertError.

    Each sequence's id is the file's path relative to ``root`` (default: its folder) plus
    ``#index``: the same on every machine, so dataset's train/eval split (a hash of the id) is too.
    """

    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in MIDI_EXTENSIONS:
            seqs = [note_seq.midi_file_to_note_sequence(str(path))]
        elif suffix in MUSICXML_EXTENSIONS:
            seqs = [note_seq.musicxml_file_to_sequence_proto(str(path))]
        elif suffix in ABC_EXTENSIONS:
            seqs = _abc_sequences(path)
        else:
            raise ConvertError(f"not a music file extension ({suffix})")
    except ConvertError:
        raise
    except Exception as err:  # the readers raise their own error types and plain exceptions
        raise ConvertError(f"{type(err).__name__}: {err}") from err
    for i, seq in enumerate(seqs):
        seq.filename = path.name
        relative = os.path.relpath(path, root) if root is not None else path.name
        index = seq.id.rsplit("#", 1)[1] if "#" in seq.id else str(i)  # a tune's place in its book
        seq.id = f"{Path(relative).as_posix()}#{index}"
        seq.collection_name = path.parent.name
    return seqs


def _reason(message: str) -> str:
    return message.split(":", 1)[0].strip()[:60]


def convert_file(path: str, root: str | None = None) -> FileResult:
    """One file's NoteSequences (those with notes, serialized), or why it has none; never raises
    ConvertError. Sequence ids are paths relative to ``root`` (``file_to_sequences``)."""
    try:
        seqs = file_to_sequences(path, root)
    except ConvertError as err:
        return FileResult(path, error=str(err), reason=_reason(str(err)))
    kept = [s.SerializeToString() for s in seqs if len(s.notes)]
    if not kept:
        return FileResult(path, error="no notes", reason="no notes")
    return FileResult(path, kept)


def _convert_indexed(job: tuple[int, str, str | None]) -> tuple[int, FileResult]:
    return job[0], convert_file(job[1], job[2])


class Progress:
    """A one-line progress bar on stderr, redrawn at most five times a second."""

    def __init__(self, total: int, label: str = "convert", stream=sys.stderr, unit: str = "files") -> None:
        self.total, self.label, self.stream, self.unit = total, label, stream, unit
        self.done = 0
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self._last >= 0.2 or self.done == self.total:
            self._last = now
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            rate = self.done / max(now - self.start, 1e-9)
            self.stream.write(
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {self.unit}, {rate:.1f}/s"
            )
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()


def convert_files(
    paths: list[Path], workers: int = 2, progress: bool = True, root: str | os.PathLike | None = None
) -> Iterator[FileResult]:
    """Convert ``paths`` in ``workers`` processes; results in the order of ``paths``. Sequence ids
    are paths relative to ``root``."""
    root = None if root is None else os.fspath(root)
    bar = Progress(len(paths)) if progress else None
    if workers <= 1 or len(paths) <= 1:
        for p in paths:
            yield convert_file(str(p), root)
            if bar:
                bar.update()
        return
    ctx = multiprocessing.get_context("spawn" if "tensorflow" in sys.modules else "fork")
    # Unordered, so one slow tune book does not stall the progress bar; yielded in path order.
    done: dict[int, FileResult] = {}
    following = 0
    with ctx.Pool(workers) as pool:
        for index, result in pool.imap_unordered(_convert_indexed, [(i, str(p), root) for i, p in enumerate(paths)]):
            done[index] = result
            if bar:
                bar.update()
            while following in done:
                yield done.pop(following)
                following += 1


_Summary = TypeVar("_Summary", bound="CountedSummary")


class CountedSummary:
    """A summary dataclass as flat named counts, the form Beam's metrics counters carry: each int
    field by its name, each entry of a Counter field as ``<field>:<key>``."""

    def counts(self) -> dict[str, int]:
        """The numbers (not the floats, not the other fields) as named counts."""
        out: dict[str, int] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Counter):
                out.update({f"{f.name}:{key}": n for key, n in value.items()})
            elif isinstance(value, int):
                out[f.name] = value
        return out

    @classmethod
    def from_counts(cls: type[_Summary], counts: dict[str, int]) -> _Summary:
        """The summary whose ``counts()`` are ``counts`` (the other fields at their defaults)."""
        summary = cls()
        for name, n in counts.items():
            field_name, _, key = name.partition(":")
            value = getattr(summary, field_name)
            if isinstance(value, Counter):
                value[key] += n
            else:
                setattr(summary, field_name, value + n)
        return summary


@dataclass
class Summary(CountedSummary):
    """What a ``convert`` run made of its files (either runner)."""

    files: int = 0
    converted_files: int = 0
    sequences: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)  # reason -> one example path (the local runner's only)
    seconds: float = 0.0

    def add(self, result: FileResult) -> None:
        """Count one file's result (``files`` is counted by whoever lists the files)."""
        if result.error is not None:
            self.skipped[result.reason] += 1
            self.examples.setdefault(result.reason, f"{result.path}: {result.error}"[:200])
        else:
            self.converted_files += 1
            self.sequences += len(result.sequences)

    def text(self) -> str:
        rate = self.files / max(self.seconds, 1e-9)
        lines = [
            (
                f"{self.files} files: {self.converted_files} converted into {self.sequences} NoteSequences, "
                f"{sum(self.skipped.values())} skipped ({self.seconds:.1f} s, {rate:.1f} files/s)"
            )
        ]
        for reason, n in self.skipped.most_common():
            example = f" (e.g. {self.examples[reason]})" if reason in self.examples else ""
            lines.append(f"  skipped {n}: {reason}{example}")
        return "\n".join(lines)

    def check(self, input_dir: str | os.PathLike) -> None:
        """Raise DataError when no file gave a NoteSequence (the output is then worthless)."""
        if self.sequences == 0:
            raise DataError(f"none of the {self.files} music files in {input_dir} could be read:\n" + self.text())


def music_files(input_dir: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """``find_music_files``, but DataError when there is none (with a hint about --recursive)."""
    paths = find_music_files(input_dir, recursive)
    if not paths:
        hint = "" if recursive else " (use --recursive to look in subdirectories)"
        raise DataError(f"no music files ({', '.join(EXTENSIONS)}) in {input_dir}{hint}")
    return paths


def convert_dir(
    input_dir: str | os.PathLike, output: str | os.PathLike, recursive: bool = False, workers: int = 2,
    progress: bool = True,
) -> Summary:
    """Convert every music file under ``input_dir`` into the TFRecord ``output``, in path order.

    Raises FileNotFoundError for a missing directory and DataError when it holds no music
    file, or none that could be read (the output is then not written). Shards that the Beam
    runner left under the name ``output`` are removed when the file is written.
    """
    paths = music_files(input_dir, recursive)
    summary = Summary(files=len(paths))
    start = time.perf_counter()
    results = convert_files(paths, workers, progress, input_dir)  # the pool starts before TensorFlow loads
    first = next(results)
    # TensorFlow loads only now, after the pool forked (a fork of a process running TensorFlow's
    # threads can hang): the one import this module defers.
    import tensorflow as tf

    with atomic_path(output) as tmp:
        with tf.io.TFRecordWriter(tmp) as writer:
            for result in _chain(first, results):
                summary.add(result)
                for blob in result.sequences:
                    writer.write(blob)
        summary.seconds = time.perf_counter() - start
        summary.check(input_dir)
        remove_shards(output)
    return summary


def _chain(first, rest):
    yield first
    yield from rest
