"""``magenta-live-train convert`` on real files from music21's corpus: MusicXML chorales, a MIDI
file note-seq writes from one, ABC tunes with chord symbols, plus broken files."""

from __future__ import annotations

import shutil

import music21
import note_seq
import pytest
import tensorflow as tf
from note_seq.protobuf import music_pb2

from tests.corpus import CORPUS
from training import cli
from training.convert import (
    chord_symbol_text,
    convert_dir,
    file_to_sequences,
    find_music_files,
)

CHORALES = sorted((CORPUS / "bach").glob("bwv*.mxl"))[:2]
# The Nottingham sample: two reels with chord symbols ("D", "Em", "A7", "Am/C"...).
NOTTINGHAM = CORPUS / "nottingham-dataset" / "reelsa-c.abc"
ONE_TUNE = CORPUS / "ryansMammoth" / "AcaciaReel.abc"


def read_records(path) -> list[music_pb2.NoteSequence]:
    return [music_pb2.NoteSequence.FromString(r) for r in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()]


def notes_of(seq: music_pb2.NoteSequence) -> list[tuple]:
    return sorted((n.pitch, round(n.start_time, 6), round(n.end_time, 6)) for n in seq.notes)


@pytest.fixture
def music_dir(tmp_path):
    d = tmp_path / "music"
    (d / "sub").mkdir(parents=True)
    for p in CHORALES:
        shutil.copy(p, d / p.name)
    midi_seq = note_seq.musicxml_file_to_sequence_proto(str(CHORALES[0]))
    note_seq.sequence_proto_to_midi_file(midi_seq, str(d / "chorale.mid"))
    shutil.copy(NOTTINGHAM, d / "reels.abc")
    shutil.copy(ONE_TUNE, d / "sub" / "acacia.abc")
    (d / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06 this is not a MIDI file")
    (d / "notes.xml").write_text("<shopping><item>milk</item></shopping>")
    (d / "readme.txt").write_text("not music, and not picked up")
    return d


def test_finds_music_by_extension_and_recursive(music_dir):
    top = [p.name for p in find_music_files(music_dir)]
    assert top == sorted([CHORALES[0].name, CHORALES[1].name, "chorale.mid", "corrupt.mid", "notes.xml", "reels.abc"])
    assert "acacia.abc" in [p.name for p in find_music_files(music_dir, recursive=True)]


def test_convert_counts_skipped_files_and_matches_note_seq(music_dir, tmp_path):
    out = tmp_path / "seqs.tfrecord"
    summary = convert_dir(music_dir, out, recursive=True, workers=2, progress=False)
    assert summary.files == 7
    assert summary.converted_files == 5
    assert sum(summary.skipped.values()) == 2  # corrupt.mid and notes.xml
    seqs = read_records(out)
    assert summary.sequences == len(seqs)
    by_file: dict[str, list] = {}
    for s in seqs:
        by_file.setdefault(s.filename, []).append(s)

    # MusicXML and MIDI go through note-seq's own readers.
    for p in CHORALES:
        assert notes_of(by_file[p.name][0]) == notes_of(note_seq.musicxml_file_to_sequence_proto(str(p)))
    midi = by_file["chorale.mid"][0]
    assert notes_of(midi) == notes_of(note_seq.midi_file_to_note_sequence(str(music_dir / "chorale.mid")))

    # ABC: one NoteSequence per tune, the pitches music21 reads, in order; chords kept.
    opus = music21.converter.parse(str(NOTTINGHAM), format="abc", forceSource=True)
    reels = sorted(by_file["reels.abc"], key=lambda s: s.id)
    assert len(reels) == len(opus.scores) >= 2
    for seq, score in zip(reels, opus.scores):
        expected = [p.midi for n in score.stripTies().flatten().notes
                    if not isinstance(n, music21.harmony.ChordSymbol) for p in n.pitches]
        got = [n.pitch for n in sorted(seq.notes, key=lambda n: (n.start_time, n.pitch))]
        assert sorted(got) == sorted(expected)
        chords = [a.text for a in seq.text_annotations if a.annotation_type == a.CHORD_SYMBOL]
        assert chords, "the reels have chord symbols"
        for text in chords:
            note_seq.chord_symbols_lib.chord_symbol_pitches(text)  # note-seq reads every one
    assert len(by_file["acacia.abc"]) == 1
    # Ids are paths relative to the input folder (the same on every machine: the split hashes them).
    assert by_file["acacia.abc"][0].id == "sub/acacia.abc#0"
    assert sorted(s.id for s in reels) == [f"reels.abc#{i}" for i in range(len(reels))]
    assert by_file["chorale.mid"][0].id == "chorale.mid#0"


def test_chord_symbol_spelling():
    cs = music21.harmony.ChordSymbol("B-7")
    assert chord_symbol_text(cs) == "Bb7"
    cs = music21.harmony.ChordSymbol("Am/C")
    assert chord_symbol_text(cs) == "Am/C"
    cs = music21.harmony.ChordSymbol("F#m7b5")
    assert chord_symbol_text(cs) == "F#m7b5"


def test_not_music_raises_a_reason(tmp_path):
    bad = tmp_path / "x.mid"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(Exception, match="MIDI"):
        file_to_sequences(bad)


def test_cli_empty_directory_exits_2(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("hello")
    code = cli.main(["convert", "--input-dir", str(tmp_path), "--output", str(tmp_path / "o.tfrecord")])
    assert code == 2
    err = capsys.readouterr().err
    assert "no music files" in err and "Traceback" not in err
    assert not (tmp_path / "o.tfrecord").exists()


def test_cli_only_unreadable_files_exits_2(tmp_path, capsys):
    (tmp_path / "a.mid").write_bytes(b"garbage")
    (tmp_path / "b.mxl").write_bytes(b"garbage")
    code = cli.main(["convert", "--input-dir", str(tmp_path), "--output", str(tmp_path / "o.tfrecord"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "none of the 2 music files" in err and "skipped" in err


def test_cli_missing_directory_exits_2(tmp_path, capsys):
    code = cli.main(["convert", "--input-dir", str(tmp_path / "nope"), "--output", str(tmp_path / "o.tfrecord")])
    assert code == 2
    assert "no such directory" in capsys.readouterr().err


def test_cli_converts_and_summarizes(music_dir, tmp_path, capsys):
    out = tmp_path / "seqs.tfrecord"
    code = cli.main(["convert", "--input-dir", str(music_dir), "--output", str(out), "--workers", "1", "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    assert "6 files: 4 converted" in text and "skipped 1" in text
    assert len(read_records(out)) >= 5
