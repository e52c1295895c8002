"""Performance RNN encodings against note-seq's encoders, on Bach chorales and random streams."""

from __future__ import annotations

import functools

import note_seq
import numpy as np
import pytest
from note_seq import encoder_decoder as ned
from note_seq import performance_controls as pc
from note_seq import performance_encoder_decoder as ped
from note_seq import performance_lib as pl
from note_seq.protobuf import music_pb2

from live.errors import EncodingError, UnknownConfigError
from live.models.encodings import performance as perf
from live.models.encodings.base import ConditionalEncoder
from live.models.encodings.performance import PerfEvent
from tests.corpus import bach_chorales

DENSITY_RANGES = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
CONDITIONED = [c for c in perf.PERFORMANCE_CONFIGS if "conditioned" in c]


# ----------------------------------------------------------------------------- references


def reference(config_id: str):
    """(note-seq encoder-decoder, control signals or None) as in Magenta's default_configs."""
    one_hot_32 = ped.PerformanceOneHotEncoding(num_velocity_bins=32)
    if config_id == "performance":
        return ned.OneHotEventSequenceEncoderDecoder(ped.PerformanceOneHotEncoding()), None
    if config_id == "performance_with_dynamics":
        return ned.OneHotEventSequenceEncoderDecoder(one_hot_32), None
    if config_id == "performance_with_dynamics_compact":
        return ned.OneHotIndexEventSequenceEncoderDecoder(one_hot_32), None
    if config_id == "performance_with_dynamics_and_modulo_encoding":
        return ped.ModuloPerformanceEventSequenceEncoderDecoder(num_velocity_bins=32), None
    if config_id == "performance_with_dynamics_and_note_encoding":
        return ped.NotePerformanceEventSequenceEncoderDecoder(num_velocity_bins=32), None
    signals = []
    if config_id != "pitch_conditioned_performance_with_dynamics":
        signals.append(pc.NoteDensityPerformanceControlSignal(3.0, DENSITY_RANGES))
    if config_id != "density_conditioned_performance_with_dynamics":
        signals.append(pc.PitchHistogramPerformanceControlSignal(5.0))
    control = ned.MultipleEventSequenceEncoder([s.encoder for s in signals])
    if config_id.startswith("optional_"):
        control = ned.OptionalEventSequenceEncoder(control)
    target = ned.OneHotEventSequenceEncoderDecoder(one_hot_32)
    return ned.ConditionalEventSequenceEncoderDecoder(control, target), signals


def to_live(event):
    """note-seq PerformanceEvent (or a note tuple of them) -> PerfEvent (or tuple)."""
    if isinstance(event, tuple):
        return tuple(to_live(e) for e in event)
    return PerfEvent(event.event_type, event.event_value)


def to_ref(event):
    if isinstance(event, tuple) and not isinstance(event, PerfEvent):
        return tuple(to_ref(e) for e in event)
    return pl.PerformanceEvent(event.kind, event.value)


# ----------------------------------------------------------------------------- performances


@functools.lru_cache(maxsize=None)
def chorale_sequences() -> tuple[music_pb2.NoteSequence, ...]:
    """Three chorales quantized to 100 steps per second, with seeded random dynamics
    (the MusicXML files give every note velocity 64)."""
    rng = np.random.default_rng(7)
    out = []
    for seq in bach_chorales(3):
        seq = music_pb2.NoteSequence.FromString(seq.SerializeToString())
        for note in seq.notes:
            note.velocity = int(rng.integers(1, 128))
        out.append(note_seq.quantize_note_sequence_absolute(seq, 100))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def chorale_performances(num_velocity_bins: int) -> tuple[note_seq.Performance, ...]:
    return tuple(
        note_seq.Performance(q, num_velocity_bins=num_velocity_bins) for q in chorale_sequences()
    )


