"""Drum tracks that exist offline: the groove library of MMA (Musical MIDI Accompaniment).

Debian's ``mma`` package carries some 1,100 hand-written accompaniment grooves (rock, swing,
latin, waltz, march, funk...; each with its drum parts) in ``/usr/share/mma/lib/stdlib``. This
module fetches the package with ``apt-get download`` (nothing is installed or committed),
unpacks it under ``build/recipes/data/mma``, and has MMA render every groove for 16 bars over a
simple chord progression into a General MIDI file, whose channel-10 drum track the drums
recipe then extracts. (``hydrogen-data``, the other Debian source of drum patterns, holds only
seven demo songs.)
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from training.recipes.common import DATA

MMA_DIR = DATA / "mma"
PROGRESSIONS = (
    ("C", "Am", "F", "G7"),
    ("Dm7", "G7", "Cmaj7", "A7"),
    ("Em", "C", "D", "B7"),
    ("F", "Bb", "C7", "F"),
)
BARS = 16


def fetch_mma() -> Path:
    """Unpack Debian's mma package into ``MMA_DIR`` (once); return its MMA_HOME."""
    home = MMA_DIR / "x" / "usr" / "share" / "mma"
    if home.is_dir():
        return home
    MMA_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "mma"], cwd=MMA_DIR, check=True)
    deb = max(glob.glob(str(MMA_DIR / "mma_*.deb")))
    subprocess.run(["dpkg-deb", "-x", deb, str(MMA_DIR / "x")], check=True)
    return home


def _mma(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MMA_HOME=str(home))
    script = home.parents[1] / "bin" / "mma"
    return subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True, check=False)


def groove_names(home: Path) -> list[str]:
    """Every groove defined in MMA's standard library, in file order."""
    names = []
    for path in sorted((home / "lib" / "stdlib").glob("*.mma")):
        for line in path.read_text(errors="replace").splitlines():
            m = re.match(r"\s*DefGroove\s+(\S+)", line, re.IGNORECASE)
            if m:
                names.append(m.group(1))
    return list(dict.fromkeys(names))


def render(out_dir: Path | None = None, workers: int = 2) -> Path:
    """MIDI files of every groove (16 bars each) in ``out_dir``; returns it."""
    home = fetch_mma()
    out_dir = out_dir or MMA_DIR / "midi"
    out_dir.mkdir(parents=True, exist_ok=True)
    if not (home / "lib" / "stdlib" / ".mmaDB").exists():
        _mma(home, "-G")
    songs = MMA_DIR / "songs"
    songs.mkdir(exist_ok=True)

    def one(item: tuple[int, str]) -> bool:
        i, name = item
        target = out_dir / f"{name}.mid"
        if target.exists():
            return True
        chords = PROGRESSIONS[i % len(PROGRESSIONS)]
        lines = ["Tempo 120", f"Groove {name}"] + [f"{bar + 1} {chords[bar % len(chords)]}" for bar in range(BARS)]
        song = songs / f"{name}.mma"
        song.write_text("\n".join(lines) + "\n")
        result = _mma(home, "-w", str(song), "-f", str(target))
        return result.returncode == 0 and target.exists()

    names = groove_names(home)
    with ThreadPoolExecutor(workers) as pool:
        ok = sum(pool.map(one, enumerate(names)))
    print(f"MMA: {ok} of {len(names)} grooves rendered into {out_dir}")
    return out_dir


if __name__ == "__main__":
    render()
