"""Ableton Link: two peers in one session, inside a private network namespace (loopback only,
never a real network): the daemon's clock follows the session's tempo, phase and transport,
and its tempo knob moves the session."""

from __future__ import annotations

import pytest


def test_the_clock_follows_a_link_session(tmp_path):
    pytest.importorskip("link", reason='the Link binding: pip install "magenta-live[link]" (the test extras include it)')
    from harness.link_session import in_private_network

    out = in_private_network(4.0)
    assert out["peers"] == 1
    assert out["running_after_peer_start"]
    assert out["bpm_after_a_bar"] == pytest.approx(97.0, abs=0.3)  # followed within a bar
    errors = sorted(abs(e) for e in out["phase_errors_ms"])
    assert len(errors) >= 100 and errors[len(errors) * 99 // 100] < 2.0, errors[-10:]  # on the peer's grid
    assert out["bar_phase_of_bar_ticks"] and all(abs(p) < 0.01 or abs(p - 4.0) < 0.01 for p in out["bar_phase_of_bar_ticks"]), out
    assert out["peer_bpm_after_knob"] == pytest.approx(110.0, abs=0.01)
    assert not out["running_after_peer_stop"]
    assert out["transport"][:1] == ["start"] and out["transport"][-1] == "stop"


def test_without_the_binding_the_daemon_says_how_to_get_it(monkeypatch):
    import builtins

    from live.clock import link as link_clock
    from live.errors import BackendError

    real_import = builtins.__import__

    def no_link(name, *args, **kwargs):
        if name == "link":
            raise ImportError("No module named 'link'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_link)
    with pytest.raises(BackendError, match=r'pip install "magenta-live\[link\]"'):
        link_clock.load_link()
