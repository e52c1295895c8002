"""TFRecord outputs as one file or as shards: what both runners of ``convert`` and ``dataset`` write.

The local runner writes one file, ``NAME``; the Beam runner (``training.beam``) writes shards
``NAME-00000-of-00002``, ``NAME-00001-of-00002``, ... (the runner chooses how many).
``record_files(NAME)`` finds either, so readers take the plain name in both cases.
Before a runner writes ``NAME`` it removes what the other one left there (``remove_shards``,
``remove_records``), so one name never holds two sets at once.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re

from training.errors import DataError

SHARD_GLOB = "-?????-of-?????"
"""What Beam's default shard name template adds to an output name."""

_SHARD = re.compile(r"-(\d{5})-of-(\d{5})")


class RecordFilesError(DataError):
    """A record output name with no file and no shards, or with shards that do not make one set."""


def shard_files(path: str | os.PathLike) -> list[str]:
    """The files named ``path-NNNNN-of-MMMMM`` (digits only), sorted; whatever sets they belong to."""
    path = os.fspath(path)
    found = glob.glob(glob.escape(path) + SHARD_GLOB)
    return sorted(f for f in found if _SHARD.fullmatch(f[len(path):]))


def record_files(path: str | os.PathLike) -> list[str]:
    """The files that hold the records written under ``path``: ``[path]`` when that file exists,
    else its shards ``path-?????-of-?????``, sorted.

    Raises RecordFilesError when there is neither, or when the shards are not one complete set
    (shards of two runs with different counts, or some missing).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise RecordFilesError(f"{path} is a folder, not a TFRecord file")
    if os.path.exists(path):
        return [path]
    shards = shard_files(path)
    if not shards:
        raise RecordFilesError(f"no such file: {path} (nor shards {os.path.basename(path)}{SHARD_GLOB})")
    counts = sorted({int(_SHARD.fullmatch(f[len(path):]).group(2)) for f in shards})
    if len(counts) > 1:
        sets = ", ".join(f"of-{n:05d}" for n in counts)
        raise RecordFilesError(
            f"{path}: shards of different runs ({sets}); remove the stale ones, or write {path} again"
        )
    if len(shards) != counts[0]:
        raise RecordFilesError(f"{path}: {len(shards)} of its {counts[0]} shards are there; write {path} again")
    return shards


def describe_records(path: str | os.PathLike) -> str:
    """``path``, or ``path-?????-of-NNNNN (N shards)`` when shards hold its records (for a report line)."""
    files = record_files(path)
    if files == [os.fspath(path)]:
        return files[0]
    return f"{os.fspath(path)}-?????-of-{len(files):05d} ({len(files)} shard{'s' if len(files) > 1 else ''})"


def remove_shards(path: str | os.PathLike) -> None:
    """Remove every shard ``path-?????-of-?????`` (what the Beam runner wrote under ``path``)."""
    for name in shard_files(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(name)


def remove_records(path: str | os.PathLike) -> None:
    """Remove the file ``path`` (what the local runner wrote) and every shard of ``path``."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
    remove_shards(path)
