"""One airpods at a time changes state for a given Podman: an exclusive file lock."""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from airpods.errors import AirpodsError


def runtime_dir(environ: Mapping[str, str] | None = None) -> Path:
    """airpods' private runtime directory (locks, the transient Podman socket), 0700.

    Under $XDG_RUNTIME_DIR when set; else under /tmp, where another local user could have made
    the directory first: a /tmp one that is not ours alone is refused, never used.
    """
    environ = os.environ if environ is None else environ
    xdg = environ.get("XDG_RUNTIME_DIR")
    base = Path(xdg) if xdg else Path(f"/tmp/airpods-{os.getuid()}")
    path = base / "airpods"
    for directory in ((path,) if xdg else (base, path)):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.lstat()
        # Ours and writable by no one else: nothing can have been planted in it; tighten it.
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022:
            if info.st_mode & 0o077:
                directory.chmod(0o700)
            continue
        raise AirpodsError(
            f"refusing to use {directory}: another user owns it or can write to it",
            hint="remove it, or set XDG_RUNTIME_DIR to a private directory",
        )
    return path


def lock_path(podman_url: str) -> Path:
    digest = hashlib.sha256(podman_url.encode()).hexdigest()[:12]
    return runtime_dir() / f"state-{digest}.lock"


@contextmanager
def state_lock(path: Path, on_wait: Callable[[], None] = lambda: None) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
