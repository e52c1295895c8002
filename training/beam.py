"""``--runner beam``: ``convert`` and ``dataset`` as Apache Beam pipelines (the ``[beam]`` extra).

The work per element is the local runner's own: ``training.convert.convert_file`` per music file,
``training.dataset.process_sequence`` per NoteSequence; so both runners write the same records.
What differs:

- Order: Beam writes records in whatever order its workers finish them. The multiset of records
  equals the local runner's; their order in the files does not.
- Files: each output is a set of shards, ``NAME-00000-of-00002`` ... (the runner picks how many),
  written by ``WriteToTFRecord``. ``training.records.record_files(NAME)`` finds them; ``dataset
  --input NAME`` reads them by the plain name. The sinks write to a staging folder beside the
  outputs; only a run that finished and extracted something replaces what either runner left
  under the output names (``run_pipeline``), so a failed run loses nothing.
- Counts: the summaries' numbers travel as Beam metrics counters (``CountedSummary.counts``),
  read from the pipeline result once it has finished; a skipped file's example path does not.
- Where it runs: Beam's DirectRunner on this machine (``workers`` processes), unless the pipeline
  options name another runner. The files are listed here and read by the workers at the same
  absolute paths, so every worker must see the input folder (and the output folder) there.

``training.dataset`` (and so TensorFlow) is imported only where the dataset pipeline needs it,
so the workers of a ``convert`` pipeline start without it, as the local runner's do.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.tfrecordio import ReadAllFromTFRecord, WriteToTFRecord
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineResult

from training.convert import CountedSummary, Summary, convert_file, music_files
from training.errors import TrainingError
from training.records import record_files, remove_records, shard_files

if TYPE_CHECKING:
    from training.dataset import DatasetSummary, Extraction

CONVERT_COUNTERS = "magenta_live.convert"
DATASET_COUNTERS = "magenta_live.dataset"
"""The metrics namespaces of the two pipelines."""

_TRAINING, _EVAL = "training", "eval"  # the extraction's two outputs
_Summary = TypeVar("_Summary")


def pipeline_options(pipeline_args: list[str] | None = None, workers: int = 2) -> PipelineOptions:
    """Beam's options: the DirectRunner with ``workers`` processes (``multi_processing``; one in
    process when ``workers`` is 1), then ``pipeline_args`` (what followed ``--`` on the command
    line), which override those defaults (``--runner=FlinkRunner ...``).

    Raises TrainingError for an option Beam does not know (Beam itself would drop it with a
    warning: a misspelt ``--flink_master`` would quietly run elsewhere) or a value it refuses.
    """
    mode = "multi_processing" if workers > 1 else "in_memory"
    defaults = ["--runner=DirectRunner", f"--direct_num_workers={workers}", f"--direct_running_mode={mode}",
                "--default_sdk_harness_log_level=ERROR"]
    args = list(pipeline_args or [])
    options = PipelineOptions(defaults + args)
    refusal = io.StringIO()
    try:
        with contextlib.redirect_stderr(refusal):  # argparse's usage text: one line is enough
            known = options.get_all_options()
    except SystemExit as err:
        lines = [line for line in refusal.getvalue().splitlines() if line.strip()]
        reason = lines[-1].split("error: ", 1)[-1] if lines else f"exit status {err.code}"
        raise TrainingError(f"--runner beam: bad pipeline option: {reason}") from err
    unknown, after_option = [], False
    for arg in args:
        name = arg[2:].split("=", 1)[0] if arg.startswith("--") else None
        if name is not None and name in known:
            after_option = "=" not in arg  # its value may follow as the next argument
        elif not (after_option and not arg.startswith("-")):
            unknown.append(arg)
        else:
            after_option = False
    if unknown:
        raise TrainingError(f"--runner beam: pipeline options Beam does not know: {' '.join(unknown)} "
                            "(Beam spells them with underscores: --direct_num_workers=2)")
    return options


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
    build: Callable[[beam.Pipeline, dict[str, str]], None], namespace: str, outputs: list[str],
    accept: Callable[[dict[str, int]], _Summary], pipeline_args: list[str] | None = None, workers: int = 2,
) -> _Summary:
    """Run a pipeline whose sinks write to a staging folder beside the outputs, and only when it
    has finished and ``accept`` (its counters of ``namespace`` -> the summary; raising refuses
    the run) takes its counts, replace each output (what either runner left under that name)
    with the shards it wrote. ``build(pipeline, staged)`` adds the steps; ``staged`` maps each
    output to the name its sink writes instead.

    Raises TrainingError when Beam refuses the options or the pipeline fails, and what
    ``accept`` raises: the outputs are then as they were, and nothing staged is left.
    """
    magic = [output for output in outputs if glob.has_magic(output)]
    if magic:  # Beam's file sinks read their names as patterns
        raise TrainingError(f"--runner beam: {magic[0]}: Beam cannot write names with [ ] * or ?; choose another")
    try:
        pipeline = beam.Pipeline(options=pipeline_options(pipeline_args, workers))
    except ValueError as err:  # an unknown runner
        raise TrainingError(f"--runner beam: bad pipeline options: {err}") from err
    stage = tempfile.mkdtemp(prefix=".beam-staging-", dir=os.path.dirname(outputs[0]))
    saved_tempdir = tempfile.tempdir
    try:
        staged = {output: os.path.join(stage, f"output{i}") for i, output in enumerate(outputs)}
        try:
            build(pipeline, staged)
            # The runner's own scratch folders (its job server's) go in the staging folder too, and
            # with it; otherwise each run leaves empty folders in the system's temporary folder.
            tempfile.tempdir = stage
            result = pipeline.run()
            result.wait_until_finish()
        except (Exception, SystemExit) as err:  # noqa: BLE001 - a runner fails in its own ways
            text = " ".join(str(err).split())
            raise TrainingError(f"--runner beam: the pipeline failed: {type(err).__name__}: {text[-300:]}") from err
        summary = accept(counter_values(result, namespace))
        for output, name in staged.items():
            remove_records(output)
            for shard in shard_files(name):
                os.replace(shard, output + shard[len(name):])
        return summary
    finally:
        tempfile.tempdir = saved_tempdir
        shutil.rmtree(stage, ignore_errors=True)


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
    or none that could be read; TrainingError when the pipeline fails (the output is then as it was).
    """
    paths = [os.path.abspath(p) for p in music_files(input_dir, recursive)]
    root = os.path.abspath(input_dir)
    output = os.path.abspath(output)
    start = time.perf_counter()

    def build(pipeline: beam.Pipeline, staged: dict[str, str]) -> None:
        _ = (
            pipeline
            | "Files" >> beam.Create(paths)
            | "Convert" >> beam.FlatMap(_convert, root)
            | "Write" >> WriteToTFRecord(staged[output])
        )

    def accept(counts: dict[str, int]) -> Summary:
        summary = Summary.from_counts(counts)
        summary.seconds = time.perf_counter() - start
        summary.check(input_dir)
        return summary

    return run_pipeline(build, CONVERT_COUNTERS, [output], accept, pipeline_args, workers)


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
    NoteSequence file, nothing extracted) and TrainingError (the pipeline failed): the outputs
    are then as they were.
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

    def build(pipeline: beam.Pipeline, staged: dict[str, str]) -> None:
        examples = (
            pipeline
            | "Files" >> beam.Create(files)
            | "Read" >> ReadAllFromTFRecord()
            | "Extract" >> beam.FlatMap(_extract, extraction).with_outputs(_EVAL, main=_TRAINING)
        )
        _ = examples[_TRAINING] | "WriteTraining" >> WriteToTFRecord(staged[paths[False]])
        _ = examples[_EVAL] | "WriteEval" >> WriteToTFRecord(staged[paths[True]])

    def accept(counts: dict[str, int]) -> DatasetSummary:
        summary = DatasetSummary.from_counts(counts)
        summary.seconds = time.perf_counter() - start
        summary.check(config_id)
        return summary

    return run_pipeline(build, DATASET_COUNTERS, list(paths.values()), accept, pipeline_args, workers)
