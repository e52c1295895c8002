"""The suite's own configuration: a test that kills its process cannot take the run down with it.

JACK integration tests drive native code (libjack through python-rtmidi); a segfault there once
ended pytest in the middle of the run with no summary. pyproject.toml runs the tests in a
pytest-xdist worker process: the crashed test is reported as failed, a new worker runs the rest,
and the summary comes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CRASHING = '''
import os
import signal


def test_crashes():
    os.kill(os.getpid(), signal.SIGSEGV)


def test_after_the_crash():
    assert True
'''


def test_a_segfault_fails_its_test_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "test_crash.py").write_text(CRASHING)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(REPO / "pyproject.toml"),
         "--rootdir", str(tmp_path), str(tmp_path / "test_crash.py")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "crashed while running" in out and "test_crashes" in out, out
    assert "1 failed, 1 passed" in out, out
