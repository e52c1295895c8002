"""``magenta-live-train train``: train (or, with ``--eval``, evaluate) a configuration's network.

Run directory layout (as Magenta's ``*_rnn_train``):

- ``RUN_DIR/run.json``: the configuration id, hyperparameters and encoding sizes the run
  trains (written on the first run; export reads it);
- ``RUN_DIR/train/``: checkpoints (``ckpt-STEP``, ``tf.train.CheckpointManager``) and the
  training TensorBoard summaries;
- ``RUN_DIR/eval/``: the evaluation TensorBoard summaries (``--eval``).

Training runs until the global step reaches ``--num-training-steps`` (a total, not an
increment), so running the same command again after an interruption resumes where the last
checkpoint left off. Evaluation runs one pass over the evaluation file with the latest
checkpoint and changes no weights.

Input: TFRecord files of ``tf.train.SequenceExample`` as Magenta's ``*_create_dataset`` writes
them: feature list ``inputs`` (one FloatList of the encoding's input size per step) and
``labels`` (one Int64List holding one class per step). For
``performance_with_dynamics_compact`` inputs may also be Magenta's class index (width 1).

Distribution (``--strategy``): ``default`` trains on one device; ``mirrored`` keeps a copy of
the network on every GPU of this machine (or, with ``--cpu-replicas N``, on N logical CPU
devices) and splits each batch between them; ``multi-worker`` does the same across machines,
one process per machine, as ``TF_CONFIG`` describes them. In every strategy the batch size is
the global batch (split across replicas), the loss is the mean over the valid steps of the
whole batch, and gradients are summed across replicas before clipping: one step is the same
update as on one device. Only the chief (worker 0) writes checkpoints, summaries and run.json.

Mixed precision (``--mixed-precision``): float16 computation with float32 weights and dynamic
loss scaling (Keras's ``mixed_float16``); fast on GPUs with tensor cores, slower than float32
on a CPU. Checkpoints and exports stay float32.

Summaries (train and eval): ``loss`` (mean cross-entropy per event, nats),
``metrics/perplexity``, ``metrics/accuracy``, ``metrics/event_accuracy`` and
``metrics/no_event_accuracy`` (accuracy on steps whose label is / is not the encoding's
"no event" class), ``metrics/loss_per_step`` and ``metrics/perplexity_per_step`` (per time
step: differs from per event only for performance models, whose time shifts span several
steps).
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from live.files import atomic_write
from live.models.configs import get_config
from training.commands.train import STRATEGIES
from training.errors import CheckpointMismatchError, DataError, TrainingError
from training.records import record_files, shard_files
from training.model import EventRNN, HParams, default_hparams, event_labels, parse_hparams


RUN_FILE = "run.json"
COMPACT = "performance_with_dynamics_compact"
SUM = tf.distribute.ReduceOp.SUM  # how replicas' values add up
METRICS = (
    "loss",
    "metrics/perplexity",
    "metrics/accuracy",
    "metrics/event_accuracy",
    "metrics/no_event_accuracy",
    "metrics/loss_per_step",
    "metrics/perplexity_per_step",
)


# --------------------------------------------------------------------------------------------
# Run directory


@dataclass
class RunInfo:
    """What ``RUN_DIR/run.json`` records."""

    config_id: str
    hparams: HParams
    input_size: int
    num_classes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "config_id": self.config_id,
            "hparams": self.hparams.to_dict(),
            "input_size": self.input_size,
            "num_classes": self.num_classes,
        }


def read_run_info(run_dir: str) -> RunInfo | None:
    """The run's ``run.json``, or None when the directory has none."""

    path = os.path.join(run_dir, RUN_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        return RunInfo(str(d["config_id"]), HParams.from_dict(d["hparams"]), int(d["input_size"]), int(d["num_classes"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TrainingError(f"{path}: not a readable run description ({err})") from err


def write_run_info(run_dir: str, info: RunInfo) -> None:
    os.makedirs(run_dir, exist_ok=True)
    atomic_write(os.path.join(run_dir, RUN_FILE), json.dumps(info.to_json(), indent=2, sort_keys=True) + "\n")


def resolve_run(run_dir: str, config_id: str | None, hparams_text: str) -> RunInfo:
    """The configuration and hyperparameters for a run: a new run takes Magenta's defaults for
    ``config_id`` plus ``hparams_text``; an existing run keeps its own, plus ``hparams_text``.

    Raises UnknownConfigError, HParamsError, or TrainingError when ``config_id`` differs from
    the run's.
    """

    saved = read_run_info(run_dir)
    if saved is not None:
        if config_id is not None and config_id != saved.config_id:
            raise TrainingError(
                f"run directory {run_dir} trains {saved.config_id}, not {config_id}; "
                "use a new --run-dir for another configuration"
            )
        config_id = saved.config_id
        base = saved.hparams
    elif config_id is None:
        raise TrainingError(f"{run_dir} has no {RUN_FILE}: give --config for a new run")
    else:
        base = default_hparams(config_id)
    hparams = parse_hparams(hparams_text, base)
    encoder = get_config(config_id).make_encoder()
    return RunInfo(config_id, hparams, encoder.input_size, encoder.num_classes)


def _shape_key(hparams: HParams) -> tuple:
    return (tuple(hparams.rnn_layer_sizes), hparams.attn_length)


def check_checkpoint_fits(checkpoint_path: str, model: EventRNN, where: str) -> None:
    """Raise CheckpointMismatchError naming every model weight the checkpoint lacks or has in
    another shape."""

    try:
        stored = dict(tf.train.list_variables(checkpoint_path))
    except (tf.errors.OpError, ValueError) as err:
        raise TrainingError(f"{checkpoint_path}: unreadable checkpoint ({err})") from err
    problems = []
    for name, var in model._named_variables().items():
        keys = [f"model/{k}/.ATTRIBUTES/VARIABLE_VALUE" for k in _checkpoint_keys(name)]
        shape = next((stored[k] for k in keys if k in stored), None)
        if shape is None:
            problems.append(f"{name} missing")
        elif tuple(shape) != tuple(var.shape):
            problems.append(f"{name} is {tuple(shape)}, the network needs {tuple(var.shape)}")
    if problems:
        raise CheckpointMismatchError(
            f"{where}: the checkpoint {os.path.basename(checkpoint_path)} does not fit this network "
            f"({'; '.join(problems[:4])}{'; ...' if len(problems) > 4 else ''}); it was trained with other "
            "rnn_layer_sizes / attn_length / configuration. Use a new --run-dir or the run's own hparams."
        )


def _checkpoint_keys(canonical: str) -> list[str]:
    """Checkpoint object paths a canonical weight may have (see ``EventRNN`` attribute names)."""
    if canonical.startswith("attention/"):
        return ["attention/" + canonical[len("attention/") :].replace("/", "_")]
    if canonical.startswith("output/"):
        return ["output_" + canonical[len("output/") :]]
    keys = [canonical]  # lstm_K/kernel, lstm_K/bias
    if canonical.startswith("lstm_0/"):  # also reachable as the attention wrapper's cell
        keys.append("attention/cell/" + canonical[len("lstm_0/") :])
    return keys


# --------------------------------------------------------------------------------------------
# Data


def sequence_example_files(pattern: str) -> list[str]:
    """Files named by ``pattern`` (a path, a glob, or several separated by commas). A plain path
    that is not a file names the shards ``--runner beam`` wrote under it (``record_files``)."""
    paths: list[str] = []
    for part in [p.strip() for p in pattern.split(",") if p.strip()]:
        part = os.path.expanduser(part)
        if not glob.has_magic(part) and not os.path.exists(part) and shard_files(part):
            paths += record_files(part)
            continue
        matches = sorted(glob.glob(part))
        if not matches:
            raise DataError(f"sequence example file {part!r} does not exist (or the pattern matches nothing)")
        paths += [m for m in matches if os.path.isfile(m)]
    if not paths:
        raise DataError(f"no sequence example files in {pattern!r}")
    return paths


def probe_inputs(paths: list[str], input_size: int, config_id: str) -> int:
    """Check the first record of each file; return the width of its ``inputs`` (input_size,
    or 1 for compact index inputs). Raises DataError for empty or foreign files."""

    widths = set()
    for path in paths:
        try:
            first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
        except tf.errors.OpError as err:
            raise DataError(f"{path}: not a TFRecord file ({err.message.splitlines()[0]})") from err
        if first is None:
            continue
        example = tf.train.SequenceExample()
        try:
            example.ParseFromString(first.numpy())
        except Exception as err:  # protobuf's DecodeError has no common base with OSError
            raise DataError(f"{path}: records are not tf.train.SequenceExample ({err})") from err
        lists = example.feature_lists.feature_list
        if "inputs" not in lists or "labels" not in lists:
            raise DataError(
                f"{path}: a SequenceExample without 'inputs' and 'labels' feature lists "
                f"(it has {sorted(lists) or 'none'}); write them with `magenta-live-train dataset`"
            )
        steps = lists["inputs"].feature
        if len(steps) != len(lists["labels"].feature):
            raise DataError(f"{path}: {len(steps)} input steps but {len(lists['labels'].feature)} labels")
        if steps:
            widths.add(len(steps[0].float_list.value))
    if not widths:
        raise DataError(f"no sequence examples in {', '.join(paths)} (the files are empty)")
    allowed = {input_size, 1} if config_id == COMPACT else {input_size}
    if len(widths) > 1 or not widths <= allowed:
        raise DataError(
            f"{', '.join(paths)}: inputs have width {sorted(widths)}, but {config_id} takes {input_size}; "
            "was the data made for another configuration?"
        )
    return widths.pop()


def make_dataset(
    paths: list[str], width: int, input_size: int, batch_size: int, training: bool, shuffle_buffer: int | None = None
) -> tf.data.Dataset:
    """Batches (inputs float32 [B, T, input_size], labels int64 [B, T], lengths int32 [B]),
    padded to the longest sequence of each batch. Training: shuffled (a buffer of
    ``shuffle_buffer`` serialized sequences, default max(512, 4 * batch_size): performance
    sequences take about a megabyte each) and repeated forever. Evaluation: one pass in file
    order."""

    features = {
        "inputs": tf.io.FixedLenSequenceFeature([width], tf.float32),
        "labels": tf.io.FixedLenSequenceFeature([], tf.int64),
    }

    def parse(record):
        _, seq = tf.io.parse_single_sequence_example(record, sequence_features=features)
        inputs = seq["inputs"]
        if width != input_size:  # compact: the class index, expanded as Magenta's graph does
            inputs = tf.one_hot(tf.cast(inputs[:, 0], tf.int64), input_size)
        return inputs, seq["labels"], tf.shape(seq["labels"], out_type=tf.int32)[0]

    ds = tf.data.TFRecordDataset(paths)
    if training:
        ds = ds.shuffle(shuffle_buffer or max(512, 4 * batch_size), reshuffle_each_iteration=True).repeat()
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.filter(lambda x, y, n: n > 0)
    ds = ds.padded_batch(batch_size, padded_shapes=([None, input_size], [None], []))
    return ds.prefetch(2)


# --------------------------------------------------------------------------------------------
# Loss and metrics


class Metrics:
    """Magenta's training metrics on one padded batch, as sums (so eval can add batches)."""

    def __init__(self, no_event_label: int, steps_per_class) -> None:

        self.no_event_label = no_event_label
        self.steps_per_class = tf.constant(steps_per_class, tf.float32)

    def sums(self, logits, labels, lengths) -> dict[str, Any]:
        """Sums over the valid steps of a batch: cross-entropy, events, correct, ..."""

        mask = tf.sequence_mask(lengths, tf.shape(labels)[1], tf.float32)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1), labels), tf.float32) * mask
        no_event = tf.cast(tf.equal(labels, self.no_event_label), tf.float32) * mask
        event = mask - no_event
        return {
            "ce": tf.reduce_sum(ce * mask),
            "count": tf.reduce_sum(mask),
            "correct": tf.reduce_sum(correct),
            "events": tf.reduce_sum(event),
            "events_correct": tf.reduce_sum(correct * event),
            "no_events": tf.reduce_sum(no_event),
            "no_events_correct": tf.reduce_sum(correct * no_event),
            "steps": tf.reduce_sum(tf.gather(self.steps_per_class, labels) * mask),
        }

    @staticmethod
    def summarize(s: dict[str, float]) -> dict[str, float]:
        """Sums -> the named metrics (Magenta's names)."""
        div = lambda a, b: float(a) / float(b) if float(b) else float("nan")  # noqa: E731
        loss = div(s["ce"], s["count"])
        per_step = div(s["ce"], s["steps"])
        return {
            "loss": loss,
            "metrics/perplexity": math.exp(min(loss, 700.0)),
            "metrics/accuracy": div(s["correct"], s["count"]),
            "metrics/event_accuracy": div(s["events_correct"], s["events"]),
            "metrics/no_event_accuracy": div(s["no_events_correct"], s["no_events"]),
            "metrics/loss_per_step": per_step,
            "metrics/perplexity_per_step": math.exp(min(per_step, 700.0)),
        }


def write_scalars(writer, step: int, values: dict[str, float]) -> None:
    """Write ``METRICS`` from ``values`` as TensorBoard scalar summaries at ``step``.

    ``tf.summary.scalar`` needs the tensorboard package; this writes the same records (a float
    tensor with the "scalars" plugin metadata) with TensorFlow alone.
    """

    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    with writer.as_default(step=step):
        for name in METRICS:
            tf.summary.write(name, tf.constant(values[name], tf.float32), metadata=metadata)
    writer.flush()


def read_scalars(directory: str) -> dict[str, list[tuple[int, float]]]:
    """Every scalar summary in ``directory``'s event files: tag -> [(step, value)] in file order."""

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((int(event.step), float(tf.make_ndarray(value.tensor))))
    return out


# --------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainResult:
    """What a training run did: the final global step, steps run now, wall seconds, and the
    metrics of the last step."""

    step: int
    steps_run: int
    seconds: float
    metrics: dict[str, float]


def build(info: RunInfo, run_dir: str, loss_scaling: bool = False, save_dir: str | None = None):
    """(model, optimizer, step variable, checkpoint, manager) for a run; nothing restored.

    Called inside a distribution strategy's scope, the variables are that strategy's.
    ``loss_scaling`` wraps Adam in Keras's LossScaleOptimizer (for float16 compute); the
    checkpoint holds Adam itself either way, so a run can switch mixed precision on or off.
    ``save_dir``: where the manager writes (default ``run_dir/train``; another worker than
    the chief writes to a scratch folder).
    """

    model = EventRNN.for_config(info.config_id, info.hparams)
    # TensorFlow 1's Adam defaults (Magenta's optimizer), epsilon 1e-8.
    adam = keras.optimizers.Adam(learning_rate=info.hparams.learning_rate, epsilon=1e-8)
    optimizer = keras.optimizers.LossScaleOptimizer(adam) if loss_scaling else adam
    optimizer.build(model.trainable_variables)
    # Counted once per step, whatever the number of replicas.
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step",
                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    checkpoint = tf.train.Checkpoint(step=step, model=model, optimizer=adam)
    directory = save_dir or os.path.join(run_dir, "train")
    manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=5, checkpoint_name="ckpt")
    return model, optimizer, step, checkpoint, manager


