"""``magenta-live-train dataset``: NoteSequences into SequenceExamples for one configuration.

What Magenta's ``*_rnn_create_dataset`` scripts do, family by family (the rules and numbers
are those of Magenta's pipelines; the events come from note-seq's own classes):

- every family: the NoteSequences are split into training and evaluation by a hash of the
  sequence id (``--eval-ratio``; a piece and all its transpositions and fragments land on the
  same side, and a rerun gives the same split); each piece is cut where its tempo or time
  signature changes; step-based families quantize to the config's steps per quarter.
- melody: melodies of at least 7 bars (ended by a bar of silence), truncated to 512 steps, with
  at least 5 distinct pitch classes, from tracks without coinciding notes; squashed into the
  config's range and transposed to its key.
- improv (lead sheets): melodies as above but 3 pitch classes suffice, with the chords of the
  piece's chord symbols under them; a piece with no chord symbols gets chords inferred by
  note-seq's chord inference (one or two per bar) first. Configs that are not transposed to a
  key get all 12 transpositions.
- polyphony: the whole piece as one polyphonic track (one program only), kept if 80..512 steps;
  transposed by -4..+4 semitones.
- drums: drum tracks of at least 7 bars, truncated to 512 steps.
- performance: sustain pedal applied, training pieces stretched by 0.95..1.05, cut into 30 s
  pieces, quantized to 100 steps per second, training pieces transposed by -3..+3; one program
  only; at least 32 events, truncated to 512.

Encoding uses the live engine's own encoders (``get_config(id).make_encoder()``): for a sequence
of events e0..en, input i is the encoder's vector after appending e0..ei (with the control of
step i + 1 for conditional configs) and label i is ``event_to_label(e(i+1))``, exactly what the
engine computes when it runs. Each SequenceExample has feature lists ``inputs`` (FloatList per
step) and ``labels`` (Int64List per step), as Magenta writes them.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import multiprocessing
import os
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import note_seq
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from note_seq import chord_inference, chords_lib, melodies_lib, performance_lib, sequences_lib
from note_seq.protobuf import music_pb2

from live.files import atomic_path
from live.models.configs import get_config
from live.models.encodings.performance import PerfEvent
from live.models.encodings.polyphony import sequence_to_poly_events
from training.convert import CountedSummary, Progress
from training.errors import DataError
from training.records import record_files, remove_shards


OUTPUT_NAMES = {
    "melody": "melodies",
    "improv": "lead_sheets",
    "polyphony": "poly_tracks",
    "drums": "drum_tracks",
    "performance": "performances",
}

MELODY_MIN_BARS, MELODY_MAX_STEPS, MELODY_GAP_BARS = 7, 512, 1.0
MELODY_MIN_UNIQUE_PITCHES, LEAD_SHEET_MIN_UNIQUE_PITCHES = 5, 3
POLY_MIN_STEPS, POLY_MAX_STEPS = 80, 512
POLY_TRANSPOSITIONS = tuple(range(-4, 5))
DRUMS_MIN_BARS, DRUMS_MAX_STEPS = 7, 512
PERF_MIN_EVENTS, PERF_MAX_EVENTS = 32, 512
PERF_STRETCH_FACTORS = (0.95, 0.975, 1.0, 1.025, 1.05)
PERF_TRANSPOSITIONS = tuple(range(-3, 4))
PERF_SPLIT_SECONDS = 30.0


class DatasetError(DataError):
    """Bad input to ``dataset``: the message says what is wrong."""


# --- splitting --------------------------------------------------------------------------------


def is_eval(sequence_id: str, eval_ratio: float, seed: int = 0) -> bool:
    """Whether a NoteSequence goes to the evaluation set: a stable hash of its id and ``seed``."""
    if eval_ratio <= 0:
        return False
    h = zlib.crc32(f"{seed}:{sequence_id}".encode()) / 2**32
    return h < eval_ratio


# --- note sequence steps (Magenta's NoteSequence pipelines) ----------------------------------------


def _dedupe_time_signatures(sequence) -> None:
    """Several time signatures at one time (pickup bars in MusicXML): keep the last one there."""
    by_time: dict[float, Any] = {}
    for ts in sequence.time_signatures:
        by_time[ts.time] = copy.deepcopy(ts)
    if len(by_time) != len(sequence.time_signatures):
        del sequence.time_signatures[:]
        for t in sorted(by_time):
            sequence.time_signatures.add().CopyFrom(by_time[t])


def split_on_time_changes(sequence, one_time_signature: bool = False) -> list:
    """The pieces of ``sequence`` with one tempo and one time signature each.

    ``one_time_signature``: keep only the time signature in force at the start (the last one
    given at the earliest time) instead of cutting at every change. MusicXML chorales write the
    short bars around fermatas as 3/4 + 1/4 changes; cutting there leaves phrases too short for
    any extractor.
    """

    seq = copy.deepcopy(sequence)
    _dedupe_time_signatures(seq)
    if one_time_signature and len(seq.time_signatures) > 1:
        first = min(ts.time for ts in seq.time_signatures)
        keep = copy.deepcopy([ts for ts in seq.time_signatures if ts.time == first][-1])
        keep.time = 0.0
        del seq.time_signatures[:]
        seq.time_signatures.add().CopyFrom(keep)
    return sequences_lib.split_note_sequence_on_time_changes(seq)


def quantize(sequence, steps_per_quarter: int, stats: Counter):
    """``sequence`` quantized relative to meter, or None (counted in ``stats``) when note-seq can't."""

    try:
        return sequences_lib.quantize_note_sequence(sequence, steps_per_quarter)
    except sequences_lib.QuantizationStatusError as err:  # pragma: no cover - depends on the data
        stats[f"quantization failed: {type(err).__name__}"] += 1
    except Exception as err:  # noqa: BLE001 -
        stats[f"quantization failed: {type(err).__name__}"] += 1
    return None


