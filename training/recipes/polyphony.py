"""Rebuild the bundled ``polyphony`` model (Polyphony RNN) from music21's Bach chorales.

``python -m training.recipes.polyphony``: the 400-odd chorales (MusicXML, four voices) in
music21's corpus -> NoteSequences -> whole chorales of 80..512 sixteenth steps, each training
chorale also transposed by -4..+4 semitones as Magenta does (the model is key-free: the live
path feeds the player as played) -> polyphony, two layers of 128 (float16 weights). Each
chorale's events are cut into examples of 128 events (inputs computed over the whole chorale)
so that a training step costs a fraction of a whole-chorale batch.
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
    trained_on="music21 corpus Bach chorales (MusicXML, 4 voices), training chorales transposed by -4..+4; 10% of chorales held out",
    hparams="batch_size=32,rnn_layer_sizes=[128,128],dropout_keep_prob=0.9",
    steps=3000,
    dataset_args=["--chunk-steps", "128", "--one-time-signature"],
    float16=True,
)


def chorales(fresh: bool = False):
    """The converted chorales (shared by the polyphony, improv and performance recipes)."""
    return convert("chorales", link_dir("chorales", {"bach": music21_corpus() / "bach"}), fresh)


def main() -> None:
    args = parse_args(__doc__)
    RECIPE.build(chorales(args.fresh), args.fresh, args.steps)


if __name__ == "__main__":
    main()
