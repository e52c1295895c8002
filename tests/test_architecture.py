"""The arrows that must never exist between the project's folders (docs/ARCHITECTURE.md), read from
the imports of every file, and no import circle in the live path."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("live", "training", "benchmarks", "harness", "tests")

MODES = ("call", "call_response", "accompany", "improv", "drums", "polyphony", "performance", "session", "modes", "step_agent",
         "vae_agent")
FORBIDDEN: list[tuple[str, tuple[str, ...], str]] = [
    # (importer prefix, imported prefixes, why)
    ("live.engine", ("live.daemon", "live.ui", "live.midi_io", "live.config", "live.cli", "live.offline"),
     "the engine is pure logic, the same live and offline"),
    ("live.engine.voices", tuple(f"live.engine.{m}" for m in MODES), "voices know a family's events, not the modes"),
    ("live.models", ("live.engine",), "models know nothing of agents"),
    ("live", ("training", "tests", "benchmarks", "harness"), "the live path never needs TensorFlow or test code"),
    ("live.ui", ("live.engine", "live.daemon", "live.config", "live.midi_io", "live.models", "live.clock"),
     "the panel speaks to the daemon only through live.protocol"),
    ("live.protocol", ("live.engine", "live.daemon", "live.ui", "live.models", "live.midi_io", "live.config"),
     "the protocol is plain values"),
    ("benchmarks", ("tests",), "benchmarks never import the tests (the shared harness is harness/)"),
    ("harness", ("tests", "benchmarks", "training"), "the harness serves both tests and benchmarks"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for each project import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" if is_module(f"{node.module}.{a.name}") else node.module for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES:
                found.append((name, id(node) in top))
    return found


def graph() -> dict[str, list[tuple[str, bool]]]:
    return {
        module_name(p): imports(p)
        for package in PACKAGES
        for p in sorted((ROOT / package).rglob("*.py"))
        if ".venv" not in p.parts
    }


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(edges: dict[str, list[tuple[str, bool]]]) -> list[str]:
    found = []
    for importer, targets in edges.items():
        for target, _ in targets:
            for src, banned, why in FORBIDDEN:
                if within(importer, src) and any(within(target, b) for b in banned) and not within(target, src):
                    found.append(f"{importer} -> {target}: {why}")
    return sorted(set(found))


def cycles(edges: dict[str, list[tuple[str, bool]]], prefix: str = "live") -> list[list[str]]:
    """Import circles among ``prefix``'s modules, module-level imports only (Tarjan's SCCs)."""
    adj = {m: sorted({t for t, top in ts if top and within(t, prefix) and t != m}) for m, ts in edges.items() if within(m, prefix)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in adj.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(sorted(scc))

    for v in sorted(adj):
        if v not in index:
            visit(v)
    return out


def test_no_forbidden_arrow():
    assert violations(graph()) == []


def test_no_import_circle_in_the_live_path():
    assert cycles(graph()) == []


def test_the_checks_catch_what_they_are_for():
    fake = {
        "live.engine.voices.melody": [("live.engine.call_response", True)],
        "live.models.model": [("live.engine.stream", False)],  # a function-level import counts too
        "live.ui.render": [("live.protocol", True), ("live.engine.session", True)],
        "benchmarks.run": [("tests.jack", True)],
        "live.a": [("live.b", True)],
        "live.b": [("live.c", True)],
        "live.c": [("live.a", True), ("live.d", False)],
        "live.d": [("live.a", False)],  # a deferred import does not make a circle
    }
    assert [v.split(":")[0] for v in violations(fake)] == [
        "benchmarks.run -> tests.jack",
        "live.engine.voices.melody -> live.engine.call_response",
        "live.models.model -> live.engine.stream",
        "live.ui.render -> live.engine.session",
    ]
    assert cycles(fake) == [["live.a", "live.b", "live.c"]]


@pytest.mark.parametrize("package", ["live.engine", "live.models", "live.ui", "live.protocol"])
def test_the_graph_sees_each_package(package):
    assert any(within(m, package) for m in graph())