def random_performance(
    rng: np.random.Generator,
    length: int,
    num_velocity_bins: int = 32,
    steps_per_second: int = 100,
    max_shift: int = 100,
    zero_shifts: bool = False,
) -> note_seq.Performance:
    """Random events; pitches from a narrow range so notes repeat, sound together and stop."""
    out = note_seq.Performance(steps_per_second=steps_per_second, num_velocity_bins=num_velocity_bins)
    kinds = [pl.PerformanceEvent.NOTE_ON, pl.PerformanceEvent.NOTE_OFF, pl.PerformanceEvent.TIME_SHIFT]
    if num_velocity_bins:
        kinds.append(pl.PerformanceEvent.VELOCITY)
    for _ in range(length):
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == pl.PerformanceEvent.TIME_SHIFT:
            value = int(rng.integers(0 if zero_shifts else 1, max_shift + 1))
            if rng.random() < 0.5:  # many short shifts as in real playing
                value = min(value, int(rng.integers(0 if zero_shifts else 1, 12)))
        elif kind == pl.PerformanceEvent.VELOCITY:
            value = int(rng.integers(1, num_velocity_bins + 1))
        else:
            value = int(rng.integers(55, 80)) if rng.random() < 0.9 else int(rng.integers(0, 128))
        out.append(pl.PerformanceEvent(kind, value))
    return out


def performances_for(config_id: str) -> list[note_seq.Performance]:
    bins = 0 if config_id == "performance" else 32
    rng = np.random.default_rng(perf.PERFORMANCE_CONFIGS.index(config_id))
    return list(chorale_performances(bins)) + [random_performance(rng, 600, bins) for _ in range(2)]


@functools.lru_cache(maxsize=None)
def note_performances() -> tuple[list, ...]:
    """Note-encoded chorales (all voices) and a random stream of note tuples."""
    out = [list(pl.NotePerformance(q, num_velocity_bins=32, instrument=None)) for q in chorale_sequences()]
    rng = np.random.default_rng(3)
    E = pl.PerformanceEvent
    out.append(
        [
            (
                E(E.TIME_SHIFT, int(rng.integers(0, 1001))),
                E(E.NOTE_ON, int(rng.integers(0, 128))),
                E(E.VELOCITY, int(rng.integers(1, 33))),
                E(E.DURATION, int(rng.integers(1, 1001))),
            )
            for _ in range(500)
        ]
    )
    return tuple(out)


def reference_controls(config_id, signals, performance, rng):
    """Control events for every position, from note-seq's extract (as Magenta trains)."""
    controls = list(zip(*[s.extract(performance) for s in signals]))
    if config_id.startswith("optional_"):
        controls = [(bool(rng.random() < 0.3), c) for c in controls]
    return controls


# ----------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    "args",
    [(0, 100, 0, 127), (32, 100, 0, 127), (5, 37, 21, 108), (127, 1, 60, 60)],
)
def test_one_hot_layout_matches_note_seq(args):
    ours = perf.PerformanceOneHotEncoding(*args)
    ref = ped.PerformanceOneHotEncoding(*args)
    assert ours.num_classes == ref.num_classes
    assert ours.default_event == to_live(ref.default_event)
    for index in range(ref.num_classes):
        event = ref.decode_event(index)
        assert ours.decode_event(index) == to_live(event)
        assert ours.encode_event(to_live(event)) == index
        assert ours.event_to_num_steps(to_live(event)) == ref.event_to_num_steps(event)
    with pytest.raises(EncodingError):
        ours.decode_event(ref.num_classes)
    with pytest.raises(EncodingError):
        ours.decode_event(-1)
    with pytest.raises(EncodingError):  # note-seq silently gives the wrong class here
        ours.encode_event(PerfEvent(perf.TIME_SHIFT, 0))
    with pytest.raises(EncodingError):
        ours.encode_event(PerfEvent(perf.DURATION, 1))


def test_class_counts():
    # 128 note-ons + 128 note-offs + 100 shifts; Magenta's "388" includes 32 velocity bins.
    assert perf.PerformanceOneHotEncoding().num_classes == 356
    assert perf.PerformanceOneHotEncoding(num_velocity_bins=32).num_classes == 388
    with pytest.raises(EncodingError):
        perf.PerformanceOneHotEncoding().encode_event(PerfEvent(perf.VELOCITY, 1))


def test_velocity_bins_match_note_seq():
    for bins in range(1, 128):
        for velocity in range(1, 128):
            assert perf.velocity_to_bin(velocity, bins) == pl.velocity_to_bin(velocity, bins)
        for b in range(1, bins + 1):
            assert perf.velocity_bin_to_velocity(b, bins) == pl.velocity_bin_to_velocity(b, bins)
    with pytest.raises(EncodingError):
        perf.velocity_to_bin(64, 0)


