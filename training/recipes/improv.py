"""Rebuild the bundled ``improv`` model (chord_pitches_improv) from music21's Bach chorales.

``python -m training.recipes.improv``: the chorales have no chord symbols, so each chorale's
chords are inferred from all four voices by note-seq's chord inference; every voice of at least
7 bars then is a melody over those chords (a lead sheet), squashed into C3..C6 and transposed to
C as Magenta's improv configs -> chord_pitches_improv, two layers of 128.
"""

from training.recipes.common import Recipe, parse_args
from training.recipes.polyphony import chorales

RECIPE = Recipe(
    name="improv",
    config="chord_pitches_improv",
    trained_on="music21 corpus Bach chorales, each voice as a melody over chords inferred from all four voices; 10% of chorales held out",
    hparams="batch_size=64,rnn_layer_sizes=[128,128],dropout_keep_prob=0.9",
    steps=600,
    dataset_args=["--one-time-signature"],
)


def main() -> None:
    args = parse_args(__doc__)
    RECIPE.build(chorales(args.fresh), args.fresh, args.steps)


if __name__ == "__main__":
    main()
