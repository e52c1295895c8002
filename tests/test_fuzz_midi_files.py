"""Property-based fuzzing of the MIDI files the project reads (offline input, primers, patterns).

Every generated file (odd tempos, SMPTE or zero division, empty tracks, bytes cut short or
flipped) either reads or is refused with MidiFileError (one line): never another exception."""

from __future__ import annotations

import io
import os

import mido
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("MAGENTA_LIVE_FUZZ_EXAMPLES", "250"))
"""Examples per property (benchmarks/faults.py runs a larger campaign)."""

from live.errors import LiveError
from live.midi_file import read_input_file, read_midi

events = st.lists(
    st.one_of(
        st.builds(lambda t, n, v, c: mido.Message("note_on", note=n, velocity=v, channel=c, time=t),
                  st.integers(0, 2000), st.integers(0, 127), st.integers(0, 127), st.integers(0, 15)),
        st.builds(lambda t, n, c: mido.Message("note_off", note=n, channel=c, time=t),
                  st.integers(0, 2000), st.integers(0, 127), st.integers(0, 15)),
        st.builds(lambda t, tempo: mido.MetaMessage("set_tempo", tempo=tempo, time=t),
                  st.integers(0, 2000), st.sampled_from([0, 1, 2, 500_000, 16_777_215])),
        st.builds(lambda t, n, d: mido.MetaMessage("time_signature", numerator=n, denominator=d, time=t),
                  st.integers(0, 2000), st.integers(1, 32), st.sampled_from([1, 2, 4, 8, 16, 32])),
    ),
    max_size=40,
)


def _bytes(tracks: list[list], division: int, file_type: int) -> bytes:
    mid = mido.MidiFile(type=file_type, ticks_per_beat=480)
    for track in tracks:
        mid.tracks.append(mido.MidiTrack(track))
    out = io.BytesIO()
    mid.save(file=out)
    data = bytearray(out.getvalue())
    data[12:14] = division.to_bytes(2, "big")  # the header's division: 0, SMPTE (top bit set) too
    return bytes(data)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(events, max_size=3), st.sampled_from([0, 1, 96, 480, 0x7FFF, 0xE728]), st.sampled_from([0, 1]),
       st.one_of(st.none(), st.tuples(st.integers(0, 400), st.integers(0, 255))), st.integers(0, 400))
def test_a_midi_file_reads_or_is_refused_in_one_line(tmp_path_factory, tracks, division, file_type, flip, cut):
    if file_type == 0:
        tracks = tracks[:1] or [[]]
    data = bytearray(_bytes(tracks, division, file_type))
    if flip is not None and flip[0] < len(data):
        data[flip[0]] = flip[1]
    if cut and cut < len(data):
        data = data[:-cut]
    path = tmp_path_factory.mktemp("midi") / "in.mid"
    path.write_bytes(bytes(data))
    for read in (read_midi, read_input_file):
        try:
            read(path)
        except LiveError as err:
            assert str(err) and "\n" not in str(err), str(err)


def test_smpte_division_and_a_zero_tempo_are_named(tmp_path):
    import pytest

    from live.errors import MidiFileError

    smpte = tmp_path / "smpte.mid"
    smpte.write_bytes(_bytes([[mido.Message("note_on", note=60)]], 0xE728, 1))  # -25 fps, 40 ticks per frame
    with pytest.raises(MidiFileError, match="SMPTE"):
        read_midi(smpte)
    zero = tmp_path / "zero.mid"
    zero.write_bytes(_bytes([[mido.MetaMessage("set_tempo", tempo=0), mido.Message("note_on", note=60)]], 480, 1))
    for read in (read_midi, read_input_file):
        with pytest.raises(MidiFileError, match="a tempo of 0 microseconds"):
            read(zero)