def test_sizes_match_note_seq():
    expected = {
        "performance": (356, 356),
        "performance_with_dynamics": (388, 388),
        "performance_with_dynamics_compact": (388, 388),
        "performance_with_dynamics_and_modulo_encoding": (16, 388),
        "performance_with_dynamics_and_note_encoding": (315, 315),
        "density_conditioned_performance_with_dynamics": (396, 388),
        "pitch_conditioned_performance_with_dynamics": (400, 388),
        "multiconditioned_performance_with_dynamics": (408, 388),
        "optional_multiconditioned_performance_with_dynamics": (409, 388),
    }
    assert set(expected) == set(perf.PERFORMANCE_CONFIGS)
    for config_id, (input_size, num_classes) in expected.items():
        ours = perf.performance_encoder(config_id)
        ref, _ = reference(config_id)
        assert (ours.input_size, ours.num_classes) == (input_size, num_classes), config_id
        ref_input = ref.input_depth if "compact" in config_id else ref.input_size
        assert ours.input_size == ref_input, config_id
        if "note_encoding" in config_id:
            assert list(ours.class_sizes) == ref.num_classes
            assert ours.num_classes == sum(ref.num_classes)
            assert ours.event_to_label(ours.default_event) == ref.default_event_label
        else:
            assert ours.num_classes == ref.num_classes, config_id
            assert ours.event_to_label(ours.default_event) == ref.default_event_label
    with pytest.raises(UnknownConfigError):
        perf.performance_encoder("performance_rnn")


@pytest.mark.parametrize(
    "config_id", [c for c in perf.PERFORMANCE_CONFIGS if "note_encoding" not in c]
)
def test_inputs_labels_and_decoding_match_note_seq(config_id):
    ref, signals = reference(config_id)
    rng = np.random.default_rng(11)
    buf = np.full(perf.performance_encoder(config_id).input_size, 9.0, np.float32)
    checked = 0
    for performance in performances_for(config_id):
        events = list(performance)
        ours = perf.performance_encoder(config_id)
        controls = reference_controls(config_id, signals, performance, rng) if signals else None
        for p, event in enumerate(events):
            label = ours.event_to_label(to_live(event))
            assert label == ref.events_to_label(events, p)
            assert ours.label_to_event(label) == to_live(ref.class_index_to_event(label, events[:p]))
            ours.append(to_live(event))
            if controls is not None:
                if p + 1 == len(events):
                    break
                got = ours.encode_input(buf, controls[p + 1])
                want = np.asarray(ref.events_to_input(controls, events, p), np.float32)
            elif "compact" in config_id:
                got = ours.encode_input(buf)
                want = np.zeros(ref.input_depth, np.float32)
                want[ref.events_to_input(events, p)[0]] = 1.0
            else:
                got = ours.encode_input(buf)
                want = np.asarray(ref.events_to_input(events, p), np.float32)
            if "modulo" in config_id:
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
            else:
                np.testing.assert_array_equal(got, want)
            checked += 1
        assert len(ours) == len(events)
    assert checked > 3000


def test_every_class_decodes_as_note_seq():
    for config_id in perf.PERFORMANCE_CONFIGS:
        if "note_encoding" in config_id:
            continue
        ours = perf.performance_encoder(config_id)
        ref, _ = reference(config_id)
        for label in range(ref.num_classes):
            assert ours.label_to_event(label) == to_live(ref.class_index_to_event(label, []))


def test_modulo_encoding_without_velocity_and_other_shift_range():
    ours = perf.ModuloPerformanceEncoder(num_velocity_bins=0, max_shift_steps=37)
    ref = ped.ModuloPerformanceEventSequenceEncoderDecoder(num_velocity_bins=0, max_shift_steps=37)
    assert (ours.input_size, ours.num_classes) == (ref.input_size, ref.num_classes) == (13, 293)
    events = [ref.class_index_to_event(i, []) for i in range(ref.num_classes)]
    for p, event in enumerate(events):
        ours.append(to_live(event))
        np.testing.assert_allclose(
            ours.input_vector(), np.asarray(ref.events_to_input(events, p), np.float32), atol=1e-6
        )


