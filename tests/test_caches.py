"""``mnistgan cache``: what is cached, how large, when last used; cleared only when asked (issue 43)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import snapshot

import mnistgan
from mnistgan.cli import app

DAY = 86_400


def _cache() -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "mnistgan"


def _entry(path: Path, size: int, days_ago: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix:
        path.write_bytes(b"x" * size)
    else:
        path.mkdir()
        (path / "weights").write_bytes(b"x" * size)
    stamp = time.time() - days_ago * DAY
    os.utime(path, (stamp, stamp))
    return path


def test_the_cache_is_listed_and_cleared_only_as_asked(runner, tmp_path):
    fresh = _entry(_cache() / "classifier-v1" / "aaaa", 3_000_000, 1)
    stale = _entry(_cache() / "folders" / "bbbb.npz", 1_000_000, 40)
    older = _entry(_cache() / "classifier-v0" / "cccc", 2_000_000, 90)  # of an older mnistgan
    outside = tmp_path / "keep.txt"
    outside.write_text("not the cache's")

    listed = runner.invoke(app, ["cache"])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["classifier", "classifier", "folder"]  # largest first
    assert lines[0].endswith(str(fresh)) and "3.0 MB" in lines[0]
    assert "3 entries, 6.0 MB, in " in listed.stderr

    assert runner.invoke(app, ["cache", "--older-than", "30"]).exit_code == 2  # goes with --clear
    cleared = runner.invoke(app, ["cache", "--clear", "--older-than", "30"])
    assert cleared.exit_code == 0 and "2 entries, 3.0 MB, removed" in cleared.stderr, cleared.output
    assert fresh.exists() and not stale.exists() and not older.exists()
    assert runner.invoke(app, ["cache", "--clear"]).exit_code == 0
    assert not fresh.exists() and outside.read_text() == "not the cache's"
    assert runner.invoke(app, ["cache"]).stderr.startswith("0 entries")


def test_reading_a_cached_folder_marks_it_used(runner, tmp_path):
    from test_own_images import write_folder

    folder = write_folder(tmp_path / "pets")
    mnistgan.load_mnist(folder)
    [entry] = (_cache() / "folders").glob("*.npz")
    os.utime(entry, (0, 0))
    before = snapshot(folder)
    mnistgan.load_mnist(folder)
    assert time.time() - entry.stat().st_mtime < DAY and snapshot(folder) == before
    assert runner.invoke(app, ["cache", "--clear", "--older-than", "1"]).stderr.startswith("0 entries")
    assert entry.exists()  # used today: kept
