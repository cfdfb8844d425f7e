"""Files airpods shares with others: the one fsync of a directory (config edits, model files), and
the one safe open of a file a container writes (usage records, the peers' state)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """fsync `path`, a directory, so that a rename or link inside it survives a crash.

    Raises OSError where the filesystem refuses; callers for which durability is best effort
    suppress it.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_regular(path: Path) -> tuple[int | None, str | None]:
    """(fd, None) for a regular file opened without following a symlink or blocking on a FIFO;
    (None, why not) otherwise."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
            return None, f"{path}: a symlink, not read"
        return None, f"{path}: cannot read ({exc.strerror})"
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None, f"{path}: not a regular file, not read"
    return fd, None