def transpositions(sequence, amounts: Iterable[int], stats: Counter) -> list:
    """``sequence`` transposed by each amount (notes, keys and chord symbols), as Magenta's
    TranspositionPipeline: an amount that puts any pitched note outside 0..127 is skipped."""

    out = []
    for amount in amounts:
        if amount == 0:
            out.append(sequence)
            continue
        pitches = [n.pitch + amount for n in sequence.notes if not n.is_drum]
        if pitches and (min(pitches) < 0 or max(pitches) > 127):
            stats["transpositions skipped: out of MIDI range"] += 1
            continue
        transposed, _ = sequences_lib.transpose_note_sequence(sequence, amount, in_place=False)
        out.append(transposed)
    return out


# --- extraction per family -------------------------------------------------------------------


def extract_melodies(quantized, min_bars: int, max_steps: int, min_unique_pitches: int, stats: Counter) -> list:
    """Magenta's melody extraction: per instrument, melodies split by a bar of silence."""

    steps_per_bar = int(sequences_lib.steps_per_bar_in_quantized_sequence(quantized))
    melodies = []
    for instrument in sorted({n.instrument for n in quantized.notes}):
        start = 0
        while True:
            melody = note_seq.Melody()
            try:
                melody.from_quantized_sequence(
                    quantized, search_start_step=start, instrument=instrument, gap_bars=MELODY_GAP_BARS,
                    ignore_polyphonic_notes=False, pad_end=False, filter_drums=True,
                )
            except melodies_lib.PolyphonicMelodyError:
                stats["melody tracks discarded: polyphonic"] += 1
                break
            start = melody.end_step + (-melody.end_step) % steps_per_bar
            if not melody:
                break
            if len(melody) < melody.steps_per_bar * min_bars:
                stats[f"melodies discarded: shorter than {min_bars} bars"] += 1
                continue
            if len(melody) > max_steps:
                melody.set_length(max_steps)
                stats[f"melodies truncated to {max_steps} steps"] += 1
            if np.count_nonzero(melody.get_note_histogram()) < min_unique_pitches:
                stats[f"melodies discarded: fewer than {min_unique_pitches} pitch classes"] += 1
                continue
            melodies.append(melody)
    return melodies


def _has_chords(sequence) -> bool:

    chord = music_pb2.NoteSequence.TextAnnotation.CHORD_SYMBOL
    return any(a.annotation_type == chord for a in sequence.text_annotations)


def infer_chords(quantized, stats: Counter) -> bool:
    """Add inferred chord symbols to ``quantized`` (in place); False when inference fails."""

    try:
        chord_inference.infer_chords_for_sequence(quantized, chords_per_bar=None)
    except Exception as err:  # noqa: BLE001 - note-seq raises several kinds (too long, odd meter, ...)
        stats[f"chord inference failed: {type(err).__name__}"] += 1
        return False
    stats["pieces with inferred chords"] += 1
    return True


