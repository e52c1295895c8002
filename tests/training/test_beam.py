"""``--runner beam``: ``convert`` and ``dataset`` as Apache Beam pipelines on Beam's real DirectRunner,
compared record for record with the local runner on the same real MIDI files; the shards they
write, the CLI's ``--`` pipeline options, and the refusals."""

from __future__ import annotations

import random
import re
import shutil
import sys
from pathlib import Path

import note_seq
import pytest
import tensorflow as tf
from note_seq.protobuf import music_pb2

from tests.corpus import bach_chorales, chorale_voice
from training import cli
from training.beam import convert_dir_beam, make_dataset_beam, pipeline_options
from training.convert import convert_dir
from training.dataset import make_dataset, read_note_sequences
from training.records import RecordFilesError, record_files

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHORALES = 4
MELODY = "basic_rnn"
EVAL_RATIO = 0.5  # puts chorales on both sides of the split (checked below)
SUMMARY_FIELDS = ("sequences", "eval_sequences", "training_examples", "eval_examples", "training_steps", "eval_steps")


def records(path) -> list[bytes]:
    """Every record under ``path`` (the file, or its shards), sorted: the runners' order differs."""
    return sorted(r for f in record_files(path) for r in tf.data.TFRecordDataset(f).as_numpy_iterator())


def write_records(path, blobs) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for blob in blobs:
            writer.write(blob)


