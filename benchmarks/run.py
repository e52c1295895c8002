"""Run every engine speed benchmark and write the report.

    .venv/bin/python -m benchmarks.run                 # full run, rewrites benchmarks/RESULTS.md
    .venv/bin/python -m benchmarks.run --quick         # smoke run (seconds), report on stdout
    .venv/bin/python -m benchmarks.run --quick --output /tmp/r.md

The process pins itself to one CPU (``--cpu``, default 0) and sets the BLAS/OpenMP thread
variables to 1 before numpy is imported, so every figure is "on one core". TensorFlow is needed
only for the metagraph comparison; without it (or with ``--no-tf``) that part is skipped and the
report says so. See benchmarks/README.md for what each table measures.
"""

from __future__ import annotations

import os
import sys

# Before anything imports numpy: one BLAS / OpenMP thread.
NUMPY_PRELOADED = "numpy" in sys.modules
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
for _name in THREAD_VARS:
    os.environ[_name] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, Callable  # noqa: E402

from benchmarks import DEFAULT_CONFIGS  # noqa: E402

DEFAULT_OUTPUT = pathlib.Path(__file__).resolve().with_name("RESULTS.md")
TARGET_US = 60.0  # median Stream.sample step of a 2x128 melody model, one core
TARGET_RATIO = 10.0  # at least this many times faster than the metagraph step
TARGET_CONFIGS = ("basic_rnn", "lookback_rnn")  # the 2x128 melody models the target is about
BREAKDOWN_CONFIGS = ("basic_rnn", "lookback_rnn", "attention_rnn")
BATCH = 16


@dataclass(frozen=True)
class Settings:
    """How much to measure. Step counts are per configuration."""

    name: str
    steps: int  # timed Stream.sample steps (batch 1)
    warmup: int
    history_points: tuple[int, ...]  # engine step cost after this many events of history...
    window: int  # ...the median over this many steps from there
    batch_steps: int
    breakdown_steps: int
    load_reps: int
    tf_configs: tuple[str, ...]  # default-size configs run through a synthetic metagraph
    fixtures: tuple[str, ...]  # fixture bundles run through their metagraph
    tf_steps: int
    tf_block: int  # engine and metagraph alternate in blocks of this many steps
    rerun_histories: tuple[int, ...]
    rerun_reps: int


FIXTURE_NAMES = ("attention_rnn_64x2.mag", "lookback_rnn_256x2.mag", "polyphony_128x2.mag", "polyphony_64x3.mag")
FULL = Settings(
    name="full",
    steps=5000,
    warmup=500,
    history_points=(64, 1024, 4096),
    window=512,
    batch_steps=3000,
    breakdown_steps=3000,
    load_reps=20,
    tf_configs=DEFAULT_CONFIGS,
    fixtures=FIXTURE_NAMES,
    tf_steps=2000,
    tf_block=250,
    rerun_histories=(64, 1024),
    rerun_reps=10,
)
QUICK = Settings(
    name="quick",
    steps=1100,
    warmup=50,
    history_points=(64, 1024),
    window=64,
    batch_steps=100,
    breakdown_steps=200,
    load_reps=2,
    tf_configs=TARGET_CONFIGS,
    fixtures=("polyphony_64x3.mag",),
    tf_steps=100,
    tf_block=50,
    rerun_histories=(64, 1024),
    rerun_reps=2,
)


def _log(message: str) -> None:
    print(f"[benchmarks] {message}", file=sys.stderr, flush=True)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _blas() -> str:
    import numpy as np

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode
        return "unknown"


