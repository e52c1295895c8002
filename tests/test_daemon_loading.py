"""While ``Daemon.open`` loads its models (seconds for a ``.mag`` bundle's first conversion),
its snapshot says so: the panel runs from the start and shows it."""

from __future__ import annotations

import threading

from live.config import agent_spec
from live.daemon import Daemon, DaemonOptions
from live.daemon import loop as daemon_loop


def test_the_snapshot_names_the_models_while_they_load_and_nothing_once_open_ends(monkeypatch):
    loading, release = threading.Event(), threading.Event()

    class Slow(Exception):
        pass

    def open_session(self) -> None:
        loading.set()
        assert release.wait(10)
        raise Slow("the test stops open() here, before any port")

    monkeypatch.setattr(daemon_loop.Daemon, "_open_session", open_session)
    daemon = Daemon(DaemonOptions(agents=[agent_spec({"model": "lookback_rnn.mag"}), agent_spec({"mode": "drums"})]))
    failed: list[BaseException] = []

    def open_it() -> None:
        try:
            daemon.open()
        except Slow as err:
            failed.append(err)

    opener = threading.Thread(target=open_it)
    opener.start()
    assert loading.wait(10)
    snap = daemon.snapshot()
    assert snap.loading == "models: lookback_rnn.mag, the drums default"
    release.set()
    opener.join(10)
    assert failed and daemon.snapshot().loading is None

