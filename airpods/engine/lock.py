"""One airpods at a time changes state for a given Podman: an exclusive file lock."""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_path(podman_url: str) -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/airpods-{os.getuid()}"
    digest = hashlib.sha256(podman_url.encode()).hexdigest()[:12]
    return Path(base) / "airpods" / f"state-{digest}.lock"


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
