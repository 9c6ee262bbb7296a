"""Crash-safe file writing: everything lands under a temporary name first, then is renamed.

``os.replace`` is atomic on POSIX and Windows within one folder, so a reader sees either the old
file or the complete new one, never a half-written file, even after ``kill -9``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mnistgan.errors import UsageError

TEMP_MARK = ".tmp-"


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    The temporary name keeps the suffix so writers that pick a format from it (imageio, PIL,
    numpy) still do. On any error the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}{TEMP_MARK}", suffix=target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # flush to disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_umask() -> int:
    """The process's umask, read once when mnistgan is imported: where /proc does not say it,
    the only portable way to read it is to set it and set it back, which must not happen while
    other threads (TensorFlow's) may be creating files."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _umask() -> int:
    return _UMASK


def write_text_atomic(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_output_file(path: Path) -> Path:
    """Refuse an output path whose folder is missing or unwritable, before any work is done."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"output path {path} is a folder; give a file name")
    if not parent.is_dir():
        raise UsageError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"output folder {parent} is not writable")
    return path


def cache_root() -> Path:
    """Where mnistgan caches what it computes once (the evaluation classifiers, converted image
    folders): ``$XDG_CACHE_HOME/mnistgan``, by default ``~/.cache/mnistgan``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mnistgan"
