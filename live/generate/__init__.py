"""``magenta-live generate``: offline generation to MIDI files, like Magenta's *_generate scripts.

From Python: ``generate(model, GenerateOptions(...))`` yields pieces as notes; the command line
(``add_arguments``, ``run``) writes them as files. ``options`` holds the flags and their checks,
``primer`` the primers and note-seq-style quantizing and extraction, ``search`` sampling and beam
search, ``jobs`` each family's job.

One command for every family; the model file says which family it is:

- melody (Melody RNN): the primer melody is squashed into the model's range and moved to
  its key (``squash_melody``), extended to ``--num-steps`` sixteenth steps (primer included)
  and moved back.
- improv (Improv RNN): the same over ``--backing-chords``, each chord lasting
  ``--steps-per-chord`` steps; the length is chords x steps per chord. ``--render-chords``
  adds the chords as notes (as note-seq's BasicChordRenderer: chord tones in MIDI 48..59,
  the bass in 36..47, velocity 50, program 88, on their own track).
- polyphony (Polyphony RNN): ``--num-steps`` counts steps (STEP_END events). The primer is
  either fed first (``--condition-on-primer``) or written before a fresh start; with
  ``--inject-primer-during-generation`` (the default) its notes are forced into the
  generated steps, step by step, and the model adds to them (harmonizing the primer).
- drums (Drums RNN): drum-set steps, written on MIDI channel 10.
- performance (Performance RNN): ``--num-steps`` counts 10 ms steps (3000 = 30 s);
  conditioned configurations read ``--notes-per-second`` and ``--pitch-class-histogram``.

Steps line up as in Magenta. With E the step on which the primer's last note ends (its end
is exclusive), melody, improv and drums generate from step E + 2: Magenta asks for one step
after E and note-seq rounds that time up with quantize_to_step(..., cutoff=0), which adds
another. With T the primer's length in steps (performance: 10 ms steps), polyphony and
performance generate from step T + 1. The primer is padded with silence up to there. With
no primer notes at all, polyphony and performance start at step 1 (performance after one
second of silence, as Magenta's empty-primer case).

Where this differs from Magenta, on purpose: one primer flag at a time (Magenta silently
picks one); the optionally conditioned performance model plays unconditioned when no
control value is given (Magenta conditions on its defaults: 15 notes per second, a flat
histogram); ``--render-chords`` holds the last chord to the end of the progression (Magenta
stops it with the melody's last note); drum notes in a primer are left out of polyphony and
performance primers, and a melody primer is read from the lowest-numbered instrument of the
MIDI file (Magenta expects one); literal drum primers are read on the model's own grid
(one_drum: 2 steps per quarter; Magenta reads them at 4 and re-quantizes); polyphony and
performance models whose argmax never ends a step stop after a generous number of events.

Each output is written as ``<date>_<time>_<NN>.mid`` (NN zero-padded to as many digits as
``--num-outputs`` has) at ``--qpm`` (the primer MIDI file's tempo when one is given), 220
ticks per quarter note. ``--seed`` makes the output reproducible byte for byte.
"""

from live.generate.jobs import (
    DrumsJob,
    Job,
    MelodyJob,
    PerfJob,
    PolyJob,
    generate,
    make_job,
    notes_to_performance,
    output_names,
    performance_to_notes,
    run,
    set_performance_length,
)
from live.generate.options import GenerateOptions, add_arguments
from live.generate.primer import (
    Primer,
    QNote,
    build_primer,
    drums_to_notes,
    extract_drums,
    extract_melody,
    melody_to_notes,
    quantize,
    set_melody_length,
    step_after,
)
from live.generate.search import generate_from

__all__ = [
    "DrumsJob", "GenerateOptions", "Job", "MelodyJob", "PerfJob", "PolyJob", "Primer", "QNote", "add_arguments",
    "build_primer", "drums_to_notes", "extract_drums", "extract_melody", "generate", "generate_from", "make_job",
    "melody_to_notes", "notes_to_performance", "output_names", "performance_to_notes", "quantize", "run",
    "set_melody_length", "set_performance_length", "step_after",
]