def extract_lead_sheets(quantized, spec, stats: Counter) -> list[tuple[list, list]]:
    """(melody events, chord per step) pairs, squashed and transposed for ``spec``."""

    melodies = extract_melodies(quantized, MELODY_MIN_BARS, MELODY_MAX_STEPS, LEAD_SHEET_MIN_UNIQUE_PITCHES, stats)
    if not melodies:
        return []
    if not _has_chords(quantized):
        if not infer_chords(quantized, stats):  # chords for the whole piece, all its parts
            return []
    else:
        stats["pieces with written chords"] += 1
    out = []
    for melody in melodies:
        chords = chords_lib.ChordProgression()
        try:
            chords.from_quantized_sequence(quantized, melody.start_step, melody.end_step)
        except (chords_lib.CoincidentChordsError, note_seq.ChordSymbolError) as err:
            stats[f"lead sheets discarded: {type(err).__name__}"] += 1
            continue
        amounts = range(-6, 6) if spec.transpose_to_key is None else (0,)
        for amount in amounts:
            ls = note_seq.LeadSheet(copy.deepcopy(melody), copy.deepcopy(chords))
            try:
                if amount:
                    ls.transpose(amount)
                ls.squash(spec.min_note, spec.max_note, spec.transpose_to_key)
            except Exception as err:  # noqa: BLE001 -
                stats[f"lead sheets discarded: {type(err).__name__}"] += 1
                continue
            out.append((list(ls.melody), list(ls.chords)))
    return out


def extract_poly_events(quantized, stats: Counter) -> list[list]:
    """The whole piece as Polyphony RNN events, if one program and 80..512 steps long."""

    if len({n.program for n in quantized.notes}) > 1:
        stats["poly tracks discarded: more than 1 program"] += 1
        return []
    steps = quantized.total_quantized_steps
    if steps < POLY_MIN_STEPS:
        stats[f"poly tracks discarded: shorter than {POLY_MIN_STEPS} steps"] += 1
        return []
    if steps > POLY_MAX_STEPS:
        stats[f"poly tracks discarded: longer than {POLY_MAX_STEPS} steps"] += 1
        return []
    notes = [(n.pitch, n.quantized_start_step, n.quantized_end_step) for n in quantized.notes
             if n.quantized_end_step > n.quantized_start_step]
    return [sequence_to_poly_events(notes, 0, steps)]


def extract_drum_tracks(quantized, stats: Counter) -> list[list]:
    """Magenta's drum track extraction: tracks of 7+ bars split by a bar without drums."""

    steps_per_bar = int(sequences_lib.steps_per_bar_in_quantized_sequence(quantized))
    tracks = []
    start = 0
    while True:
        track = note_seq.DrumTrack()
        track.from_quantized_sequence(quantized, search_start_step=start, gap_bars=1, pad_end=False)
        start = track.end_step + (-track.end_step) % steps_per_bar
        if not track:
            break
        if len(track) < track.steps_per_bar * DRUMS_MIN_BARS:
            stats[f"drum tracks discarded: shorter than {DRUMS_MIN_BARS} bars"] += 1
            continue
        if len(track) > DRUMS_MAX_STEPS:
            track.set_length(DRUMS_MAX_STEPS)
            stats[f"drum tracks truncated to {DRUMS_MAX_STEPS} steps"] += 1
        tracks.append([frozenset(e) for e in track])
    return tracks


def extract_performance_events(quantized, num_velocity_bins: int, stats: Counter) -> list[list]:
    """One performance per piece (one program only), 32+ events, truncated to 512."""


    if len({n.program for n in quantized.notes}) > 1:
        stats["performances discarded: more than 1 program"] += 1
        return []
    perf = performance_lib.Performance(quantized, start_step=0, num_velocity_bins=num_velocity_bins)
    if len(perf) > PERF_MAX_EVENTS:
        perf.truncate(PERF_MAX_EVENTS)
        stats[f"performances truncated to {PERF_MAX_EVENTS} events"] += 1
    if len(perf) < PERF_MIN_EVENTS:
        stats[f"performances discarded: fewer than {PERF_MIN_EVENTS} events"] += 1
        return []
    return [[PerfEvent(e.event_type, e.event_value) for e in perf]]