def test_note_encoding_matches_note_seq():
    ref = ped.NotePerformanceEventSequenceEncoderDecoder(num_velocity_bins=32)
    assert ref.shift_steps_segments == 13 and ref.duration_steps_segments == 25
    buf = np.zeros(315, np.float32)
    checked = 0
    for events in note_performances():
        ours = perf.performance_encoder("performance_with_dynamics_and_note_encoding")
        for p, event in enumerate(events):
            label = ours.event_to_label(to_live(event))
            assert label == tuple(ref.events_to_label(events, p))
            assert ours.label_to_event(label) == to_live(ref.class_index_to_event(label, events[:p]))
            ours.append(to_live(event))
            np.testing.assert_array_equal(
                ours.encode_input(buf), np.asarray(ref.events_to_input(events, p), np.float32)
            )
            checked += 1
    assert checked > 1200
    with pytest.raises(EncodingError):
        ours.event_to_label(to_live((
            pl.PerformanceEvent(3, 1001), pl.PerformanceEvent(1, 60),
            pl.PerformanceEvent(4, 1), pl.PerformanceEvent(5, 1),
        )))
    with pytest.raises(EncodingError):
        ours.label_to_event((13, 0, 0, 0, 0, 0))


def test_note_encoding_other_ranges():
    for shifts, durations in [(99, 100), (499, 64), (1000, 1000)]:
        ours = perf.NotePerformanceEncoder(16, shifts, durations, 21, 108)
        ref = ped.NotePerformanceEventSequenceEncoderDecoder(16, shifts, durations, 21, 108)
        assert list(ours.class_sizes) == ref.num_classes
        E = pl.PerformanceEvent
        for s in (0, 1, shifts // 2, shifts):
            for d in (1, 2, durations // 3, durations):
                event = (E(E.TIME_SHIFT, s), E(E.NOTE_ON, 21), E(E.VELOCITY, 16), E(E.DURATION, d))
                assert ours.event_to_label(to_live(event)) == ref.events_to_label([event], 0)
    with pytest.raises(EncodingError):  # 1000 + 1 steps of shift is fine, 1 + 1 = 2 is prime
        perf.NotePerformanceEncoder(32, max_shift_steps=1)


def test_errors_and_copy():
    ours = perf.performance_encoder("performance_with_dynamics")
    with pytest.raises(EncodingError):
        ours.input_vector()
    cond = perf.performance_encoder("density_conditioned_performance_with_dynamics")
    assert isinstance(cond, ConditionalEncoder)
    cond.append(PerfEvent(perf.NOTE_ON, 60))
    with pytest.raises(EncodingError):
        cond.input_vector()  # a conditional encoding needs its control
    fork = cond.copy()
    fork.append(PerfEvent(perf.TIME_SHIFT, 10))
    assert len(cond) == 1 and len(fork) == 2
    assert fork.input_vector((5.0,))[3] == 1.0  # density 5.0 is in bin 3, [4, 8)


# ----------------------------------------------------------------------------- controls


def test_note_density_bins_match_note_seq():
    ref = pc.NoteDensityPerformanceControlSignal.NoteDensityOneHotEncoding(DENSITY_RANGES)
    ours = perf.NoteDensityEncoder()
    assert ours.input_size == ref.num_classes == 8
    rng = np.random.default_rng(5)
    densities = [0.0, 0.5, 1.0, 1.5, 2.0, 3.999, 4.0, 63.9, 64.0, 200.0] + list(rng.uniform(0, 80, 200))
    for density in densities:
        out = np.zeros(8, np.float32)
        ours.encode(density, out)
        want = np.zeros(8, np.float32)
        want[ref.encode_event(density)] = 1.0
        np.testing.assert_array_equal(out, want)
    for index in range(8):
        assert ours.bin_to_density(index) == ref.decode_event(index)


def test_pitch_histogram_encoding_matches_note_seq():
    ref = pc.PitchHistogramPerformanceControlSignal(5.0).encoder
    ours = perf.PitchHistogramEncoder()
    rng = np.random.default_rng(6)
    histograms = [[0.0] * 12, [1.0] * 12, [0.0] * 11 + [3.0]] + [
        list(rng.uniform(0, 5, 12) * (rng.random(12) < 0.6)) for _ in range(100)
    ]
    for h in histograms:
        out = np.zeros(12, np.float32)
        ours.encode(h, out)
        np.testing.assert_array_equal(out, np.asarray(ref.events_to_input([h], 0), np.float32))
    with pytest.raises(EncodingError):
        ours.encode([1.0] * 11, np.zeros(12, np.float32))


def window_pairs(window_seconds_density=3.0, window_seconds_pitch=5.0, steps_per_second=100):
    return [
        (
            lambda: perf.NoteDensityWindow(window_seconds_density, steps_per_second),
            pc.NoteDensityPerformanceControlSignal(window_seconds_density, DENSITY_RANGES),
            0.0,
        ),
        (
            lambda: perf.PitchHistogramWindow(window_seconds_pitch, steps_per_second),
            pc.PitchHistogramPerformanceControlSignal(window_seconds_pitch),
            1e-9,
        ),
    ]


def assert_values_equal(got, want, tol):
    assert len(got) == len(want)
    if tol == 0.0:
        assert got == want
    else:
        np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), rtol=0, atol=tol)


