"""Rebuild the bundled ``improv`` model (chord_pitches_improv): melodies over chords.

``python -m training.recipes.improv``: three sources of lead sheets, in one file of NoteSequences:

- real chords: music21's Roman-numeral analyses of Bach chorales and Monteverdi madrigals laid
  into their scores (``training.recipes.improv_data``): every voice is a melody over the
  analyst's chords;
- music21's folk tunes (every ABC book, about 12,900 tunes, the melody recipe's corpus): the few
  with chord symbols keep them, the rest get chords inferred from the tune by note-seq's chord
  inference (one or two per bar);
- the Bach chorales: chords inferred from all four voices, each voice a melody over them.

Melodies are squashed into C3..C6 and transposed to C as Magenta's improv configs do ->
chord_pitches_improv, two layers of 128 (a training step of 2x256 costs twice as much on this
2-core machine, and the data set is ten times the old one), float16 weights. Examples are cut
to 128 steps.
"""

from training.recipes.common import DATA, Recipe, convert, link_dir, music21_corpus, parse_args
from training.recipes.improv_data import analyses
from training.recipes.melody import FOLK
from training.recipes.polyphony import chorales

RECIPE = Recipe(
    name="improv",
    config="chord_pitches_improv",
    trained_on="music21 corpus: Roman-numeral analyses of Bach chorales and Monteverdi madrigals (real chords), "
    "folk tunes in ABC (chords inferred), Bach chorales (chords inferred from four voices); 10% of pieces held out",
    hparams="batch_size=64,rnn_layer_sizes=[128,128],dropout_keep_prob=0.9",
    steps=3000,
    dataset_args=["--one-time-signature", "--chunk-steps", "128"],
    float16=True,
)


def sources(fresh: bool = False):
    """One TFRecord of every source (TFRecord files concatenate: each record is framed)."""
    corpus = music21_corpus()
    folk = convert("folk-all", link_dir("folk-all", {name: corpus / name for name in FOLK}), fresh)
    parts = [analyses(fresh), folk, chorales(fresh)]
    out = DATA / "improv-sources.tfrecord"
    if fresh or not out.exists():
        with open(out, "wb") as f:
            for p in parts:
                f.write(p.read_bytes())
    return out


def main() -> None:
    args = parse_args(__doc__)
    RECIPE.build(sources(args.fresh), args.fresh, args.steps)


if __name__ == "__main__":
    main()