def restore(run_dir: str, model, checkpoint, manager, *, require: bool, weights_only: bool = False) -> str | None:
    """Restore the latest checkpoint of ``run_dir/train`` (checked for shape first); None when
    there is none."""
    path = tf.train.latest_checkpoint(os.path.join(run_dir, "train"))
    if path is None:
        if require:
            raise TrainingError(f"no checkpoint in {os.path.join(run_dir, 'train')}: train first")
        return None
    check_checkpoint_fits(path, model, run_dir)
    status = checkpoint.restore(path)
    if weights_only:
        status.expect_partial()
    return path


def batch_signature(input_size: int) -> tuple:
    """The tf.function signature of a padded batch (any batch size and length: no retracing)."""

    return (
        tf.TensorSpec([None, None, input_size], tf.float32),
        tf.TensorSpec([None, None], tf.int64),
        tf.TensorSpec([None], tf.int32),
    )


def make_train_step(model, optimizer, step, metrics: Metrics, hparams: "HParams", strategy=None, signature=None):
    """A compiled training step on one global batch (inputs, labels, lengths) -> metric sums
    over the whole batch (plus ``sequences``).

    Each replica runs the network on its share of the batch; the loss is the mean cross-entropy
    over the valid steps of the whole batch; gradients are summed across replicas, clipped to
    ``clip_norm`` by global norm (Magenta's ``create_train_op``), and applied as one Adam update;
    ``step`` + 1. With a LossScaleOptimizer the loss is scaled before the gradients and
    unscaled before clipping; a step whose gradients overflow is skipped by the optimizer.
    ``strategy``: a tf.distribute strategy (default: the default one-device strategy); the
    batches must come from its ``experimental_distribute_dataset``, whose ``element_spec`` is
    ``signature`` (default: ``batch_signature``, plain batches on one device).
    """
    strategy = strategy or tf.distribute.get_strategy()
    scaling = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

    def replica_step(inputs, labels, lengths):
        context = tf.distribute.get_replica_context()
        scale = optimizer.dynamic_scale if scaling else tf.constant(1.0)
        with tf.GradientTape() as tape:
            logits = tf.cast(model(inputs, training=True), tf.float32)
            sums = metrics.sums(logits, labels, lengths)
            count = context.all_reduce(SUM, sums["count"])  # valid steps in the whole batch
            scaled = sums["ce"] / tf.maximum(count, 1.0) * scale
        apply_one_update(optimizer, model.trainable_variables, tape.gradient(scaled, model.trainable_variables),
                         hparams.clip_norm, scale)
        step.assign_add(1)
        return {**sums, "sequences": tf.cast(tf.shape(lengths)[0], tf.float32)}

    return summed_over_replicas(strategy, replica_step, signature or batch_signature(model.input_size))


