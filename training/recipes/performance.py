"""Rebuild the bundled ``performance`` model (Performance RNN, config ``performance``).

No expressive piano performances are available offline (Magenta trained on the Yamaha e-Piano
Competition recordings, which must be downloaded), so this model learns from the Bach chorales
in music21's corpus played back as written: 120 quarter notes per minute, constant velocity, no
pedal. Magenta's performance pipeline then applies with its transposition by -3..+3 semitones,
so the model is key-free (the agent feeds it the player's notes untransposed); its time
stretching (0.95..1.05) is left out, because these pieces all play at one strict tempo and it
would make the data five times larger again. Cut into 30-second pieces at 100 steps per second,
32..512 events; each cut into examples of 128 events for cheaper training steps. It learns note
and timing patterns, not expressive timing or dynamics; the config without velocity events is
used because the data has none.
"""

from training.recipes.common import Recipe, parse_args
from training.recipes.polyphony import chorales

RECIPE = Recipe(
    name="performance",
    config="performance",
    trained_on="music21 corpus Bach chorales rendered as written (not expressive performances: none exist offline); 10% of chorales held out",
    hparams="batch_size=64,rnn_layer_sizes=[128,128],dropout_keep_prob=0.9",
    steps=2000,
    dataset_args=["--transpositions", "-3,-2,-1,0,1,2,3", "--stretch-factors", "1.0", "--chunk-steps", "128"],
    notes=["transposed -3..+3 semitones (Magenta's range), not stretched", "no expressive piano performances offline: chorales as written (constant velocity, strict tempo)"],
)


def main() -> None:
    args = parse_args(__doc__)
    RECIPE.build(chorales(args.fresh), args.fresh, args.steps)


if __name__ == "__main__":
    main()
