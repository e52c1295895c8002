"""Every Magenta configuration magenta-live knows: its family, encoding and default sizes.

The ids are Magenta's own (``--config`` of ``melody_rnn_generate`` and friends, and the
generator id stored in a ``.mag`` bundle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from live.errors import UnknownConfigError
from live.models.encodings import chords
from live.models.encodings.base import ConditionalEncoder, EventEncoder, LookbackEncoder, OneHotEventEncoder
from live.models.encodings.drums import drums_encoder
from live.models.encodings.melody import KeyMelodyEncoder, MelodyOneHotEncoding
from live.models.encodings.performance import performance_encoder
from live.models.encodings.polyphony import polyphony_encoder

MELODY, IMPROV, POLYPHONY, PERFORMANCE, DRUMS = "melody", "improv", "polyphony", "performance", "drums"
VAE = "vae"  # MusicVAE (live.models.vae): not an RNN configuration here, but a family agents are chosen by


@dataclass(frozen=True)
class ConfigSpec:
    """What a configuration id means.

    Attributes:
        config_id: Magenta's id, e.g. ``attention_rnn``.
        family: one of melody, improv, polyphony, performance, drums.
        make_encoder: builds a fresh incremental encoder for one stream.
        layer_sizes: Magenta's default ``rnn_layer_sizes`` (units per layer).
        attn_length: Magenta's default attention length in steps (0: no attention).
        steps_per_quarter: time grid of step-based families (steps per quarter note).
        steps_per_second: time grid of performance models (10 ms steps).
        min_note, max_note, transpose_to_key: melody range (max exclusive) and the key
            primers are transposed to (None: not transposed), as Magenta's Melody/Improv configs.
        description: one line for ``magenta-live models`` and errors.
    """

    config_id: str
    family: str
    make_encoder: Callable[[], EventEncoder]
    layer_sizes: tuple[int, ...]
    attn_length: int = 0
    steps_per_quarter: int = 4
    steps_per_second: int = 0
    min_note: int = 48
    max_note: int = 84
    transpose_to_key: int | None = 0
    description: str = ""


def _melody_one_hot(lo: int, hi: int) -> EventEncoder:
    return OneHotEventEncoder(MelodyOneHotEncoding(lo, hi))


def _lookback_melody() -> EventEncoder:
    return LookbackEncoder(MelodyOneHotEncoding(48, 84), (16, 32), 5)


def _key_melody() -> EventEncoder:
    return KeyMelodyEncoder(48, 84)


def _improv(control: str, target: Callable[[], EventEncoder]) -> Callable[[], EventEncoder]:
    def make() -> EventEncoder:
        return ConditionalEncoder(getattr(chords, control)(), target())

    return make


def _polyphony() -> EventEncoder:
    return polyphony_encoder()


def _drums(config_id: str) -> Callable[[], EventEncoder]:
    def make() -> EventEncoder:
        return drums_encoder(config_id)

    return make


def _performance(config_id: str) -> Callable[[], EventEncoder]:
    def make() -> EventEncoder:
        return performance_encoder(config_id)

    return make


_SPECS = [
    ConfigSpec("basic_rnn", MELODY, lambda: _melody_one_hot(48, 84), (128, 128), description="Melody RNN, one-hot encoding"),
    ConfigSpec(
        "mono_rnn", MELODY, lambda: _melody_one_hot(0, 128), (128, 128), min_note=0, max_note=128,
        transpose_to_key=None, description="Melody RNN, all 128 pitches",
    ),
    ConfigSpec("lookback_rnn", MELODY, _lookback_melody, (128, 128), description="Melody RNN with lookback encoding"),
    ConfigSpec("attention_rnn", MELODY, _key_melody, (128, 128), attn_length=40, description="Melody RNN with key-melody encoding and attention"),
    ConfigSpec(
        "basic_improv", IMPROV, _improv("TriadChordEncoder", lambda: _melody_one_hot(48, 84)), (64, 64),
        description="Improv RNN, one-hot triad chords",
    ),
    ConfigSpec(
        "attention_improv", IMPROV, _improv("TriadChordEncoder", _key_melody), (128, 128, 128), attn_length=40,
        description="Improv RNN, triad chords, key-melody encoding and attention",
    ),
    ConfigSpec(
        "chord_pitches_improv", IMPROV, _improv("PitchChordsEncoder", lambda: _melody_one_hot(48, 84)), (256, 256, 256),
        description="Improv RNN, chord pitches encoding",
    ),
    ConfigSpec("polyphony", POLYPHONY, _polyphony, (256, 256, 256), description="Polyphony RNN"),
    ConfigSpec("drum_kit", DRUMS, _drums("drum_kit"), (256, 256, 256), attn_length=32, description="Drums RNN, 9-piece kit with binary counters"),
    ConfigSpec("one_drum", DRUMS, _drums("one_drum"), (128, 128), steps_per_quarter=2, description="Drums RNN, one drum (hit / no hit)"),
]

_PERFORMANCE = {
    "performance": "Performance RNN",
    "performance_with_dynamics": "Performance RNN with 32 velocity bins",
    "performance_with_dynamics_compact": "Performance RNN with dynamics, compact (index) input",
    "performance_with_dynamics_and_modulo_encoding": "Performance RNN with dynamics, modulo encoding",
    "density_conditioned_performance_with_dynamics": "Performance RNN conditioned on note density",
    "pitch_conditioned_performance_with_dynamics": "Performance RNN conditioned on a pitch-class histogram",
    "multiconditioned_performance_with_dynamics": "Performance RNN conditioned on density and pitch histogram",
    "optional_multiconditioned_performance_with_dynamics": "Performance RNN, optionally conditioned on density and pitches",
}
_SPECS += [
    ConfigSpec(cid, PERFORMANCE, _performance(cid), (512, 512, 512), steps_per_second=100, steps_per_quarter=0, description=desc)
    for cid, desc in _PERFORMANCE.items()
]

CONFIGS: dict[str, ConfigSpec] = {spec.config_id: spec for spec in _SPECS}


def get_config(config_id: str) -> ConfigSpec:
    """The spec for ``config_id``; raises UnknownConfigError listing the known ids."""
    try:
        return CONFIGS[config_id]
    except KeyError:
        known = ", ".join(sorted(CONFIGS))
        raise UnknownConfigError(f"unknown configuration {config_id!r}; known: {known}") from None