def stream_and_check(make_window, signal, performance, tol):
    """Feed events one by one; every value handed out as final must equal extract() on the
    whole performance, and the values at the end must equal it everywhere."""
    want = signal.extract(performance)
    window = make_window()
    finals = []
    for event in performance:
        window.append(to_live(event))
        finals.extend(window.pop_final())
        if finals:
            assert window.latest_final() == finals[-1][1]
    assert [i for i, _ in finals] == list(range(len(finals)))
    assert_values_equal([v for _, v in finals], want[: len(finals)], tol)
    assert_values_equal(window.values(), want, tol)
    return len(finals)


@pytest.mark.parametrize("bins", [0, 32])
def test_windows_match_extract_on_chorales(bins):
    for make_window, signal, tol in window_pairs():
        for performance in chorale_performances(bins):
            finals = stream_and_check(make_window, signal, performance, tol)
            assert 0 < finals < len(performance)  # the last seconds stay open


def test_windows_match_extract_on_random_streams():
    rng = np.random.default_rng(21)
    for sps, density_s, pitch_s, zero in [(100, 3.0, 5.0, False), (100, 0.25, 0.4, True),
                                          (50, 1.0, 2.0, True), (100, 0.0, 0.0, False),
                                          (1000, 3.0, 5.0, False)]:
        for _ in range(3):
            performance = random_performance(rng, 800, 32, sps, 100, zero)
            for make_window, signal, tol in window_pairs(density_s, pitch_s, sps):
                stream_and_check(make_window, signal, performance, tol)


def test_windows_match_extract_on_every_prefix():
    """After each event, the values at all positions equal extract() of the prefix."""
    rng = np.random.default_rng(8)
    performance = random_performance(rng, 160, 32, 100, 60, zero_shifts=True)
    for make_window, signal, tol in window_pairs(0.8, 1.2):
        window = make_window()
        prefix = note_seq.Performance(steps_per_second=100, num_velocity_bins=32)
        for event in performance:
            window.append(to_live(event))
            prefix.append(event)
            assert_values_equal(window.values(), signal.extract(prefix), tol)
        window.reset()
        assert len(window) == 0 and window.values() == [] and window.latest_final() is None


def test_windows_drive_conditioned_encoders_like_note_seq():
    """End to end: controls from our rolling windows give note-seq's inputs."""
    config_id = "optional_multiconditioned_performance_with_dynamics"
    ref, signals = reference(config_id)
    performance = chorale_performances(32)[0]
    events = list(performance)
    controls = reference_controls(config_id, signals, performance, np.random.default_rng(2))
    ours = perf.performance_encoder(config_id)
    windows = perf.control_windows(config_id)
    assert [type(w) for w in windows] == [perf.NoteDensityWindow, perf.PitchHistogramWindow]
    for event in events:
        for w in windows:
            w.append(to_live(event))
    values = list(zip(*[w.values() for w in windows]))
    buf = np.zeros(ours.input_size, np.float32)
    for p, event in enumerate(events[:-1]):
        ours.append(to_live(event))
        disabled = controls[p + 1][0]
        got = ours.encode_input(buf, (disabled, values[p + 1]))
        want = np.asarray(ref.events_to_input(controls, events, p), np.float32)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert perf.control_windows("performance") == []
