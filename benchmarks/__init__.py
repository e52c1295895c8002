"""Speed benchmarks of the engine: ``python -m benchmarks.run`` writes ``benchmarks/RESULTS.md``.

Nothing here imports numpy at package import time: ``benchmarks.run`` must set the BLAS thread
variables before numpy loads. TensorFlow is imported only by ``benchmarks.metagraph_step``.
"""

# One configuration per family (two more for melody), benchmarked at Magenta's default sizes.
DEFAULT_CONFIGS = (
    "basic_rnn",
    "lookback_rnn",
    "attention_rnn",
    "chord_pitches_improv",
    "polyphony",
    "drum_kit",
    "performance_with_dynamics",
)