def apply_one_update(optimizer, variables, grads, clip_norm: float, scale=1.0) -> None:
    """In a replica: sum ``grads`` (this replica's gradient of its part of the loss, times
    ``scale``) across the replicas, unscale, clip by global norm, and apply: one update for the
    whole batch, as on one device. apply_gradients sums what the replicas hand it (and a
    LossScaleOptimizer divides by its scale, skipping a step that overflowed), so each replica
    hands in its share."""
    context = tf.distribute.get_replica_context()
    grads = context.all_reduce(SUM, grads)  # the whole batch's gradient
    grads, _ = tf.clip_by_global_norm([g / scale for g in grads], clip_norm)
    share = scale / context.num_replicas_in_sync
    optimizer.apply_gradients(zip([g * share for g in grads], variables))


def summed_over_replicas(strategy, replica_step, signature):
    """A compiled step that runs ``replica_step`` on every replica's share of the batch and sums
    each of its results over the replicas; ``signature``: the step's input signature."""

    @tf.function(input_signature=signature)
    def step(*args):
        per_replica = strategy.run(replica_step, args=args)
        return {k: strategy.reduce(SUM, v, axis=None) for k, v in per_replica.items()}

    return step


def make_strategy(name: str, cpu_replicas: int = 1):
    """The tf.distribute strategy ``--strategy`` names: ``default`` (one device), ``mirrored``
    (every GPU here, else every logical CPU device), ``multi-worker`` (the cluster in
    ``TF_CONFIG``; each worker's GPUs, or one CPU). ``cpu_replicas`` > 1 (mirrored only) first
    splits the CPU into that many logical devices.

    Call it before TensorFlow runs anything in this process. Raises TrainingError.
    """
    if name not in STRATEGIES:
        raise TrainingError(f"--strategy: {name!r} is not one of {', '.join(STRATEGIES)}")
    if cpu_replicas > 1:
        if name != "mirrored":
            raise TrainingError(f"--cpu-replicas: for --strategy mirrored ({name} runs one replica per "
                                f"{'machine' if name == 'default' else 'worker on a machine without GPUs'})")
        try:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
        except RuntimeError as err:
            raise TrainingError(f"--cpu-replicas: TensorFlow already started in this process ({err})") from err
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    check_tf_config(os.environ.get("TF_CONFIG", ""))
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (ValueError, TypeError, tf.errors.OpError) as err:
        raise TrainingError(f"--strategy multi-worker: TF_CONFIG is not usable ({' '.join(str(err).split())[:300]})") from err


