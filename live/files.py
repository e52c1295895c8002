"""Every file the project writes goes through here: checked before the work, written atomically.

``atomic_path(path)`` gives a temporary name in the target's own folder, created exclusively
(``mkstemp``: never a predictable ``<name>.tmp`` that a planted symlink could redirect), for
writers that take a path (numpy, mido, TensorFlow's record writer); when the block ends the file
is flushed to disk and renamed over ``path`` in one step; on any failure it is removed and
``path`` is left as it was. ``check_writable`` refuses a bad destination before work starts.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from live.errors import OutputPathError

__all__ = ["atomic_path", "atomic_write", "check_writable", "same_file"]


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name one existing file."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_writable(path: str | os.PathLike, option: str = "output") -> None:
    """Raise OutputPathError (one line, naming ``option``) unless a file can be written at ``path``:
    not a folder, its folder exists and is writable."""
    path = os.fspath(path)
    if not path:
        raise OutputPathError(f"{option}: an empty file name")
    if os.path.isdir(path):
        raise OutputPathError(f"{option}: {path} is a folder, not a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        what = "is a file, not a folder" if os.path.exists(folder) else "does not exist"
        raise OutputPathError(f"{option}: cannot write {path}: folder {folder} {what}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option}: cannot write {path}: folder {folder} is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise OutputPathError(f"{option}: cannot write {path}: the file is read-only")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """A temporary path beside ``path`` to write; renamed over ``path`` when the block ends.

    The file is created exclusively (mode as the umask allows), synced to disk before the
    rename, and removed when the block raises (``path`` is then untouched). OSError from the
    file system becomes OutputPathError naming ``path``.
    """
    path = os.path.realpath(os.fspath(path))  # a symlinked file is written where it points
    folder = os.path.dirname(path)
    try:
        mode = os.stat(path).st_mode & 0o7777  # an existing file keeps its mode
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".part")
    except OSError as err:
        raise OutputPathError(f"cannot write {path}: {err.strerror or err}") from err
    os.close(fd)
    try:
        os.chmod(tmp, mode)
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, OutputPathError):
            raise OutputPathError(f"cannot write {path}: {err.strerror or err}") from err
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (text is UTF-8) to ``path`` atomically (see ``atomic_path``)."""
    blob = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(blob)
