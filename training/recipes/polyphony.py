"""Rebuild the bundled ``polyphony`` model (Polyphony RNN) from music21's Bach chorales.

``python -m training.recipes.polyphony``: the 400-odd chorales (MusicXML, four voices) in
music21's corpus -> NoteSequences -> whole chorales of 80..512 sixteenth steps -> polyphony, two layers of 128.
Magenta also transposes by -4..+4 semitones; here only the original keys are used (nine times
less data to write and read, for a model trained a few minutes), and each chorale's events are
cut into examples of 128 events (inputs computed over the whole chorale) so that a training
step costs a fraction of a whole-chorale batch.
"""

from training.recipes.common import (
    Recipe,
    convert,
    link_dir,
    music21_corpus,
    parse_args,
)

RECIPE = Recipe(
    name="polyphony",
    config="polyphony",
    trained_on="music21 corpus Bach chorales (MusicXML, 4 voices); 10% of chorales held out",
    hparams="batch_size=32,rnn_layer_sizes=[128,128],dropout_keep_prob=0.9",
    steps=3000,
    dataset_args=["--transpositions", "0", "--chunk-steps", "128", "--one-time-signature"],
)


def chorales(fresh: bool = False):
    """The converted chorales (shared by the polyphony, improv and performance recipes)."""
    return convert("chorales", link_dir("chorales", {"bach": music21_corpus() / "bach"}), fresh)


def main() -> None:
    args = parse_args(__doc__)
    RECIPE.build(chorales(args.fresh), args.fresh, args.steps)


if __name__ == "__main__":
    main()
