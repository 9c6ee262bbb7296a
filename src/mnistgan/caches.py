"""What mnistgan keeps in its cache folder, and a safe way to clear it (``mnistgan cache``).

Three things are cached, under ``files.cache_root()`` (``$XDG_CACHE_HOME/mnistgan``): the
evaluation classifier of each data set (``classifier-v<N>/<fingerprint>/``, trained in about two
minutes on MNIST), each converted folder of images (``folders/<key>.npz``, about as large as
the images at 28x28) and the k-means clusters of each training set a self-conditioned run
started on (``clusters/<key>.npy``, 4 bytes an image; about 20 s to find on MNIST). Nothing is
pruned on its own: a classifier removed behind the user's back
costs minutes at the next ``evaluate``, and a cache entry is only ever made again, never lost.
So the user sees the entries, their sizes and when each was last used, and clears all of them or
those unused for some days. Everything here may go: it is all made again when needed.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from mnistgan.errors import UsageError, arg
from mnistgan.files import cache_root

DAY = 86_400  # seconds
_CLASSIFIERS = re.compile(r"classifier-v(\d+)")
_KINDS = {"folders": "folder", "clusters": "clusters"}  # folders of one entry per file


@dataclass(frozen=True)
class CacheEntry:
    """One thing in the cache: what it is, where, how large, and when it was last used."""

    kind: str  # "classifier", "folder", "clusters", or "other" (anything else in the cache folder)
    path: Path
    bytes: int
    last_used: float  # seconds since the epoch (the entry's modification time, touched on each use)


def touch(path: Path) -> None:
    """Mark a cache entry as used now (its modification time), for ``older_than``."""
    try:
        path.touch(exist_ok=True)
    except OSError:
        pass  # a read-only cache is still a cache


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def entries(root: Path | None = None) -> list[CacheEntry]:
    """Everything in the cache folder, largest first."""
    root = cache_root() if root is None else root
    if not root.is_dir():
        return []
    found = []
    for top in sorted(root.iterdir()):
        if _CLASSIFIERS.fullmatch(top.name) and top.is_dir():
            for entry in sorted(top.iterdir()):  # one folder per data set (a leftover temporary one too)
                found.append(CacheEntry("classifier", entry, _size(entry), entry.stat().st_mtime))
        elif top.name in _KINDS and top.is_dir():
            for entry in sorted(top.iterdir()):
                found.append(CacheEntry(_KINDS[top.name], entry, _size(entry), entry.stat().st_mtime))
        else:
            found.append(CacheEntry("other", top, _size(top), top.stat().st_mtime))
    return sorted(found, key=lambda e: (-e.bytes, str(e.path)))


def clear(older_than_days: float | None = None, root: Path | None = None, now: float | None = None) -> list[CacheEntry]:
    """Remove the cache's entries (those not used for ``older_than_days`` days, or all);
    returns what was removed. Only what is below the cache folder is touched."""
    if older_than_days is not None and not older_than_days >= 0:  # nan too
        raise UsageError(f"{arg('older_than')} must be 0 or a positive number of days, not {older_than_days!r}")
    now = time.time() if now is None else now
    removed = []
    for entry in entries(root):
        if older_than_days is not None and now - entry.last_used < older_than_days * DAY:
            continue
        if entry.path.is_dir() and not entry.path.is_symlink():
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            entry.path.unlink(missing_ok=True)
        removed.append(entry)
    return removed
