"""Making a rename durable: the one fsync of a directory (config edits, model files)."""

from __future__ import annotations

import os
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
