"""Shared fixtures: the private JACK server for integration tests."""

from __future__ import annotations

import pytest

from tests.jack import JackServer, start_jack_server, stop_jack_server


@pytest.fixture(scope="session")
def jack_server() -> JackServer:
    """A running dummy-driver JACK server for this test session (see tests/jack.py)."""
    server = start_jack_server()
    yield server
    stop_jack_server(server)