def make_music_dir(folder: Path) -> Path:
    """Real MIDI files (the examples; Bach chorales and their soprano lines, written as MIDI by
    note-seq), a corrupt one and one with no notes."""
    folder.mkdir(parents=True)
    for p in sorted(EXAMPLES.glob("*.mid")):
        shutil.copy(p, folder / p.name)
    for i, chorale in enumerate(bach_chorales(CHORALES)):
        note_seq.sequence_proto_to_midi_file(chorale, str(folder / f"chorale{i}.mid"))
        note_seq.sequence_proto_to_midi_file(chorale_voice(chorale), str(folder / f"soprano{i}.mid"))
    (folder / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06 this is not a MIDI file")
    silent = music_pb2.NoteSequence(ticks_per_quarter=220)
    silent.tempos.add(qpm=100)
    note_seq.sequence_proto_to_midi_file(silent, str(folder / "silent.mid"))
    return folder


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The music folder converted by both runners; Beam as users get it by default: DirectRunner,
    two worker processes (multi_processing)."""
    root = tmp_path_factory.mktemp("beam")
    music = make_music_dir(root / "music")
    local = convert_dir(music, root / "local.tfrecord", workers=1, progress=False)
    beam = convert_dir_beam(music, root / "beam.tfrecord", workers=2)
    return root, local, beam


def test_pipeline_options_default_to_the_direct_runner_in_worker_processes():
    two = pipeline_options([], 2).get_all_options()
    assert (two["runner"], two["direct_num_workers"], two["direct_running_mode"]) == ("DirectRunner", 2, "multi_processing")
    assert pipeline_options(None, 1).get_all_options()["direct_running_mode"] == "in_memory"
    given = pipeline_options(["--runner=FlinkRunner", "--direct_num_workers=4"], 2).get_all_options()
    assert (given["runner"], given["direct_num_workers"]) == ("FlinkRunner", 4)  # options after -- win


def test_convert_beam_writes_the_local_records_and_counts(converted):
    root, local, beam = converted
    shards = record_files(root / "beam.tfrecord")
    assert not (root / "beam.tfrecord").exists() and all("-of-" in s for s in shards)
    assert records(root / "beam.tfrecord") == records(root / "local.tfrecord")
    assert local.sequences == len(records(root / "local.tfrecord")) == 2 * CHORALES + 3
    for name in ("files", "converted_files", "sequences", "skipped"):
        assert getattr(beam, name) == getattr(local, name), name
    assert set(beam.skipped) == {"no notes", "MIDIConversionError"}
    # Beam carries counts, not example paths: the summary says so by leaving them out.
    assert "(e.g." in local.text() and "(e.g." not in beam.text()
    assert "skipped 1: no notes" in beam.text()


def test_dataset_beam_writes_the_local_records_and_counts(converted, tmp_path):
    root, _, _ = converted
    out = tmp_path / "out"
    out.mkdir()
    (out / "training_melodies.tfrecord").write_bytes(b"stale: the local runner's, from before")
    # Beam reads its own convert's shards by their plain name.
    beam = make_dataset_beam(MELODY, root / "beam.tfrecord", out, eval_ratio=EVAL_RATIO, workers=1)
    assert not (out / "training_melodies.tfrecord").exists()  # the stale file went before Beam wrote
    beam_records = {name: records(out / f"{name}_melodies.tfrecord") for name in ("training", "eval")}
    assert all(re.search(r"\.tfrecord-\d{5}-of-\d{5}$", p.name) for p in out.iterdir())

    local = make_dataset(MELODY, root / "local.tfrecord", out, eval_ratio=EVAL_RATIO, workers=2, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["eval_melodies.tfrecord", "training_melodies.tfrecord"]
    for name in ("training", "eval"):
        assert beam_records[name] == records(out / f"{name}_melodies.tfrecord"), name
    assert local.training_examples > 0 and local.eval_examples > 0
    for name in SUMMARY_FIELDS:
        assert getattr(beam, name) == getattr(local, name), name
    assert beam.stats == local.stats and beam.stats


def tune_without_id(number: int) -> bytes:
    """An 8-bar tune of eighth notes on a C major scale (its own random walk per ``number``), with
    neither id nor file name: its split key can only come from its content."""
    rng = random.Random(number)
    seq = music_pb2.NoteSequence(ticks_per_quarter=220)
    seq.tempos.add(qpm=120)
    seq.time_signatures.add(numerator=4, denominator=4)
    degree = 7
    for i in range(64):
        degree = min(14, max(0, degree + rng.choice((-2, -1, 1, 2))))
        pitch = 60 + (0, 2, 4, 5, 7, 9, 11)[degree % 7] + 12 * (degree // 7) - 12
        seq.notes.add(pitch=pitch, velocity=80, start_time=i * 0.25, end_time=i * 0.25 + 0.2)
    seq.total_time = 16.0
    return seq.SerializeToString()


def test_the_split_of_records_without_ids_depends_on_their_content_only(tmp_path):
    blobs = [tune_without_id(n) for n in range(24)]
    write_records(tmp_path / "forward.tfrecord", blobs)
    write_records(tmp_path / "backward.tfrecord", blobs[::-1])
    runs = {
        "forward": lambda out: make_dataset(MELODY, tmp_path / "forward.tfrecord", out, EVAL_RATIO, workers=1, progress=False),
        "backward": lambda out: make_dataset(MELODY, tmp_path / "backward.tfrecord", out, EVAL_RATIO, workers=1, progress=False),
        "beam": lambda out: make_dataset_beam(MELODY, tmp_path / "forward.tfrecord", out, EVAL_RATIO, workers=1),
    }
    sides = {}
    for name, run in runs.items():
        summary = run(tmp_path / name)
        assert summary.sequences == 24 and summary.training_examples + summary.eval_examples == 24
        sides[name] = [records(tmp_path / name / f"{side}_melodies.tfrecord") for side in ("training", "eval")]
    assert sides["forward"] == sides["backward"] == sides["beam"]
    assert 4 < len(sides["forward"][1]) < 20  # both sides hold tunes


def test_cli_beam_shards_are_read_by_their_plain_name(tmp_path, capsys):
    music = make_music_dir(tmp_path / "music")
    seqs = tmp_path / "seqs.tfrecord"
    code = cli.main(["convert", "--runner", "beam", "--workers", "1", "--input-dir", str(music), "--output", str(seqs)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert not seqs.exists() and record_files(seqs)[0].endswith("-00000-of-00001")
    assert f"wrote {seqs}-?????-of-00001 (1 shard)" in out and "skipped 1: no notes" in out
    code = cli.main(["dataset", "--config", MELODY, "--input", str(seqs), "--output-dir", str(tmp_path / "ds"),
                     "--workers", "1", "--quiet", "--eval-ratio", "0"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith(f"{2 * CHORALES + 3} NoteSequences (0 to eval)")
    assert len(records(tmp_path / "ds" / "training_melodies.tfrecord")) > 0


def test_cli_pipeline_options_reach_beam_and_a_refused_one_keeps_the_output(converted, tmp_path, capsys):
    root, _, _ = converted
    out = tmp_path / "seqs.tfrecord"
    shutil.copy(root / "local.tfrecord", out)
    code = cli.main(["convert", "--runner", "beam", "--input-dir", str(root / "music"), "--output", str(out),
                     "--", "--runner=NoSuchRunner"])
    err = capsys.readouterr().err
    assert code == 2
    assert "bad pipeline options" in err and "NoSuchRunner" in err and "Traceback" not in err
    assert out.exists()  # options are checked before an earlier output is removed


@pytest.mark.parametrize(
    "argv",
    [
        ["convert", "--input-dir", "music", "--output", "o.tfrecord", "--", "--runner=FlinkRunner"],
        ["dataset", "--config", MELODY, "--input", "i", "--output-dir", "o", "--runner", "local", "--", "--x=1"],
        ["export", "--run-dir", "r", "--output", "m.npz", "--", "--runner=FlinkRunner"],
    ],
)
def test_cli_pipeline_options_without_runner_beam_are_refused(argv, capsys):
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert "options after -- are Apache Beam pipeline options" in err and len(err.strip().splitlines()) == 1


def test_cli_beam_refuses_limit_and_the_vae(tmp_path, capsys):
    base = ["dataset", "--runner", "beam", "--input", str(tmp_path / "in.tfrecord"), "--output-dir", str(tmp_path / "o")]
    assert cli.main([*base, "--config", MELODY, "--limit", "3"]) == 2
    err = capsys.readouterr().err
    assert "--limit: not with --runner beam" in err and "Traceback" not in err
    assert cli.main([*base, "--config", "cat-mel_2bar_small"]) == 2
    assert "--runner beam: not for cat-mel_2bar_small" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_beam_without_apache_beam_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # `import apache_beam` now fails
    (tmp_path / "music").mkdir()
    code = cli.main(["convert", "--runner", "beam", "--input-dir", str(tmp_path / "music"),
                     "--output", str(tmp_path / "o.tfrecord")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == ('magenta-live-train convert: error: --runner beam needs Apache Beam: '
                           'pip install "magenta-live[beam]"')


def test_dataset_beam_with_nothing_extracted_keeps_the_earlier_output(tmp_path):
    silent = music_pb2.NoteSequence(id="drums only")
    silent.tempos.add(qpm=120)
    silent.notes.add(pitch=36, velocity=100, start_time=0, end_time=0.1, is_drum=True)
    write_records(tmp_path / "in.tfrecord", [silent.SerializeToString()])
    (tmp_path / "out").mkdir()
    earlier = tmp_path / "out" / "training_melodies.tfrecord"
    write_records(earlier, [b"earlier"])
    with pytest.raises(Exception, match="no melody examples"):
        make_dataset_beam(MELODY, tmp_path / "in.tfrecord", tmp_path / "out", eval_ratio=0.0, workers=1)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["training_melodies.tfrecord"]  # nothing staged left
    assert records(earlier) == [b"earlier"]


@pytest.mark.parametrize(
    "options, words",
    [
        (["--direct_running_mode=bogus"], "bad pipeline option: argument --direct_running_mode: invalid choice: 'bogus'"),
        (["--nosuch_flag=1", "notaflag", "--direct-num-workers=3"],
         "pipeline options Beam does not know: --nosuch_flag=1 notaflag --direct-num-workers=3"),
        (["--runner=NoSuchRunner"], "bad pipeline options"),
    ],
)
def test_pipeline_options_beam_would_drop_or_refuse_late_are_refused_first(converted, tmp_path, capsys, options, words):
    root, _, _ = converted
    out = tmp_path / "seqs.tfrecord"
    shutil.copy(root / "local.tfrecord", out)
    code = cli.main(["convert", "--runner", "beam", "--input-dir", str(root / "music"), "--output", str(out), "--", *options])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seqs.tfrecord"]
    assert records(out) == records(root / "local.tfrecord")


def test_options_that_take_their_value_as_the_next_argument_are_known():
    assert pipeline_options(["--job_name", "lakh", "--direct_num_workers", "1"]).get_all_options()["job_name"] == "lakh"


def test_a_pipeline_that_fails_while_running_keeps_the_earlier_output(converted, tmp_path, capsys):
    """A truncated input fails inside Beam's workers: one line, exit 2, the outputs as they were,
    no staging or beam-temp folder left."""
    root, _, _ = converted
    blob = (root / "local.tfrecord").read_bytes()
    (tmp_path / "cut.tfrecord").write_bytes(blob[: len(blob) // 2])
    out = tmp_path / "data"
    out.mkdir()
    write_records(out / "training_melodies.tfrecord", [b"earlier"])
    code = cli.main(["dataset", "--runner", "beam", "--workers", "1", "--config", MELODY, "--input",
                     str(tmp_path / "cut.tfrecord"), "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--runner beam: the pipeline failed" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in out.iterdir()) == ["training_melodies.tfrecord"]
    assert records(out / "training_melodies.tfrecord") == [b"earlier"]


def test_beam_refuses_output_names_it_would_read_as_patterns(converted, tmp_path, capsys):
    root, _, _ = converted
    code = cli.main(["convert", "--runner", "beam", "--input-dir", str(root / "music"), "--output",
                     str(tmp_path / "seqs [1].tfrecord")])
    assert code == 2 and "Beam cannot write names with [ ] * or ?" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_record_that_is_not_a_notesequence_is_skipped_and_counted_by_both_runners(converted, tmp_path):
    root, _, _ = converted
    write_records(tmp_path / "mixed.tfrecord", [*records(root / "local.tfrecord"), b"\xff\xffnot a NoteSequence"])
    summaries = [
        make_dataset(MELODY, tmp_path / "mixed.tfrecord", tmp_path / "local", EVAL_RATIO, workers=2, progress=False),
        make_dataset_beam(MELODY, tmp_path / "mixed.tfrecord", tmp_path / "beam", EVAL_RATIO, workers=1),
    ]
    for summary in summaries:
        assert summary.stats["records skipped: not a NoteSequence"] == 1 and summary.training_examples > 0


def test_record_files_refuses_a_folder(tmp_path):
    with pytest.raises(RecordFilesError, match="is a folder, not a TFRecord file"):
        record_files(tmp_path)


def test_record_files_refuses_mixed_or_partial_shard_sets(tmp_path):
    name = tmp_path / "seqs.tfrecord"
    with pytest.raises(RecordFilesError, match="no such file"):
        record_files(name)
    for suffix in ("-00000-of-00002", "-00001-of-00002", "-00000-of-00003"):
        Path(f"{name}{suffix}").write_bytes(b"")
    with pytest.raises(RecordFilesError, match="of-00002, of-00003"):
        record_files(name)
    Path(f"{name}-00000-of-00003").unlink()
    assert record_files(name) == [f"{name}-00000-of-00002", f"{name}-00001-of-00002"]
    Path(f"{name}-00001-of-00002").unlink()
    with pytest.raises(RecordFilesError, match="1 of its 2 shards"):
        record_files(name)
    name.write_bytes(b"")
    assert record_files(name) == [str(name)]


def test_each_runner_removes_what_the_other_left(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    shutil.copy(EXAMPLES / "tune.mid", music)
    out = tmp_path / "seqs.tfrecord"

    def stale_shards(count: int) -> None:  # what an earlier Beam run left
        for i in range(count):
            Path(f"{out}-{i:05d}-of-{count:05d}").write_bytes(b"stale")

    stale_shards(3)
    convert_dir(music, out, workers=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["music", "seqs.tfrecord"]
    stale_shards(5)  # another count than this run's: both sets would be read
    convert_dir_beam(music, out, workers=1)
    assert not out.exists()
    assert len(record_files(out)) == 1 and len(list(read_note_sequences(out))) == 1


def test_a_beam_run_leaves_nothing_in_the_temporary_folder(tmp_path, monkeypatch):
    """Beam's job server makes scratch folders of its own; they go with the staging folder."""
    import tempfile

    system_tmp = tmp_path / "tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    (tmp_path / "out").mkdir()
    convert_dir_beam(EXAMPLES, tmp_path / "out" / "seqs.tfrecord", workers=2)
    assert list(system_tmp.iterdir()) == []
    assert tempfile.tempdir == str(system_tmp)  # given back
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []
