"""Every command in the README and docs/*.md (their fenced shell blocks) runs, as written.

The only substitutions are the ones a reader makes: the ports the commands name ("Keystation",
"DAW clock", output index 2) are made to exist on the test's private JACK server, the Magenta
bundles they name are the fixture bundles, and files they write land in a temporary folder
(with ``examples/`` beside it); a command that joins an Ableton Link session runs in a private
network namespace. A daemon command passes when the daemon says it is listening
and then stops on SIGTERM with exit status 0; any other command passes with exit status 0. The
set-up lines (a virtual environment and pip) are what CI runs itself; they are reported as not
run here, with that reason.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_BUNDLES
from tests.jack import stop_child, track
from harness.jackd import NamedJackClient

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BUNDLES = {"attention_rnn.mag": "attention_rnn_64x2.mag", "lookback_rnn.mag": "lookback_rnn_256x2.mag"}
SUBCOMMANDS = {"ports", "import", "configs", "models", "generate", "panic"}


def documented_commands() -> list[tuple[str, str]]:
    """(where, command) for every command line in a fenced sh block, in document order."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in re.findall(r"```(?:sh|bash|shell)\n(.*?)```", text, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    found.append((doc.name, line))
    return found


COMMANDS = documented_commands()


@pytest.fixture(scope="module")
def own_server(jack_server):
    """A JACK server of this file's own: if a documented command's daemon leaves it in a bad
    state (seen under load: a close that waited on jackd, then a server that died), the other
    JACK tests keep the session's server."""
    from harness.jackd import start_jackd

    server = start_jackd()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stage(own_server, tmp_path_factory):
    """The ports the documented commands name, and a folder to run them in."""
    folder = tmp_path_factory.mktemp("documented")
    (folder / "examples").symlink_to(REPO / "examples")
    clients = [NamedJackClient("Keystation", "out"), NamedJackClient("DAW clock", "out")]
    clients += [NamedJackClient(f"synth {c}", "in") for c in "abc"]  # output index 2 exists
    yield folder
    for client in clients:
        client.close()


def _argv(command: str) -> list[str]:
    argv = shlex.split(command, comments=True)
    return [str(FIXTURE_BUNDLES / BUNDLES[a]) if a in BUNDLES else a for a in argv]


@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{w}: {c.split('#')[0].strip()[:60]}" for w, c in COMMANDS])
def test_a_documented_command_runs(stage, own_server, where, command, capsys):
    argv = _argv(command)
    if argv[0] not in ("magenta-live", "magenta-live-train"):
        with capsys.disabled():
            print(f"\n  not run here: {command!r} ({where}): it installs packages; .ci/run runs that set-up itself")
        return
    module = "live.cli" if argv[0] == "magenta-live" else "training.cli"
    args = argv[1:]
    daemon = argv[0] == "magenta-live" and not SUBCOMMANDS & set(args) and "--input-file" not in args
    env = {**own_server.env(), "PYTHONPATH": str(REPO)}
    run = [sys.executable, "-m", module, *args]
    if "link" in args:  # Ableton Link: a private network namespace, never the machine's network
        run = ["unshare", "-n", "sh", "-c", 'ip link set lo up && ip link set lo multicast on && exec "$@"', "sh", *run]
    if daemon:
        process = track(subprocess.Popen(run, cwd=stage, env=env, text=True,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        line = process.stdout.readline()
        if "listening on" not in line:
            stop_child(process)
            pytest.fail(f"{command!r} ({where}) did not start: {line!r} {process.communicate(timeout=10)[1][-2000:]}")
        process.terminate()
        assert process.wait(60) == 0, f"{command!r} ({where}): {process.communicate(timeout=10)[1][-2000:]}"
        return
    done = subprocess.run(run, cwd=stage, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0, f"{command!r} ({where}): {done.stdout[-1000:]} {done.stderr[-2000:]}"


def test_the_documents_hold_commands():
    assert len(COMMANDS) >= 20 and any("--input-port Keystation --output-port 2" in c for _, c in COMMANDS)
