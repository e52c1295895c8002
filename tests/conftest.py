"""Shared fixtures: the private JACK server for integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.jack import JackServer, start_jack_server, stop_jack_server


@pytest.fixture(scope="session")
def jack_server() -> JackServer:
    """A running dummy-driver JACK server for this test session (see tests/jack.py)."""
    server = start_jack_server()
    yield server
    stop_jack_server(server)


FIXTURE_BUNDLES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "magenta_bundles"


@pytest.fixture(scope="session")
def melody_model_file(tmp_path_factory) -> Path:
    """A melody model file for daemon tests: the fixture attention_rnn bundle, imported once."""
    from live.models.mag import load_mag

    path = tmp_path_factory.mktemp("models") / "attention_rnn.npz"
    load_mag(FIXTURE_BUNDLES / "attention_rnn_64x2.mag").save(str(path))
    return path


@pytest.fixture(autouse=True)
def _no_child_outlives_its_test():
    """A daemon a test started is killed when the test ends, even if the test failed before it
    stopped it: a leftover daemon would keep its ports, and the next test could find them."""
    from tests.jack import end_tracked

    yield
    end_tracked()
