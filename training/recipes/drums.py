"""Rebuild the bundled ``drums`` model (drum_kit) from the drum parts of MMA's groove library.

``python -m training.recipes.drums``: fetches Debian's ``mma`` package at build time (see
``drums_data``), renders each of its ~1,100 grooves for 16 bars, then extracts drum tracks by
Magenta's rules (7+ bars, truncated to 512 steps) -> drum_kit, two layers of 128 without
attention (float16 weights): the attention network's training step costs about three times as
much here, and the drum_kit encoding's binary step counters already tell the network where it
is in the bar.
"""

from training.recipes import drums_data
from training.recipes.common import Recipe, convert, parse_args

RECIPE = Recipe(
    name="drums",
    config="drum_kit",
    trained_on="drum parts of the ~1,100 grooves in MMA's standard library (Debian package mma), 16 bars each; 10% of grooves held out",
    hparams="batch_size=64,rnn_layer_sizes=[128,128],attn_length=0,dropout_keep_prob=0.9",
    steps=3000,
    dataset_args=["--chunk-steps", "128"],
    float16=True,
)


def main() -> None:
    args = parse_args(__doc__)
    midi = drums_data.render()
    RECIPE.build(convert("mma_grooves", midi, args.fresh), args.fresh, args.steps)


if __name__ == "__main__":
    main()
