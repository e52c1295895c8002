"""``--runner beam``: ``convert`` and ``dataset`` as Apache Beam pipelines (the ``[beam]`` extra).

The work per element is the local runner's own: ``training.convert.convert_file`` per music file,
``training.dataset.process_sequence`` per NoteSequence; so both runners write the same records.
What differs:

- Order: Beam writes records in whatever order its workers finish them. The multiset of records
  equals the local runner's; their order in the files does not.
- Files: each output is a set of shards, ``NAME-00000-of-00002`` ... (the runner picks how many),
  written by ``WriteToTFRecord``. ``training.records.record_files(NAME)`` finds them; ``dataset
  --input NAME`` reads them by the plain name. Before a run, what either runner left under its
  output names is removed (``training.records.remove_records``).
- Counts: the summaries' numbers travel as Beam metrics counters (``CountedSummary.counts``),
  read from the pipeline result once it has finished; a skipped file's example path does not.
- Where it runs: Beam's DirectRunner on this machine (``workers`` processes), unless the pipeline
  options name another runner. The files are listed here and read by the workers at the same
  absolute paths, so every worker must see the input folder (and the output folder) there.

``training.dataset`` (and so TensorFlow) is imported only where the dataset pipeline needs it,
so the workers of a ``convert`` pipeline start without it, as the local runner's do.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.tfrecordio import ReadAllFromTFRecord, WriteToTFRecord
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineResult

from training.convert import CountedSummary, Summary, convert_file, music_files
from training.errors import DataError, TrainingError
from training.records import record_files, remove_records

if TYPE_CHECKING:
    from training.dataset import DatasetSummary, Extraction

CONVERT_COUNTERS = "magenta_live.convert"
DATASET_COUNTERS = "magenta_live.dataset"
"""The metrics namespaces of the two pipelines."""

_TRAINING, _EVAL = "training", "eval"  # the extraction's two outputs


def pipeline_options(pipeline_args: list[str] | None = None, workers: int = 2) -> PipelineOptions:
    """Beam's options: the DirectRunner with ``workers`` processes (``multi_processing``; one in
    process when ``workers`` is 1), then ``pipeline_args`` (what followed ``--`` on the command
    line), which override those defaults (``--runner=FlinkRunner ...``)."""
    mode = "multi_processing" if workers > 1 else "in_memory"
    defaults = ["--runner=DirectRunner", f"--direct_num_workers={workers}", f"--direct_running_mode={mode}",
                "--default_sdk_harness_log_level=ERROR"]
    return PipelineOptions(defaults + list(pipeline_args or []))


def _count(namespace: str, summary: CountedSummary) -> None:
    """Add one element's summary to the pipeline's counters."""
    for name, n in summary.counts().items():
        if n:
            Metrics.counter(namespace, name).inc(n)


def counter_values(result: PipelineResult, namespace: str) -> dict[str, int]:
    """The counters of ``namespace`` in a finished pipeline, by name: committed values, or the
    attempted ones where a runner commits none (the same name in several steps: summed)."""
    totals: Counter = Counter()
    for counter in result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] += value or 0
    return dict(totals)


def run_pipeline(
    build: Callable[[beam.Pipeline], None], namespace: str, outputs: list[str],
    pipeline_args: list[str] | None = None, workers: int = 2,
) -> dict[str, int]:
    """Make a pipeline, let ``build`` add its steps, clear its ``outputs`` (``remove_records``: what
    either runner wrote there), run it to the end; its counters of ``namespace``.

    Raises TrainingError when Beam refuses the pipeline options (an unknown runner, ...); the
    outputs are then left as they were.
    """
    try:
        pipeline = beam.Pipeline(options=pipeline_options(pipeline_args, workers))
    except ValueError as err:
        raise TrainingError(f"--runner beam: bad pipeline options: {err}") from err
    build(pipeline)
    for output in outputs:
        remove_records(output)
    result = pipeline.run()
    result.wait_until_finish()
    return counter_values(result, namespace)


# --- convert ----------------------------------------------------------------------------------


def _convert(path: str, root: str) -> Iterator[bytes]:
    result = convert_file(path, root)
    counted = Summary(files=1)
    counted.add(result)
    _count(CONVERT_COUNTERS, counted)
    yield from result.sequences


def convert_dir_beam(
    input_dir: str | os.PathLike, output: str | os.PathLike, recursive: bool = False,
    pipeline_args: list[str] | None = None, workers: int = 2,
) -> Summary:
    """``training.convert.convert_dir`` as a Beam pipeline: the same records (in no fixed order)
    as shards ``output-SSSSS-of-NNNNN``; the summary has no example paths.

    Raises FileNotFoundError for a missing directory and DataError when it holds no music file,
    or none that could be read (the shards are then removed).
    """
    paths = [os.path.abspath(p) for p in music_files(input_dir, recursive)]
    root = os.path.abspath(input_dir)
    output = os.path.abspath(output)
    start = time.perf_counter()

    def build(pipeline: beam.Pipeline) -> None:
        _ = (
            pipeline
            | "Files" >> beam.Create(paths)
            | "Convert" >> beam.FlatMap(_convert, root)
            | "Write" >> WriteToTFRecord(output)
        )

    summary = Summary.from_counts(run_pipeline(build, CONVERT_COUNTERS, [output], pipeline_args, workers))
    summary.seconds = time.perf_counter() - start
    try:
        summary.check(input_dir)
    except DataError:
        remove_records(output)
        raise
    return summary


# --- dataset ----------------------------------------------------------------------------------


def _extract(blob: bytes, extraction: Extraction):  # no return hint: Beam would read it as the outputs' type
    from training.dataset import DatasetSummary, process_sequence  # TensorFlow: dataset's workers only

    evaluation, examples, stats, steps = process_sequence(blob, extraction)
    counted = DatasetSummary()
    counted.add(evaluation, examples, stats, steps)
    _count(DATASET_COUNTERS, counted)
    for example in examples:
        yield pvalue.TaggedOutput(_EVAL, example) if evaluation else example


def make_dataset_beam(
    config_id: str, input_path: str | os.PathLike, output_dir: str | os.PathLike, eval_ratio: float = 0.1,
    seed: int = 0, transposition_range: tuple[int, ...] | None = None,
    stretch_factors: tuple[float, ...] | None = None, chunk_steps: int | None = None,
    one_time_signature: bool = False, pipeline_args: list[str] | None = None, workers: int = 2,
) -> DatasetSummary:
    """``training.dataset.make_dataset`` as a Beam pipeline: the same training and eval records (in
    no fixed order) as shards ``training_<name>.tfrecord-SSSSS-of-NNNNN`` and ``eval_...`` in
    ``output_dir``. ``input_path`` is a TFRecord file of NoteSequences or the name of its shards.
    There is no ``limit``: a pipeline reads its input in no fixed order, so it has no first N.

    Raises UnknownConfigError, RecordFilesError (no input) and DatasetError (bad ratio, not a
    NoteSequence file, nothing extracted: the shards are then removed).
    """
    from training.dataset import DatasetError, DatasetSummary, Extraction, output_paths, read_note_sequences

    extraction = Extraction(config_id, eval_ratio, seed, transposition_range, stretch_factors, chunk_steps,
                            one_time_signature)
    files = [os.path.abspath(f) for f in record_files(input_path)]
    records = read_note_sequences(input_path)  # checks here that the first record is a NoteSequence
    first = next(records, None)
    records.close()
    if first is None:
        raise DatasetError(f"{input_path}: no NoteSequences in the file")
    paths = {k: os.path.abspath(p) for k, p in output_paths(config_id, output_dir).items()}
    start = time.perf_counter()

    def build(pipeline: beam.Pipeline) -> None:
        examples = (
            pipeline
            | "Files" >> beam.Create(files)
            | "Read" >> ReadAllFromTFRecord()
            | "Extract" >> beam.FlatMap(_extract, extraction).with_outputs(_EVAL, main=_TRAINING)
        )
        _ = examples[_TRAINING] | "WriteTraining" >> WriteToTFRecord(paths[False])
        _ = examples[_EVAL] | "WriteEval" >> WriteToTFRecord(paths[True])

    summary = DatasetSummary.from_counts(run_pipeline(build, DATASET_COUNTERS, list(paths.values()), pipeline_args, workers))
    summary.seconds = time.perf_counter() - start
    try:
        summary.check(config_id)
    except DatasetError:
        for path in paths.values():
            remove_records(path)
        raise
    return summary
