"""The live path never imports TensorFlow (nor note-seq): it must start fast and lean."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from live.models.model import Model, ModelConfig, expected_shapes
from live.models.modelfile import save


def run_isolated(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_importing_live_leaves_tensorflow_out():
    out = run_isolated(
        "import sys, live, live.models, live.cli, live.engine.stream, live.engine.sampling\n"
        "live.cli.build_parser()\n"
        "print(sorted(m for m in ('tensorflow', 'note_seq', 'music21') if m in sys.modules))"
    )
    assert out.strip() == "[]"


def test_loading_and_stepping_a_model_file_leaves_tensorflow_out(tmp_path):
    config = ModelConfig("lookback_rnn", [16, 16], 121, 40)
    rng = np.random.default_rng(0)
    model = Model(config, {k: rng.standard_normal(s).astype(np.float32) for k, s in expected_shapes(config).items()})
    path = tmp_path / "m.npz"
    save(model, path)
    out = run_isolated(
        "import sys, numpy as np, live.models\n"
        "from live.engine.stream import Stream\n"
        f"m = live.models.load({str(path)!r})\n"
        "s = Stream(m); s.feed(60)\n"
        "events = [s.sample(np.random.default_rng(0))[0] for _ in range(8)]\n"
        "print(m.config_id, len(events), 'tensorflow' in sys.modules, 'note_seq' in sys.modules)"
    )
    assert out.split() == ["lookback_rnn", "8", "False", "False"]


def test_starting_the_daemon_with_every_modes_default_model_leaves_tensorflow_out(jack_server):
    code = (
        "import sys\n"
        "from live.config import agent_spec\n"
        "from live.daemon import Daemon, DaemonOptions\n"
        "specs = [agent_spec({'mode': m, 'name': m}, i) for i, m in enumerate(\n"
        "    ['call-response', 'continue', 'improv', 'harmonize', 'drums', 'duet'])]\n"
        "with Daemon(DaemonOptions(backend='jack', agents=specs, client_name='notf-test')) as daemon:\n"
        "    daemon.run(0.5)\n"
        "    print([a.model.config_id for a in daemon.session.agents])\n"
        "print(sorted(m for m in ('tensorflow', 'note_seq', 'music21') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=jack_server.env())
    assert out.returncode == 0, out.stderr
    families, modules = out.stdout.strip().splitlines()
    assert modules == "[]"
    assert len(eval(families)) == 6