# --- encoding -------------------------------------------------------------------------------


def encode(encoder, events: list, controls: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs [n - 1, input_size] and labels [n - 1] for ``events`` e0..e(n-1), as the engine
    computes them: input i after appending e0..ei (control of step i + 1), label i of e(i+1)."""
    n = len(events) - 1
    inputs = np.zeros((max(n, 0), encoder.input_size), np.float32)
    labels = np.zeros(max(n, 0), np.int64)
    for i in range(n):
        encoder.append(events[i])
        encoder.encode_input(inputs[i], None if controls is None else controls[i + 1])
        labels[i] = encoder.event_to_label(events[i + 1])
    return inputs, labels


def sequence_example_bytes(inputs: np.ndarray, labels: np.ndarray) -> bytes:
    """A serialized tf.train.SequenceExample with feature lists ``inputs`` and ``labels``."""

    features = {
        "inputs": tf.train.FeatureList(feature=[tf.train.Feature(float_list=tf.train.FloatList(value=row)) for row in inputs]),
        "labels": tf.train.FeatureList(feature=[tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)])) for v in labels]),
    }
    example = tf.train.SequenceExample(feature_lists=tf.train.FeatureLists(feature_list=features))
    # deterministic: the map of feature lists in one key order, whichever process (or runner) writes it
    return example.SerializeToString(deterministic=True)


def parse_sequence_example(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(inputs [steps, input_size] float32, labels [steps] int64) of a serialized SequenceExample."""

    ex = tf.train.SequenceExample.FromString(blob)
    fl = ex.feature_lists.feature_list
    inputs = np.array([list(f.float_list.value) for f in fl["inputs"].feature], np.float32)
    labels = np.array([f.int64_list.value[0] for f in fl["labels"].feature], np.int64)
    return inputs, labels


# --- one NoteSequence through its family's pipeline ------------------------------------------------


def event_sequences(
    sequence, config_id: str, training: bool, stats: Counter,
    transposition_range: tuple[int, ...] | None = None, stretch_factors: tuple[float, ...] | None = None,
    one_time_signature: bool = False,
) -> list[tuple[list, list | None]]:
    """The (events, controls) sequences ``config_id``'s pipeline extracts from one NoteSequence.

    ``transposition_range`` and ``stretch_factors`` replace the family's defaults (Magenta's:
    polyphony -4..4; performance -3..3 and 0.95..1.05 on training pieces; none elsewhere).
    """


    spec = get_config(config_id)
    out: list[tuple[list, list | None]] = []
    if spec.family == "performance":
        bins = 0 if config_id == "performance" else 32
        seq = sequences_lib.apply_sustain_control_changes(sequence)
        factors = (stretch_factors or PERF_STRETCH_FACTORS) if training else (1.0,)
        stretched = [sequences_lib.stretch_note_sequence(seq, f) for f in factors]
        for s in stretched:
            for piece in sequences_lib.split_note_sequence(s, PERF_SPLIT_SECONDS):
                q = sequences_lib.quantize_note_sequence_absolute(piece, spec.steps_per_second)
                for t in transpositions(q, (transposition_range or PERF_TRANSPOSITIONS) if training else (0,), stats):
                    out += [(e, None) for e in extract_performance_events(t, bins, stats)]
        return out

    if len({n.part for n in sequence.notes}) > len({n.instrument for n in sequence.notes}):
        # Score-based files (most of music21's MusicXML chorales) keep their voices apart as parts
        # of one instrument; the melody and drum extractors look at instruments.
        sequence = copy.deepcopy(sequence)
        for n in sequence.notes:
            n.instrument = n.part
        stats["pieces whose parts became instruments"] += 1
    for piece in split_on_time_changes(sequence, one_time_signature):
        q = quantize(piece, spec.steps_per_quarter, stats)
        if q is None or not q.notes:
            continue
        try:
            if spec.family == "melody":
                for t in transpositions(q, transposition_range or (0,), stats):
                    for m in extract_melodies(t, MELODY_MIN_BARS, MELODY_MAX_STEPS, MELODY_MIN_UNIQUE_PITCHES, stats):
                        m.squash(spec.min_note, spec.max_note, spec.transpose_to_key)
                        out.append((list(m), None))
            elif spec.family == "improv":
                out += [(melody, chords) for melody, chords in extract_lead_sheets(q, spec, stats)]
            elif spec.family == "polyphony":
                for t in transpositions(q, transposition_range or POLY_TRANSPOSITIONS, stats):
                    out += [(e, None) for e in extract_poly_events(t, stats)]
            elif spec.family == "drums":
                out += [(e, None) for e in extract_drum_tracks(q, stats)]
        except Exception as err:  # noqa: BLE001 - note-seq's NonIntegerStepsPerBarError and friends
            stats[f"pieces skipped: {type(err).__name__}"] += 1
    return out


def _worker_init() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@dataclass(frozen=True)
class Extraction:
    """What ``dataset`` does to every NoteSequence of one run (sent to each worker with the records).

    Raises UnknownConfigError for an unknown ``config_id`` and DatasetError for a bad ratio or
    chunk size.
    """

    config_id: str
    eval_ratio: float = 0.1
    seed: int = 0
    transposition_range: tuple[int, ...] | None = None
    stretch_factors: tuple[float, ...] | None = None
    chunk_steps: int | None = None
    one_time_signature: bool = False

    def __post_init__(self) -> None:
        get_config(self.config_id)
        if self.chunk_steps is not None and self.chunk_steps < 1:
            raise DatasetError(f"--chunk-steps must be at least 1, not {self.chunk_steps}")
        if not 0.0 <= self.eval_ratio < 1.0:
            raise DatasetError(f"--eval-ratio must be in [0, 1), not {self.eval_ratio}")


def split_key(sequence, blob: bytes) -> str:
    """What decides a NoteSequence's side of the train/eval split (``is_eval``): its id (convert
    writes ``path#tune``), else its file name, else a checksum of its serialized record (its
    content: the same wherever and in whatever order a runner reads it)."""
    return sequence.id or sequence.filename or f"record {zlib.crc32(blob):08x}"


def note_sequence(blob: bytes, stats: Counter):
    """The NoteSequence of a serialized record, or None (counted in ``stats``) when the record is
    not one: a foreign record further into a file is skipped and counted, like a bad file."""
    try:
        return music_pb2.NoteSequence.FromString(blob)
    except DecodeError:
        stats["records skipped: not a NoteSequence"] += 1
        return None


def process_sequence(blob: bytes, extraction: Extraction) -> tuple[bool, list[bytes], Counter, int]:
    """One serialized NoteSequence -> (is eval, serialized SequenceExamples, stats, steps)."""

    stats: Counter = Counter()
    sequence = note_sequence(blob, stats)
    if sequence is None:
        return False, [], stats, 0
    evaluation = is_eval(split_key(sequence, blob), extraction.eval_ratio, extraction.seed)
    spec = get_config(extraction.config_id)
    examples, steps = [], 0
    pairs = event_sequences(
        sequence, extraction.config_id, not evaluation, stats, extraction.transposition_range,
        extraction.stretch_factors, extraction.one_time_signature,
    )
    for events, controls in pairs:
        try:
            inputs, labels = encode(spec.make_encoder(), events, controls)
        except Exception as err:  # noqa: BLE001 - an event the encoding cannot represent (e.g. an odd chord)
            stats[f"sequences not encodable: {type(err).__name__}"] += 1
            continue
        if len(labels) == 0:
            continue
        size = extraction.chunk_steps or len(labels)
        for start in range(0, len(labels), size):
            examples.append(sequence_example_bytes(inputs[start : start + size], labels[start : start + size]))
        steps += len(labels)
    return evaluation, examples, stats, steps


# --- the command -------------------------------------------------------------------------------


def read_note_sequences(path: str | os.PathLike) -> Iterator[bytes]:
    """The serialized NoteSequences of a TFRecord file, or of its shards (``record_files``: what
    ``convert --runner beam`` writes); DatasetError if it is not one."""

    path = os.fspath(path)
    files = record_files(path)
    try:
        for i, record in enumerate(tf.data.TFRecordDataset(files).as_numpy_iterator()):
            if i == 0:
                try:
                    music_pb2.NoteSequence.FromString(record)
                except DecodeError as err:
                    raise DatasetError(f"{path}: its records are not NoteSequence protos ({err})") from err
            yield record
    except tf.errors.DataLossError as err:
        raise DatasetError(
            f"{path}: not a TFRecord file of NoteSequences (make one with `magenta-live-train convert`)"
        ) from err


@dataclass
class DatasetSummary(CountedSummary):
    """What a ``dataset`` run extracted (either runner; the VAE's too)."""

    sequences: int = 0
    training_examples: int = 0
    eval_examples: int = 0
    training_steps: int = 0
    eval_steps: int = 0
    eval_sequences: int = 0
    stats: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, evaluation: bool, examples: list[bytes], stats: Counter, steps: int) -> None:
        """Count one NoteSequence's result (``process_sequence``'s four values)."""
        self.sequences += 1
        self.eval_sequences += evaluation
        self.stats.update(stats)
        if evaluation:
            self.eval_examples += len(examples)
            self.eval_steps += steps
        else:
            self.training_examples += len(examples)
            self.training_steps += steps

    def text(self) -> str:
        lines = [
            (
                f"{self.sequences} NoteSequences ({self.eval_sequences} to eval): "
                f"{self.training_examples} training examples ({self.training_steps} steps), "
                f"{self.eval_examples} eval examples ({self.eval_steps} steps) in {self.seconds:.1f} s"
            )
        ]
        lines += [f"  {name}: {n}" for name, n in sorted(self.stats.items())]
        return "\n".join(lines)

    def check(self, config_id: str) -> None:
        """Raise DatasetError when nothing was extracted (the output is then worthless)."""
        if self.training_examples + self.eval_examples == 0:
            family = get_config(config_id).family
            raise DatasetError(f"no {family} examples could be extracted for {config_id}:\n{self.text()}")


