"""``magenta-live generate`` with a MusicVAE file: ``--sample`` draws two-bar phrases from
random codes, ``--interpolate A.mid B.mid`` morphs from one phrase to another (Magenta's
``music_vae_generate`` modes).

A phrase from a MIDI file is its melody (``live.generate.primer.extract_melody``: the top note
where notes start together) from the bar of its first note, two bars of sixteenth notes at
the file's tempo; its code is the encoder's ``mu``. The outputs are decoded at
``--temperature`` with ``--seed``, one file each, at the first file's tempo (``--qpm`` wins).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from live.errors import ConfigFileError
from live.generate.options import GenerateOptions
from live.generate.primer import extract_melody, quantize, set_melody_length
from live.midi_file import DEFAULT_QPM, Note, read_midi, write_midi
from live.models.vae import MusicVae, classes_notes, events_classes, slerp

log = logging.getLogger("live.generate")

STEPS_PER_QUARTER = 4
# Flags of the RNN families that mean nothing to a MusicVAE.
RNN_ONLY = ("num_steps", "primer_melody", "primer_midi", "primer_pitches", "primer_drums", "backing_chords",
            "render_chords", "condition_on_primer", "inject_primer_during_generation", "notes_per_second",
            "pitch_class_histogram", "disable_conditioning")


def phrase(path: str, vae: MusicVae) -> tuple[np.ndarray, float]:
    """(classes [steps], its tempo in quarter notes per minute) of a MIDI file's first two bars."""
    data = read_midi(path)
    steps_per_second = data.qpm / 60.0 * STEPS_PER_QUARTER
    steps_per_bar = STEPS_PER_QUARTER * 4 * data.time_signature[0] // data.time_signature[1]
    events, _ = extract_melody(quantize(data.notes, steps_per_second), steps_per_bar)
    if not any(e >= 0 for e in events):
        raise ConfigFileError(f"--interpolate: {path} has no melody notes")
    events = list(events)
    set_melody_length(events, vae.config.steps)
    return events_classes(events, vae.config.min_pitch, vae.config.num_classes), data.qpm


def codes(vae: MusicVae, options: GenerateOptions, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The codes to decode [num_outputs, Z] and the tempo."""
    n = options.num_outputs
    if options.interpolate:
        (a, qpm), (b, _) = (phrase(p, vae) for p in options.interpolate)
        mu, _ = vae.encode(np.stack([a, b]))
        return np.stack([slerp(mu[0], mu[1], t) for t in np.linspace(0.0, 1.0, n)]), qpm
    return rng.standard_normal((n, vae.config.z_size)).astype(np.float32), DEFAULT_QPM


def run_vae(vae: MusicVae, options: GenerateOptions, names: list[str]) -> None:
    """Write one MIDI file per name into ``options.output_dir``."""
    given = [attr for attr in RNN_ONLY if getattr(options, attr) not in (None, False)]
    if given:
        raise ConfigFileError(f"--{given[0].replace('_', '-')} does not apply to a MusicVAE (it takes --sample or --interpolate)")
    if bool(options.interpolate) == bool(options.sample):
        raise ConfigFileError("a MusicVAE needs --sample or --interpolate A.mid B.mid (one of them)")
    if options.beam_size != 1 or options.branch_factor != 1 or options.steps_per_iteration != 1:
        raise ConfigFileError("beam search does not apply to a MusicVAE")
    rng = np.random.default_rng(options.seed)
    z, qpm = codes(vae, options, rng)
    qpm = options.qpm or qpm
    step_seconds = 60.0 / qpm / STEPS_PER_QUARTER
    rows = vae.decode(z, options.temperature, rng)
    for name, row in zip(names, rows):
        notes = [Note(pitch, start * step_seconds, end * step_seconds, 100)
                 for start, end, pitch in classes_notes(row, vae.config.min_pitch)]
        path = os.path.join(options.output_dir, name)
        write_midi(path, notes, qpm=qpm)
        log.info("wrote %s", path)