TF_CONFIG_EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'


def check_tf_config(text: str) -> None:
    """Raise TrainingError unless ``text`` (the TF_CONFIG variable) describes a cluster of
    "host:port" addresses and this task's place in it. TensorFlow itself would train alone on
    an empty one, and fail with a traceback on a missing port."""
    where = f"--strategy multi-worker: TF_CONFIG {text!r}" if text else "--strategy multi-worker: TF_CONFIG is not set"
    try:
        config = json.loads(text) if text else None
    except ValueError as err:
        raise TrainingError(f"{where} is not JSON ({err}); every worker needs e.g. {TF_CONFIG_EXAMPLE}") from err
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster or not isinstance(task, dict):
        raise TrainingError(f"{where}: every worker needs a cluster and its task, e.g. {TF_CONFIG_EXAMPLE} "
                            "(see docs/TRAINING.md)")
    for kind, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses or not all(
            isinstance(a, str) and a.rpartition(":")[2].isdigit() and a.rpartition(":")[0] for a in addresses
        ):
            raise TrainingError(f'{where}: cluster "{kind}" must list "host:port" addresses, not {addresses!r}')
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in cluster or not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[kind]):
        raise TrainingError(f"{where}: the task ({kind!r}, index {index!r}) is not a place in the cluster "
                            f"({', '.join(f'{k}: {len(v)}' for k, v in cluster.items())})")