def output_paths(config_id: str, output_dir: str | os.PathLike) -> dict[bool, str]:
    """``{False: training file, True: eval file}`` for ``config_id`` in ``output_dir`` (made if missing)."""
    os.makedirs(output_dir, exist_ok=True)
    name = OUTPUT_NAMES[get_config(config_id).family]
    return {False: os.path.join(output_dir, f"training_{name}.tfrecord"), True: os.path.join(output_dir, f"eval_{name}.tfrecord")}


def make_dataset(
    config_id: str, input_path: str | os.PathLike, output_dir: str | os.PathLike, eval_ratio: float = 0.1,
    seed: int = 0, limit: int | None = None, workers: int = 2, progress: bool = True,
    transposition_range: tuple[int, ...] | None = None, stretch_factors: tuple[float, ...] | None = None,
    chunk_steps: int | None = None, one_time_signature: bool = False,
) -> DatasetSummary:
    """Write ``training_<name>.tfrecord`` and ``eval_<name>.tfrecord`` for ``config_id``, in the
    order of the input's records (shards the Beam runner left under those names are removed).

    Raises UnknownConfigError, RecordFilesError (no input file or shards) and DatasetError (bad
    ratio, not a NoteSequence file, nothing extracted).
    """

    extraction = Extraction(config_id, eval_ratio, seed, transposition_range, stretch_factors, chunk_steps,
                            one_time_signature)
    records = list(read_note_sequences(input_path))
    if limit is not None:
        records = records[:limit]
    if not records:
        raise DatasetError(f"{input_path}: no NoteSequences in the file")
    paths = output_paths(config_id, output_dir)
    summary = DatasetSummary()
    start = time.perf_counter()
    bar = Progress(len(records), f"dataset {config_id}", unit="sequences") if progress else None
    work = functools.partial(process_sequence, extraction=extraction)
    with contextlib.ExitStack() as files:
        tmps = {k: files.enter_context(atomic_path(p)) for k, p in paths.items()}
        writers = {k: files.enter_context(tf.io.TFRecordWriter(t)) for k, t in tmps.items()}
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init) if workers > 1 else None
        results = pool.imap(work, records, chunksize=8) if pool is not None else map(work, records)
        try:
            for evaluation, examples, stats, steps in results:
                summary.add(evaluation, examples, stats, steps)
                for blob in examples:
                    writers[evaluation].write(blob)
                if bar:
                    bar.update()
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
        summary.seconds = time.perf_counter() - start
        summary.check(config_id)
        for path in paths.values():
            remove_shards(path)
    return summary
