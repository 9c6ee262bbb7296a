"""One writer per run folder: an OS lock held for as long as a process writes the run.

The lock is the operating system's (``flock`` on POSIX, ``msvcrt.locking`` on Windows) on the
empty file ``.mnistgan.lock`` in the run folder, so it dies with its process: ``kill -9`` leaves
nothing stale to clean up. The file is never written, so taking the lock changes nothing in the
run; the holder's process id, for the refusal, comes from the kernel's lock table where there is
one (Linux's /proc/locks). Commands that only read a run (sample, evaluate, animate,
interpolate) never lock.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mnistgan.errors import RunError, arg
from mnistgan.runs import RunLayout


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(fd: int) -> int | None:
    """The process holding a flock on the file open as ``fd``, from /proc/locks (Linux only)."""
    st = os.fstat(fd)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            for line in fh:
                fields = line.split()  # 1: FLOCK  ADVISORY  WRITE 12345 08:01:1234 0 EOF
                if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == inode and fields[4].isdigit():
                    return int(fields[4])
    except OSError:
        pass
    return None


class RunLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process ends)."""

    def __init__(self, root: Path) -> None:
        self.path = RunLayout(Path(root)).lock
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise RunError naming the process that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        self._take(fd)
        self._fd = fd
        return self

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _take(self, fd: int) -> None:
        if _try_lock(fd):
            return
        holder = _holder(fd)
        os.close(fd)
        who = f"process {holder}" if holder else "another process"
        raise RunError(f"{self.path.parent} is being written by {who} (mnistgan train); wait for it to "
                       f"finish or stop it, or give another {arg('out')}")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
