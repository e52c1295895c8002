"""MIDI port names: what ``--input-port`` / ``--output-port`` text means, names that survive a
replug, and what ``magenta-live ports`` prints."""

from __future__ import annotations

import re

from live.errors import PortNotFoundError
from live.midi_io.backends import Backend, list_ports, resolve_backend

CLIENT_NAME = "magenta-live"
INPUT_PORT_NAME = "magenta-live in"
OUTPUT_PORT_NAME = "magenta-live out"

KIND_WORDS = {"input": "MIDI input port", "output": "MIDI output port"}


def _whole_word_at(name: str, query: str) -> bool:
    """Whether ``query`` occurs in ``name`` not glued to letters or digits on either side.

    Both are already case-folded. "port 1" is a whole word in "x:port 1 20:0", not in "x:port 10".
    """
    start = name.find(query)
    while start >= 0:
        end = start + len(query)
        left_ok = start == 0 or not query[0].isalnum() or not name[start - 1].isalnum()
        right_ok = end == len(name) or not query[-1].isalnum() or not name[end].isalnum()
        if left_ok and right_ok:
            return True
        start = name.find(query, start + 1)
    return False


def _port_list(names: list[str]) -> str:
    return "; ".join(f"{i}: {n}" for i, n in enumerate(names)) if names else "(none)"


def _not_found(query: str, names: list[str], kind: str, candidates: list[str], why: str) -> PortNotFoundError:
    error = PortNotFoundError(f"{why}; {kind} ports: {_port_list(names)}")
    error.query, error.candidates, error.ports = query, candidates, list(names)
    return error


def match_port(query: str, names: list[str], kind: str) -> str:
    """The one port name in ``names`` that ``query`` means, or PortNotFoundError.

    In order: the exact name; the name equal to the query ignoring case; a unique
    case-insensitive substring (if several names contain it, the unique one that contains it as
    a whole word, so "Port 1" means "Port 1" and never "Port 10"); then an index into ``names``.
    A query that is a number is taken as an index, or as a whole number inside a name, and is an
    error if those disagree. ``kind`` ("input" or "output") only words the error messages, which
    list the candidates or, when nothing matches, every port.
    """
    what = KIND_WORDS.get(kind, f"MIDI {kind} port")
    if query in names:
        return query
    folded = query.strip().casefold()
    if not folded:
        raise _not_found(query, names, kind, [], f"an empty name matches no {what}")
    same = [n for n in names if n.casefold() == folded]
    if len(same) == 1:
        return same[0]
    contains = same or [n for n in names if folded in n.casefold()]
    words = [n for n in contains if _whole_word_at(n.casefold(), folded)]
    if folded.isdigit():
        index = int(folded)
        candidates = list(words)
        if index < len(names) and names[index] not in candidates:
            candidates.append(names[index])
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise _not_found(
                query, names, kind, candidates,
                f"{query!r} is ambiguous: as an index and as part of a name it means {len(candidates)} {what}s: "
                + ", ".join(candidates),
            )
        raise _not_found(query, names, kind, [], f"no {what} has index or name {query!r}")
    if len(contains) == 1:
        return contains[0]
    if len(words) == 1:
        return words[0]
    if contains:
        raise _not_found(
            query, names, kind, contains,
            f"{query!r} matches {len(contains)} {what}s: {', '.join(contains)}; give more of the name, "
            "the full name or its index",
        )
    raise _not_found(query, names, kind, [], f"no {what} matches {query!r}")


_ALSA_ADDRESS = re.compile(r" \d+:\d+$")


def stable_port_name(name: str, backend: Backend) -> str:
    """A port name without what changes when a device is plugged in again (ALSA's "20:0")."""
    return _ALSA_ADDRESS.sub("", name) if backend.name == "alsa" else name


def find_again(remote: str, names: list[str], backend: Backend) -> str | None:
    """The current name of port ``remote`` in ``names`` (it may have a new ALSA address)."""
    if remote in names:
        return remote
    stable = stable_port_name(remote, backend)
    same = [n for n in names if stable_port_name(n, backend) == stable]
    return same[0] if len(same) == 1 else None


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (escape sequences, carriage returns)
    written as escapes, the rest as it is."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def list_ports_text(backend_choice: Backend | str = "auto") -> str:
    """What ``magenta-live ports`` prints: the backend, then numbered inputs and outputs."""
    backend = resolve_backend(backend_choice)
    inputs, outputs = list_ports(backend)
    lines = [f"MIDI backend: {backend.name}", "", "Inputs (ports to read from: --input-port, --clock-port):"]
    lines += [f"  {i}: {printable(name)}" for i, name in enumerate(inputs)] or ["  (none)"]
    lines += ["", "Outputs (ports to write to: --output-port, --clock-out):"]
    lines += [f"  {i}: {printable(name)}" for i, name in enumerate(outputs)] or ["  (none)"]
    lines.append("")
    if backend.virtual_ports:
        lines.append(
            f"Without --input-port / --output-port, magenta-live opens its own ports "
            f"{INPUT_PORT_NAME!r} and {OUTPUT_PORT_NAME!r} (client {CLIENT_NAME!r})."
        )
    else:
        lines.append("This backend has no virtual ports: pick ports above with --input-port / --output-port.")
    return "\n".join(lines) + "\n"
