"""Shared fixtures: the private JACK server for integration tests; the suite's markers.

Markers, set here from what a test uses (see pyproject.toml; the README names the fast subset):

- ``jack``: it starts or uses a JACK server (the ``jack_server`` fixture, or a ``*_jack.py`` file);
- ``tf``: it needs the training extras (TensorFlow, note-seq or music21, or a ``.mag`` bundle);
- ``slow``: it runs the benchmarks' quick modes (tens of seconds).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Conversions of .mag bundles are cached (live.models.CACHE_BUNDLES): the suite keeps its own
# cache, fresh each run, and never touches the user's.
os.environ["MAGENTA_LIVE_CACHE"] = tempfile.mkdtemp(prefix="magenta-live-test-cache-")
atexit.register(shutil.rmtree, os.environ["MAGENTA_LIVE_CACHE"], True)

import live.models
from tests.jack import JackServer, start_jack_server, stop_jack_server


@pytest.fixture(scope="session")
def jack_server() -> JackServer:
    """A running dummy-driver JACK server for this test session (see tests/jack.py)."""
    server = start_jack_server()
    yield server
    stop_jack_server(server)


_OTHER_JACKD = pytest.StashKey[list]()


def pytest_sessionstart(session):
    """Note the JACK servers that already run before this run starts any (leftovers of a crashed
    run, or another suite): they share the CPU with this run's, and JACK tests that time notes
    may then flake. The summary at the end names them."""
    from harness.jackd import jackd_pids

    session.config.stash[_OTHER_JACKD] = jackd_pids()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    pids = config.stash.get(_OTHER_JACKD, [])
    if pids:
        terminalreporter.write_line(
            f"warning: {len(pids)} jackd process(es) were running before this run started "
            f"(pids {', '.join(map(str, sorted(pids)))}); JACK tests that time notes may have flaked"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Mark where jackd's log stands when a JACK test starts, for the report below."""
    server = item.funcargs.get("jack_server")
    if server is not None:
        item.stash[_JACKD_MARK] = server.log_size()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed JACK test shows what jackd logged while it ran (xruns, dropped clients,
    "Driver is not running"): a stalled server explains a late note or a refused client."""
    outcome = yield
    report = outcome.get_result()
    server = item.funcargs.get("jack_server") if hasattr(item, "funcargs") else None
    if report.failed and server is not None:
        logged = server.log_since(item.stash.get(_JACKD_MARK, 0))
        report.sections.append(("jackd log during this test", logged[-6000:] or "(nothing)"))


_JACKD_MARK = pytest.StashKey[int]()

_TF_WORDS = ("tensorflow", "note_seq", "music21", "load_mag", "harness.synthetic_bundles", "harness.metagraph",
             "from training", "import training", "melody_model_file")
_JACK_FILES = ("test_jack_harness.py", "test_panel_tmux.py")
_SLOW_FILES = ("test_benchmarks_smoke.py",)


def pytest_collection_modifyitems(config, items):
    """Mark each test ``jack``, ``tf`` and ``slow`` from what it uses (its fixtures, its file)."""
    sources: dict[Path, str] = {}
    for item in items:
        path = Path(str(item.fspath))
        if path not in sources:
            sources[path] = path.read_text()
        source = sources[path]
        fixtures = getattr(item, "fixturenames", ())
        if "jack_server" in fixtures or path.name.endswith("_jack.py") or path.name in _JACK_FILES:
            item.add_marker(pytest.mark.jack)
        if any(word in source for word in _TF_WORDS) or path.parent.name == "training":
            item.add_marker(pytest.mark.tf)
        if path.name in _SLOW_FILES:
            item.add_marker(pytest.mark.slow)


FIXTURE_BUNDLES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "magenta_bundles"


@pytest.fixture(scope="session")
def melody_model_file(tmp_path_factory) -> Path:
    """A melody model file for daemon tests: the fixture attention_rnn bundle, imported once."""
    from live.models.mag import load_mag

    path = tmp_path_factory.mktemp("models") / "attention_rnn.npz"
    live.models.save(load_mag(FIXTURE_BUNDLES / "attention_rnn_64x2.mag"), path)
    return path


@pytest.fixture(autouse=True)
def _no_child_outlives_its_test():
    """A daemon a test started is killed when the test ends, even if the test failed before it
    stopped it: a leftover daemon would keep its ports, and the next test could find them."""
    from tests.jack import end_tracked

    yield
    end_tracked()
