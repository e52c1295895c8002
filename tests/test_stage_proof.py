"""What must never cost a performer the take: a bad recording path, a failed write at exit, a
name outside Latin-1, a MIDI driver that hangs while its ports close."""

from __future__ import annotations

import os
import threading
import time

import mido
import pytest

from live.daemon import Daemon, DaemonOptions
from live.daemon import loop as daemon_loop
from live.daemon import recorder as recorder_mod
from live.daemon.recorder import Recorder
from live.errors import OutputPathError
from live.recording import Recording


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d / "no" / "such" / "take.mid", "does not exist"),
        (lambda d: d, "is a folder"),
        (lambda d: (d / "a file").write_text("") or d / "a file" / "take.mid", "is a file, not a folder"),
    ],
)
def test_a_bad_recording_path_is_refused_before_any_port_opens(tmp_path, make, words):
    daemon = Daemon(DaemonOptions(record=str(make(tmp_path)), agents=[]))
    with pytest.raises(OutputPathError, match=f"--record: .*{words}"):
        daemon.open()
    assert daemon.inputs == [] and daemon.outputs == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(OutputPathError, match="not writable"):
        Daemon(DaemonOptions(record=str(folder / "take.mid"), agents=[])).open()


def _take(recorder: Recorder) -> None:
    recorder.start(120.0, ["合唱 ♪", "Cañón"])
    recorder.add("player", 0, mido.Message("note_on", note=60, velocity=90))
    recorder.add("合唱 ♪", 12, mido.Message("note_on", note=64, velocity=90))


def test_a_take_whose_folder_vanished_goes_to_a_named_fallback_file(tmp_path, monkeypatch):
    rescue = tmp_path / "home"
    rescue.mkdir()
    monkeypatch.setattr(recorder_mod, "fallback_folders", lambda: [str(tmp_path / "gone too"), str(rescue)])
    gig = tmp_path / "gig"
    gig.mkdir()
    said: list[str] = []
    recorder = Recorder(str(gig / "take.mid"), 4, said.append)
    _take(recorder)
    gig.rmdir()  # the folder went away during the gig
    recorder.write()
    saved = list(rescue.iterdir())
    assert len(saved) == 1 and saved[0].name.startswith("magenta-live-rescued-")
    assert recorder.failed and str(saved[0]) in recorder.failed and str(saved[0]) in said[-1]
    tracks = mido.MidiFile(saved[0], charset="utf-8").tracks
    assert [t.name for t in tracks] == ["tempo", "player", "合唱 ♪", "Cañón"]
    assert [m.note for m in tracks[2] if m.type == "note_on"] == [64]


def test_track_names_outside_latin_1_are_written_as_utf_8(tmp_path):
    recording = Recording(120.0, (4, 4))
    recording.add_track("ドラム")
    recording.write(tmp_path / "take.mid")
    assert mido.MidiFile(tmp_path / "take.mid", charset="utf-8").tracks[1].name == "ドラム"
    assert [p.name for p in tmp_path.iterdir()] == ["take.mid"]


def test_a_release_read_from_a_late_then_stopped_clock_never_lands_before_its_note(tmp_path):
    # The output thread sent a note-on at tick 100.7 (the clock thread had not yet emitted tick
    # 101, its due time past); the clock stopped with 101 next and the release on close was
    # stamped 100.0: the note-off must not be written before the note-on.
    recording = Recording(120.0, (4, 4))
    recording.add("a", 96.0, mido.Message("note_on", note=60, velocity=90))
    recording.add("a", 99.5, mido.Message("note_off", note=60))  # an earlier note, ended in time
    recording.add("a", 100.7, mido.Message("note_on", note=62, velocity=90))
    recording.add("a", 100.0, mido.Message("note_off", note=62))
    recording.add("a", 100.0, mido.Message("note_on", note=64, velocity=90, channel=1))
    recording.add("a", 99.9, mido.Message("note_on", note=64, velocity=0, channel=1))  # off as a zero-velocity on
    recording.write(tmp_path / "take.mid")
    held, at, heard = {}, 0, []
    for msg in mido.MidiFile(tmp_path / "take.mid").tracks[1]:
        at += msg.time
        if msg.type in ("note_on", "note_off"):
            key = (msg.channel, msg.note)
            if msg.type == "note_on" and msg.velocity:
                held[key] = at
            else:
                heard.append((key, held.pop(key), at))
    assert not held
    assert sorted(key for key, _, _ in heard) == [(0, 60), (0, 62), (1, 64)]
    assert heard[0][2] < heard[1][1]  # the first note still ends where it ended


class HangingPort:
    name = "hangs"
    closed = False
    virtual = True

    def __init__(self) -> None:
        self.release = threading.Event()

    def close(self) -> None:
        self.release.wait(30)
        self.closed = True


def test_an_embedded_daemon_reports_a_hanging_port_close_instead_of_ending_the_process(monkeypatch, caplog):
    monkeypatch.setattr(daemon_loop, "PORT_CLOSE_SECONDS", 0.3)
    daemon = Daemon(DaemonOptions(agents=[]))
    port = HangingPort()
    daemon.outputs = [port]
    start = time.perf_counter()
    daemon.close()  # no exit_on_hang: the test process must live on
    assert time.perf_counter() - start < 5
    assert daemon.close_hung and "closing the MIDI ports hung" in caplog.text
    port.release.set()


def test_each_take_of_the_record_control_gets_its_own_file(tmp_path):
    said: list[str] = []
    recorder = Recorder(str(tmp_path / "take.mid"), 4, said.append)
    for _ in range(3):
        recorder.toggle(120.0, ["lead"])  # start
        recorder.add("player", 0, mido.Message("note_on", note=60, velocity=90))
        recorder.toggle(120.0, ["lead"])  # stop and write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take-2.mid", "take-3.mid", "take.mid"]


def test_an_atomic_write_keeps_the_files_mode_and_writes_through_a_symlink(tmp_path):
    from live.files import atomic_write

    real = tmp_path / "real.toml"
    real.write_text("old")
    real.chmod(0o600)
    link = tmp_path / "live.toml"
    link.symlink_to(real)
    atomic_write(link, "new")
    assert link.is_symlink() and real.read_text() == "new" and (real.stat().st_mode & 0o777) == 0o600
