"""Wake: a threading.Event that the daemon's loop sleeps on beside JACK's own wake-ups."""

from __future__ import annotations

import threading
import time

import pytest

from live.midi_io.wake import Wake


def test_it_behaves_as_an_event():
    wake = Wake()
    assert not wake.is_set() and not wake.wait(0.0)
    wake.set()
    wake.set()  # twice: still one wake-up
    assert wake.is_set() and wake.wait(0.0) and wake.wait(None)
    wake.clear()
    started = time.perf_counter()
    assert not wake.wait(0.03)
    assert time.perf_counter() - started >= 0.025  # slept out its timeout


def test_set_from_another_thread_wakes_a_sleeper_at_once():
    wake = Wake()
    woke: list[float] = []

    def sleeper():
        assert wake.wait(5.0)
        woke.append(time.perf_counter())

    thread = threading.Thread(target=sleeper)
    thread.start()
    time.sleep(0.05)  # asleep in select by now
    set_at = time.perf_counter()
    wake.set()
    thread.join(5.0)
    assert woke and woke[0] - set_at < 1.0


def test_set_while_nobody_sleeps_writes_nothing_and_a_stale_byte_costs_one_early_return():
    wake = Wake()
    wake.set()  # the loop sets its own Wake while it works: no system call, no byte
    wake.clear()
    started = time.perf_counter()
    assert not wake.wait(0.03) and time.perf_counter() - started >= 0.025
    # a byte written by someone else (the JACK binding) wakes a sleeper without setting it
    assert wake._writer.send(b"\1") == 1
    started = time.perf_counter()
    assert not wake.wait(5.0) and time.perf_counter() - started < 1.0
    started = time.perf_counter()  # it was read: the next wait sleeps again
    assert not wake.wait(0.03) and time.perf_counter() - started >= 0.025


def test_a_set_racing_a_sleeper_is_never_lost():
    """The flag first, then the look at whether someone sleeps (set); the reverse in wait: a
    set() between a sleeper's look at the flag and its sleep still wakes it."""
    for _ in range(200):
        wake = Wake()
        done = threading.Event()

        def sleeper(wake=wake, done=done):
            wake.wait(5.0)
            done.set()

        thread = threading.Thread(target=sleeper)
        thread.start()
        wake.set()
        assert done.wait(2.0), "a set() was lost"
        thread.join()
        wake.close()


def test_waiting_in_the_jack_binding_with_no_limit_ends_when_set():
    from live.midi_io import jack as binding

    wake = Wake()
    woke: list[float] = []
    thread = threading.Thread(target=lambda: woke.append(binding.wait_for_input(wake, binding.arrivals(), None)))
    thread.start()
    time.sleep(0.1)
    assert not woke, "a wait with no limit returned by itself"
    wake.set()
    thread.join(5.0)
    assert woke


def test_a_descriptor_numbered_past_select_s_limit_still_sleeps():
    """select() refuses descriptor numbers from 1024 on; a Wake made in a process with many files
    open must still sleep out its timeout, not return at once (a loop would spin)."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"this process may open only {hard} files: no descriptor past 1023 to test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200) if hard == resource.RLIM_INFINITY else max(soft, min(hard, 1200)), hard))
    read, write = os.pipe()
    spare = [os.dup(read) for _ in range(1030)]
    try:
        wake = Wake()
        assert wake.read_fd >= 1024
        started = time.perf_counter()
        assert not wake.wait(0.03) and time.perf_counter() - started >= 0.025
        wake.set()
        assert wake.wait(1.0)
        wake.close()
        with pytest.raises(ValueError):
            wake.wait(0.01)
        wake.set()  # after close: nothing, no error
    finally:
        for fd in (*spare, read, write):
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
