"""One board per state folder: an OS lock that its supervisor holds for its whole life.

The supervisor takes an exclusive flock(2) on STATE_DIR/supervisor.lock before it touches
anything else in the folder and never lets go; the kernel releases it when the process ends,
however it ends (stop, crash, SIGKILL). A second supervisor on the same folder cannot get it and
exits. The holder writes its pid into the file, so `sim status` and `sim stop` can name and
reach a board that is alive but no longer answering. A run.json left behind proves nothing; the
lock does.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

ACQUIRE_WAIT_S = 1.0  # how long a starting supervisor retries: a probe holds the lock for microseconds


class BoardBusy(Exception):
    """The folder's lock is held: another supervisor runs this board."""

    def __init__(self, pid: int):
        super().__init__(pid)
        self.pid = pid


def acquire(path: Path) -> int:
    """Take the board's lock for this process (an fd to keep open for life); BoardBusy if held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    deadline = time.monotonic() + ACQUIRE_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                pid = _pid_in(fd)
                os.close(fd)
                raise BoardBusy(pid) from None
            time.sleep(0.02)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def holder(path: Path) -> int | None:
    """The pid of the supervisor holding the lock (0 while it has not written it yet), or None
    when no process holds it. Probes with a shared lock held for an instant, never waits."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_in(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _pid_in(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0)
    except (OSError, ValueError):
        return 0