def _git_head() -> str:
    try:
        root = pathlib.Path(__file__).resolve().parents[1]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def pin(cpu: int | None) -> str:
    """Pin this process to ``cpu`` (None: leave it). Returns the CPUs it may run on, as text."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    if hasattr(os, "sched_getaffinity"):
        return ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    return "unknown"


def run_numpy(settings: Settings, log: Callable[[str], None] = _log) -> dict[str, Any]:
    """Every numpy-only measurement: per-step, batch, history, load, breakdown (and profile)."""
    import numpy as np

    from benchmarks import engine_step as es

    rng = np.random.default_rng(1234)
    configs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cid in DEFAULT_CONFIGS:
            model = es.random_model(cid)
            log(f"{cid}: Stream.sample x {settings.steps}")
            step_ns = es.time_stream_sample(model, settings.steps, settings.warmup, rng)
            log(f"{cid}: batch {BATCH} x {settings.batch_steps}")
            batch_ns = es.time_batch_step(model, BATCH, settings.batch_steps, settings.warmup, rng)
            load, size = es.time_load(model, settings.load_reps, tmp)
            configs[cid] = {
                "layers": list(model.config.layer_sizes),
                "attn": model.config.attn_length,
                "input": model.input_size,
                "classes": model.num_classes,
                "stream": es.Timing(step_ns),
                "history": es.history_windows(step_ns, settings.history_points, settings.window),
                "batch": es.Timing(batch_ns),
                "load": load,
                "load_bytes": size,
            }
    breakdown = {}
    for cid in BREAKDOWN_CONFIGS:
        log(f"{cid}: breakdown x {settings.breakdown_steps}")
        breakdown[cid] = es.time_breakdown(es.random_model(cid), settings.breakdown_steps, settings.warmup, rng)
    model_parts = {}
    for cid in TARGET_CONFIGS:
        log(f"{cid}: Model.logits parts")
        parts = es.time_model_parts(es.random_model(cid), settings.breakdown_steps, settings.warmup)
        if parts:
            model_parts[cid] = parts
    return {"configs": configs, "breakdown": breakdown, "model_parts": model_parts, "profile": None}


def profile_if_missed(results: dict[str, Any], settings: Settings, log: Callable[[str], None] = _log) -> None:
    """cProfile the first 2x128 melody model when either half of the target is missed."""
    import numpy as np

    from benchmarks import engine_step as es

    v = target_verdict(results)
    if v["latency_ok"] and v["ratio_ok"] is not False:
        return
    if not v["latency_ok"]:
        cid = max(v["latency"], key=v["latency"].get)  # the slowest
    else:
        cid = min(v["ratios"], key=v["ratios"].get)  # the smallest speed-up
    log(f"target missed: profiling {cid}")
    text = es.profile_stream(es.random_model(cid), settings.breakdown_steps, np.random.default_rng(7))
    results["numpy"]["profile"] = (cid, text)


def run_tf(settings: Settings, log: Callable[[str], None] = _log) -> dict[str, Any]:
    """The metagraph comparison, or {"skipped": reason} without TensorFlow."""
    t0 = time.perf_counter()
    try:
        from benchmarks import metagraph_step as ms
    except ImportError as err:
        return {"skipped": f"TensorFlow (or the test helpers) could not be imported: {err}"}
    import numpy as np

    log(f"TensorFlow {ms.TF_VERSION} imported in {time.perf_counter() - t0:.1f} s")
    rng = np.random.default_rng(99)
    synthetic = ms.synthetic_available()
    rows: list[dict[str, Any]] = []
    rerun: dict[str, dict[int, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if synthetic:
            for cid in settings.tf_configs:
                log(f"{cid}: synthetic bundle, engine vs metagraph x {settings.tf_steps}")
                path = ms.build_default_bundle(cid, tmp)
                r = ms.time_engine_and_metagraph(path, settings.tf_steps, settings.tf_block, settings.warmup, rng)
                rows.append({"label": cid, "source": "synthetic, default sizes", **r})
                log(f"{cid}: metagraph re-run of the whole phrase")
                rerun[cid] = ms.time_rerun(path, settings.rerun_histories, settings.rerun_reps, rng)
        for name in settings.fixtures:
            path = ms.FIXTURES / name
            if not path.exists():
                log(f"fixture {path} missing: skipped")
                continue
            log(f"{name}: engine vs metagraph x {settings.tf_steps}")
            r = ms.time_engine_and_metagraph(str(path), settings.tf_steps, settings.tf_block, settings.warmup, rng)
            rows.append({"label": name, "source": "fixture (real bundle)", **r})
            if not synthetic and r["batch_size"] == 1:
                rerun[name] = ms.time_rerun(str(path), settings.rerun_histories, settings.rerun_reps, rng)
    return {"tf_version": ms.TF_VERSION, "synthetic": synthetic, "rows": rows, "rerun": rerun}


# ---------------------------------------------------------------------------------------------
# The report


def _us(x: float) -> str:
    return f"{x:,.0f}" if x >= 1000 else f"{x:.1f}"


def _layers(layers: list[int]) -> str:
    return "x".join(str(u) for u in layers)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def target_verdict(results: dict[str, Any]) -> dict[str, Any]:
    """Whether the target is met: {"latency": bool, "ratio": bool | None, "met": bool | None, ...}."""
    configs = results["numpy"]["configs"]
    latency = {cid: configs[cid]["stream"].median_us for cid in TARGET_CONFIGS}
    ratios: dict[str, float] = {}
    measured: dict[str, float] = {}  # the engine medians the ratios were taken against
    tf = results["tf"]
    for row in tf.get("rows", []):
        if row["label"] in TARGET_CONFIGS:
            ratios[row["label"]] = row["metagraph"].median_us / row["engine"].median_us
            measured[row["label"]] = row["engine"].median_us
    latency_ok = all(v < TARGET_US for v in latency.values())
    ratio_ok = all(r >= TARGET_RATIO for r in ratios.values()) if len(ratios) == len(TARGET_CONFIGS) else None
    met = None if ratio_ok is None else latency_ok and ratio_ok
    return {"latency": latency, "latency_ok": latency_ok, "ratios": ratios, "latency_measured": measured,
            "ratio_ok": ratio_ok, "met": met}


def render(results: dict[str, Any]) -> str:
    """The Markdown report."""
    s: Settings = results["settings"]
    m = results["machine"]
    configs = results["numpy"]["configs"]
    tf = results["tf"]
    out: list[str] = ["# Engine speed benchmarks", ""]
    out.append(f"Written by `.venv/bin/python -m benchmarks.run{' --quick' if s.name == 'quick' else ''}` "
               f"on {m['date']} (git {m['git']}), {s.name} run, {results['elapsed_s']:.0f} s.")
    if s.name == "quick":
        out += ["", "**Quick smoke run: few steps per figure; the numbers are rough.**"]
    out += ["", "## Machine", ""]
    out += [
        f"- CPU: {m['cpu']}, {m['cores']} logical cores; this process pinned to CPU {m['affinity']}",
        f"- threads: {', '.join(THREAD_VARS)} = 1"
        + (" (numpy was imported before they were set!)" if m["numpy_preloaded"] else " (set before numpy was imported)"),
        f"- Python {m['python']}, numpy {m['numpy']} ({m['blas']}), TensorFlow {tf.get('tf_version', 'not used')}",
        f"- load average (1, 5, 15 min): {m['load_start']} at the start, {m['load_end']} at the end. "
        "The machine is shared with other jobs, so p99 figures include their interference.",
    ]

    v = target_verdict(results)
    out += ["", "## Target", ""]
    out.append(f"A 2x128 melody step with sampling ({', '.join(TARGET_CONFIGS)}, `Stream.sample`) under "
               f"{TARGET_US:.0f} µs median on one core, at least {TARGET_RATIO:.0f}x faster than the same model's "
               "metagraph step.")
    out.append("")
    lat = ", ".join(f"{cid} {_us(x)} µs" for cid, x in v["latency"].items())
    out.append(f"- under {TARGET_US:.0f} µs: **{'met' if v['latency_ok'] else 'NOT met'}** ({lat})")
    if v["ratio_ok"] is None:
        why = tf.get("skipped") or ("harness/synthetic_bundles.py missing: no default-size bundles"
                                     if not tf.get("synthetic") else "not every 2x128 melody model was run")
        out.append(f"- vs. metagraph: **not measured** ({why})")
    else:
        rat = "; ".join(
            f"{cid} {r:.1f}x, {TARGET_RATIO:.0f}x needs an engine median of at most "
            f"{_us(r * v['latency_measured'][cid] / TARGET_RATIO)} µs" for cid, r in v["ratios"].items()
        )
        out.append(f"- at least {TARGET_RATIO:.0f}x faster than the metagraph step: **{'met' if v['ratio_ok'] else 'NOT met'}** ({rat})")
    overall = {True: "met", False: "NOT met", None: "not fully measured"}[v["met"]]
    out.append(f"- overall: **{overall}**")
    if "attention_rnn" in configs:
        out.append(f"- for reference, attention_rnn (2x128 with attention over 40 steps): "
                   f"{_us(configs['attention_rnn']['stream'].median_us)} µs median")

    out += ["", "## Per-step latency, batch 1", ""]
    out.append(f"`Stream.sample` (draw from the logits at temperature 1, encode the event, one model step), one "
               f"stream, {s.steps} consecutive steps per model after {s.warmup} warmup steps; random weights at "
               "Magenta's default sizes.")
    out.append("")
    rows = [
        [cid, _layers(c["layers"]), str(c["attn"] or "-"), str(c["input"]), str(c["classes"]),
         _us(c["stream"].median_us), _us(c["stream"].p99_us), str(c["stream"].n)]
        for cid, c in configs.items()
    ]
    out += _table(["config", "layers", "attn", "input", "classes", "median µs", "p99 µs", "steps"], rows)

    out += ["", f"## Batch {BATCH}", ""]
    out.append(f"`Model.logits` on a [{BATCH}, input] array plus vectorized sampling of all {BATCH} rows (no encoder: "
               f"each row's next input is the one-hot of its sampled class), {s.batch_steps} steps.")
    out.append("")
    rows = [
        [cid, _layers(c["layers"]), _us(c["batch"].median_us), _us(c["batch"].p99_us), _us(c["batch"].median_us / BATCH)]
        for cid, c in configs.items()
    ]
    out += _table(["config", "layers", "median µs per step", "p99 µs per step", "median µs per stream"], rows)

    out += ["", "## Engine vs. metagraph", ""]
    if "skipped" in tf:
        out.append(f"Skipped: {tf['skipped']}")
    else:
        out.append(f"The same model (weights loaded from the bundle with `live.models.load`), {s.tf_steps} steps "
                   f"each, alternating in blocks of {s.tf_block} so both see the same load. Engine: `Stream.sample` "
                   "(draw + encode + step). Metagraph: one `session.run` of the bundle's own graph per step on a "
                   "[batch, 1, input] array, `final_state` fed back as `initial_state`, as Magenta's generation loop "
                   "does; only the `session.run` call (with its feed dict) is timed, Magenta's encoding and sampling "
                   "would come on top. Ratio = metagraph median / engine median.")
        if not tf["synthetic"]:
            out += ["", "harness/synthetic_bundles.py was not available: only the fixture bundles were run, "
                    "not the default sizes."]
        out += ["", "A metagraph's batch size is baked into its `inputs` placeholder; bundles with batch > 1 compute "
                "that many rows per step (Magenta does the same with them), the engine one."]
        out.append("")
        rows = []
        for r in tf["rows"]:
            model = r["model"]
            rows.append([
                r["label"], r["source"], _layers(model.config.layer_sizes), str(model.config.attn_length or "-"),
                str(r["batch_size"]), _us(r["engine"].median_us), _us(r["engine"].p99_us),
                _us(r["metagraph"].median_us), _us(r["metagraph"].p99_us),
                f"{r['metagraph'].median_us / r['engine'].median_us:.1f}x",
            ])
        out += _table(["model", "bundle", "layers", "attn", "metagraph batch", "engine median µs", "engine p99 µs",
                       "metagraph median µs", "metagraph p99 µs", "ratio"], rows)

    out += ["", "## History independence", ""]
    points = sorted({h for c in configs.values() for h in c["history"]})
    reruns = tf.get("rerun", {})
    rerun_h = list(s.rerun_histories) if reruns else []
    out.append(f"Engine: median `Stream.sample` step over the {s.window} steps that follow h events of history "
               "(from the per-step run above). Metagraph re-run: one step the way Magenta's MIDI interface answered, "
               "the whole phrase of h + 1 steps through the metagraph from the zero state in one `session.run` "
               f"(median of {s.rerun_reps}; Magenta's re-encoding of the phrase would come on top). One engine window is "
               "one stretch of time, so a burst of other jobs on the machine can lift a single cell.")
    out.append("")
    header = ["config"] + [f"engine after {h} µs" for h in points] + [f"metagraph re-run {h} µs" for h in rerun_h]
    rows = []
    for cid, c in configs.items():
        row = [cid] + [_us(c["history"][h].median_us) if h in c["history"] else "-" for h in points]
        row += [_us(reruns[cid][h].median_us) if cid in reruns else "-" for h in rerun_h]
        rows.append(row)
    for label, r in reruns.items():
        if label not in configs:
            rows.append([label] + ["-" for _ in points] + [_us(r[h].median_us) for h in rerun_h])
    out += _table(header, rows)

    out += ["", "## Model file load time", ""]
    out.append(f"`live.models.load` of a model file (uncompressed .npz) at default sizes, median of {s.load_reps} loads.")
    out.append("")
    rows = [
        [cid, _layers(c["layers"]), f"{c['load_bytes'] / 1e6:.1f}", f"{c['load'].median_us / 1e3:.1f}"]
        for cid, c in configs.items()
    ]
    out += _table(["config", "layers", "file MB", "median ms"], rows)

    out += ["", "## Where the time goes", ""]
    out.append(f"`Stream.sample` split into its parts, each timed on every one of {s.breakdown_steps} steps (median µs): "
               "sample = `sample_class` on the logits; encode = `label_to_event` + `append` + `encode_input`; "
               "model = `Model.logits` at batch 1; total = all three.")
    out.append("")
    rows = [
        [cid] + [_us(parts[p].median_us) for p in ("sample", "encode", "model", "total")]
        for cid, parts in results["numpy"]["breakdown"].items()
    ]
    out += _table(["config", "sample µs", "encode µs", "model µs", "total µs"], rows)
    model_parts = results["numpy"].get("model_parts", {})
    if model_parts:
        out += ["", "### `Model.logits` by numpy call", "", "`Model.logits` of the 2x128 models split into numpy calls, each timed alone (median µs): "
                "matmuls = the layer's x @ wx and h @ wh; step = the whole `cells.lstm_step` (matmuls, bias, "
                "tanh, gate arithmetic); step - matmuls = the elementwise part; output = logits matmul + bias.", ""]
        first = next(iter(model_parts.values()))
        names = list(first)
        layer_ids = sorted({int(n.split()[1]) for n in names if n.startswith("layer ")})
        header = ["config"]
        for i in layer_ids:
            header += [f"layer {i} matmuls", f"layer {i} step", f"layer {i} step - matmuls"]
        header += ["output", "Model.logits"]
        rows = []
        for cid, parts in model_parts.items():
            row = [cid]
            for i in layer_ids:
                mm, st = parts[f"layer {i} matmuls"].median_us, parts[f"layer {i} step"].median_us
                row += [_us(mm), _us(st), _us(st - mm)]
            row += [_us(parts["output"].median_us), _us(parts["Model.logits"].median_us)]
            rows.append(row)
        out += _table(header, rows)
    profile = results["numpy"]["profile"]
    if profile:
        out += ["", f"### Profile of {profile[0]} (the target was missed)", "",
                f"cProfile of {s.breakdown_steps} `Stream.sample` steps, the functions with the most own time. "
                "cProfile's overhead inflates every figure: compare them with each other.", ""]
        out += _table(["function", "calls per step", "own µs per step", "cumulative µs per step"],
                      [[f"`{w}`", f"{n:g}", f"{own:.1f}", f"{cum:.1f}"] for w, n, own, cum in profile[1]])
    out.append("")
    return "\n".join(out)


def machine_info(affinity: str) -> dict[str, Any]:
    import numpy as np

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "affinity": affinity,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas(),
        "numpy_preloaded": NUMPY_PRELOADED,
        "git": _git_head(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _loadavg() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run; report on stdout unless --output")
    parser.add_argument("--output", help=f"report path ('-': stdout); default {DEFAULT_OUTPUT} (full run)")
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin to (default 0; -1: don't pin)")
    parser.add_argument("--no-tf", action="store_true", help="skip the TensorFlow metagraph comparison")
    parser.add_argument("--no-midi", action="store_true",
                        help="skip the MIDI scheduling, clock and live agent benchmarks (JACK)")
    parser.add_argument("--no-training", action="store_true",
                        help="skip the training speed benchmark (benchmarks/training.py; TensorFlow)")
    parser.add_argument("--no-conversion", action="store_true",
                        help="skip the conversion rate benchmark (benchmarks/conversion.py; note-seq, music21)")
    parser.add_argument("--no-quality", action="store_true",
                        help="skip the musical-quality benchmark (benchmarks/musical_quality.py)")
    parser.add_argument("--no-faults", action="store_true",
                        help="skip the faults benchmark (benchmarks/faults.py: JACK restarts, a flood, fuzzing)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    output = args.output or ("-" if args.quick else str(DEFAULT_OUTPUT))

    started = time.perf_counter()
    load_start = _loadavg()
    affinity = pin(None if args.cpu < 0 else args.cpu)
    _log(f"{settings.name} run on CPU {affinity}, load average {load_start}")
    results: dict[str, Any] = {"settings": settings}
    results["numpy"] = run_numpy(settings)
    results["tf"] = {"skipped": "--no-tf was given"} if args.no_tf else run_tf(settings)
    profile_if_missed(results, settings)
    results["machine"] = {**machine_info(affinity), "load_start": load_start, "load_end": _loadavg()}
    midi_sections = []
    if not args.no_midi:
        # The MIDI benchmarks start their own JACK server and load generators: all CPUs again.
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
        from benchmarks import clock, live_latency, midi_scheduling

        for module in (midi_scheduling, clock, live_latency):
            _log(f"MIDI benchmark: {module.__name__}")
            midi_sections.append(module.run(args.quick))
    if not args.no_training and not args.no_tf:
        from benchmarks import training

        _log("training benchmark (a child process on every CPU)")
        midi_sections.append(training.run(args.quick))
    if not args.no_conversion:
        from benchmarks import conversion

        _log("conversion benchmark (a child process on every CPU)")
        midi_sections.append(conversion.run(args.quick))
    if not args.no_quality:
        from benchmarks import musical_quality

        _log("musical quality (simulated time)")
        midi_sections.append(musical_quality.run(args.quick, log=_log))
    from benchmarks import vae

    _log("MusicVAE encode and decode")
    midi_sections.append(vae.run(args.quick, log=_log))
    if not args.no_midi:
        from benchmarks import idle, link

        _log("idle daemon CPU")
        midi_sections.append(idle.run(args.quick, log=_log))
        _log("Ableton Link (a private network namespace)")
        midi_sections.append(link.run(args.quick, log=_log))
    if not args.no_faults and not args.no_midi:
        from benchmarks import faults

        _log("faults (JACK restarts, a flood, fuzzing)")
        midi_sections.append(faults.run(args.quick, log=_log))
    results["elapsed_s"] = time.perf_counter() - started
    report = render(results) + "".join("\n" + section.rstrip() + "\n" for section in midi_sections)
    if output == "-":
        sys.stdout.write(report)
    else:
        from live.files import atomic_write

        atomic_write(output, report)
        _log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