def distribute(distribution, dataset: tf.data.Dataset):
    """``dataset``'s batches split across ``distribution``'s replicas. Each worker reads every file
    and keeps its share of the records (the files may be fewer than the workers)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return distribution.experimental_distribute_dataset(dataset.with_options(options))


def start_worker(strategy: str, cpu_replicas: int, log):
    """(distribution, is chief, log, scratch folder or None) for a training run: the strategy made
    first (before TensorFlow runs anything); another worker than the chief logs under its name
    and saves its checkpoints to a scratch folder (the caller removes it)."""
    distribution = make_strategy(strategy, cpu_replicas)
    chief, name = worker_role(distribution)
    if name:
        log = (lambda say: lambda text: say(f"{name}: {text}"))(log)
    scratch = None if chief else tempfile.mkdtemp(prefix="magenta-live-train-")
    return distribution, chief, log, scratch


def log_replicas(distribution, strategy: str, batch_size: int, log) -> None:
    """One line on how the global batch is split, when it is."""
    replicas = distribution.num_replicas_in_sync
    if batch_size < replicas:
        raise TrainingError(f"batch_size {batch_size} is smaller than the {replicas} replicas it is split across")
    if replicas > 1:
        devices = ", ".join(d.split("device:")[-1] for d in distribution.extended.worker_devices)
        log(f"--strategy {strategy}: {replicas} replicas ({'this worker: ' if strategy == 'multi-worker' else ''}{devices}), "
            f"{batch_size} sequences per step in all")


def worker_role(strategy) -> tuple[bool, str]:
    """(whether this process is the chief, its name in the cluster: "worker 1"; "" on one
    machine). The chief is the "chief" task, or worker 0 when the cluster names none."""
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster:
        return True, ""
    kind, index = resolver.task_type, int(resolver.task_id)
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return chief, f"{kind} {index}"


def train(
    run_dir: str,
    config_id: str | None,
    sequence_example_file: str,
    hparams: str = "",
    num_training_steps: int = 1000,
    summary_every: int = 10,
    checkpoint_every: int = 100,
    log_every: int = 10,
    log=print,
    strategy: str = "default",
    cpu_replicas: int = 1,
    mixed_precision: bool = False,
) -> TrainResult:
    """Train until the global step reaches ``num_training_steps`` (resuming from the latest
    checkpoint in ``run_dir/train``); checkpoint every ``checkpoint_every`` steps and at the end.

    ``strategy``, ``cpu_replicas``: see ``make_strategy`` (made first, before TensorFlow runs).
    ``mixed_precision``: float16 compute, float32 weights, dynamic loss scaling.
    """

    distribution, chief, log, scratch = start_worker(strategy, cpu_replicas, log)
    policy = keras.config.dtype_policy()
    try:
        info = resolve_run(run_dir, config_id, hparams)
        saved = read_run_info(run_dir)
        if saved is not None and _shape_key(saved.hparams) != _shape_key(info.hparams):
            raise CheckpointMismatchError(
                f"run directory {run_dir} trains rnn_layer_sizes={saved.hparams.rnn_layer_sizes}, "
                f"attn_length={saved.hparams.attn_length}; --hparams asks for "
                f"rnn_layer_sizes={info.hparams.rnn_layer_sizes}, attn_length={info.hparams.attn_length}. "
                "Use a new --run-dir to train another shape."
            )
        paths = sequence_example_files(sequence_example_file)
        width = probe_inputs(paths, info.input_size, info.config_id)
        hp = info.hparams
        log_replicas(distribution, strategy, hp.batch_size, log)
        if mixed_precision:
            keras.config.set_dtype_policy("mixed_float16")
            log("mixed precision: float16 compute, float32 weights"
                + ("" if tf.config.list_logical_devices("GPU") else " (no GPU here: slower than float32 on a CPU)"))
        with distribution.scope():
            model, optimizer, step, checkpoint, manager = build(info, run_dir, mixed_precision, scratch)
        restored = restore(run_dir, model, checkpoint, manager, require=False)
        if chief:
            write_run_info(run_dir, info)
        start = int(step.numpy())
        if restored:
            log(f"resuming {info.config_id} from {restored} at step {start}")
        else:
            log(f"training {info.config_id} from scratch in {run_dir}")
        log(f"hparams: {hp.to_string()}")
        if start >= num_training_steps:
            log(f"step {start} >= --num-training-steps {num_training_steps}: nothing to do")
            return TrainResult(start, 0, 0.0, {})
        return _train_loop(
            distribution, chief, run_dir, info, paths, width, model, optimizer, step, checkpoint, manager,
            start, num_training_steps, summary_every, checkpoint_every, log_every, log,
        )
    finally:
        keras.config.set_dtype_policy(policy)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _train_loop(
    distribution, chief: bool, run_dir: str, info: RunInfo, paths: list[str], width: int, model, optimizer, step,
    checkpoint, manager, start: int, num_training_steps: int, summary_every: int, checkpoint_every: int,
    log_every: int, log,
) -> TrainResult:
    hp = info.hparams
    metrics = Metrics(*event_labels(get_config(info.config_id)))
    batches = distribute(distribution, make_dataset(paths, width, info.input_size, hp.batch_size, training=True))
    train_step = make_train_step(model, optimizer, step, metrics, hp, distribution, batches.element_spec)

    writer = tf.summary.create_file_writer(os.path.join(run_dir, "train")) if chief else tf.summary.create_noop_writer()
    t0 = time.perf_counter()
    t_log, n_log, seqs = t0, 0, 0
    last: dict[str, float] = {}
    current = start
    try:
        for inputs, labels, lengths in batches:
            sums = train_step(inputs, labels, lengths)
            current = int(step.numpy())
            n_log += 1
            seqs += int(sums["sequences"])
            if current % summary_every == 0 or current == num_training_steps or current % log_every == 0:
                last = Metrics.summarize({k: float(v) for k, v in sums.items()})
                if not math.isfinite(last["loss"]):
                    raise TrainingError(f"the loss became {last['loss']} at step {current}; try a smaller learning_rate")
            if chief and (current % summary_every == 0 or current == num_training_steps):
                write_scalars(writer, current, last)
            if current % log_every == 0 or current == num_training_steps:
                now = time.perf_counter()
                log(
                    f"step {current}: loss {last['loss']:.4f} perplexity {last['metrics/perplexity']:.3f} "
                    f"accuracy {last['metrics/accuracy']:.3f} ({n_log / (now - t_log):.2f} steps/s)"
                )
                t_log, n_log = now, 0
            if current % checkpoint_every == 0 and current < num_training_steps:
                manager.save(checkpoint_number=current)  # every worker: saving may take part in collectives
            if current >= num_training_steps:
                break
    except KeyboardInterrupt:
        manager.save(checkpoint_number=current)
        log(f"interrupted: saved step {current}; run the same command to resume")
        raise
    except tf.errors.InvalidArgumentError as err:
        raise DataError(
            f"bad training data for {info.config_id} ({err.message.splitlines()[0]}); "
            f"are the labels within 0..{info.num_classes - 1}?"
        ) from err
    manager.save(checkpoint_number=current)
    writer.flush()
    seconds = time.perf_counter() - t0
    log(
        f"{'saved ' + manager.latest_checkpoint if chief else 'done'} after {current - start} steps, "
        f"{seqs} sequences in {seconds:.1f} s "
        f"({(current - start) / seconds:.2f} steps/s, {seqs / seconds:.1f} sequences/s)"
    )
    return TrainResult(current, current - start, seconds, last)


def evaluate(
    run_dir: str,
    config_id: str | None,
    sequence_example_file: str,
    hparams: str = "",
    log=print,
) -> dict[str, float]:
    """Evaluate the latest checkpoint on the whole file, once; write the metrics as summaries at
    the checkpoint's step into ``run_dir/eval``; return them (plus ``step`` and ``sequences``)."""


    info = resolve_run(run_dir, config_id, hparams)
    if read_run_info(run_dir) is None:
        raise TrainingError(f"{run_dir} is not a training run directory (no {RUN_FILE}): train first")
    paths = sequence_example_files(sequence_example_file)
    width = probe_inputs(paths, info.input_size, info.config_id)
    model, _, step, checkpoint, manager = build(info, run_dir)
    path = restore(run_dir, model, checkpoint, manager, require=True, weights_only=True)
    metrics = Metrics(*event_labels(get_config(info.config_id)))
    @tf.function(input_signature=batch_signature(info.input_size))
    def eval_step(inputs, labels, lengths):
        return metrics.sums(tf.cast(model(inputs, training=False), tf.float32), labels, lengths)

    totals: dict[str, float] = {}
    sequences = 0
    try:
        for inputs, labels, lengths in make_dataset(paths, width, info.input_size, info.hparams.batch_size, training=False):
            for k, v in eval_step(inputs, labels, lengths).items():
                totals[k] = totals.get(k, 0.0) + float(v)
            sequences += int(lengths.shape[0])
    except tf.errors.InvalidArgumentError as err:
        raise DataError(f"bad evaluation data for {info.config_id} ({err.message.splitlines()[0]})") from err
    if not sequences:
        raise DataError(f"no sequences to evaluate in {sequence_example_file}")
    result = Metrics.summarize(totals)
    current = int(step.numpy())
    writer = tf.summary.create_file_writer(os.path.join(run_dir, "eval"))
    write_scalars(writer, current, result)
    log(
        f"eval of {os.path.basename(path)} (step {current}) on {sequences} sequences: "
        + ", ".join(f"{k.split('/')[-1]} {v:.4f}" for k, v in result.items())
    )
    return {**result, "step": current, "sequences": sequences}
