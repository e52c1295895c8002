"""Rebuild the bundled ``melody`` model (lookback_rnn) from music21's folk collections.

``python -m training.recipes.melody``: every ABC tune book bundled with music21 (O'Neill's
1850, Ryan's Mammoth, Aird's Airs, the Nottingham sample, misc folk, and the Essen folksong
collection: about 13,000 tunes) -> NoteSequences -> melodies by Magenta's rules (moved to C,
squashed into C3..C6) -> lookback_rnn, two layers of 256 -> live/models/bundled/melody.npz
(float16 weights).
Each melody's encoded steps are cut into examples of 128 (inputs keep the whole history).
lookback_rnn rather than attention_rnn: on this 2-core machine a training step of the attention
network costs about three times as much (benchmarks/RESULTS.md, "Training speed").
"""

from training.recipes.common import (
    Recipe,
    convert,
    link_dir,
    music21_corpus,
    parse_args,
)

FOLK = ("oneills1850", "ryansMammoth", "airdsAirs", "nottingham-dataset", "miscFolk", "essenFolksong")

RECIPE = Recipe(
    name="melody",
    config="lookback_rnn",
    trained_on="music21 corpus folk tunes (O'Neill's 1850, Ryan's Mammoth, Aird's Airs, Nottingham sample, misc folk, Essen; ABC); 10% of tunes held out",
    hparams="batch_size=64,rnn_layer_sizes=[256,256],dropout_keep_prob=0.9",
    steps=3000,
    dataset_args=["--chunk-steps", "128"],
    float16=True,
)


def main() -> None:
    args = parse_args(__doc__)
    corpus = music21_corpus()
    raw = link_dir("folk-all", {name: corpus / name for name in FOLK})
    RECIPE.build(convert("folk-all", raw, args.fresh), args.fresh, args.steps)


if __name__ == "__main__":
    main()
