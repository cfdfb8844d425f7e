"""Moving bytes: stream one hub file into `<name>.partial` beside the final file, resumably.

huggingface_hub 2.4's `hf_hub_download` writes a new process-unique temp file on every run and so
cannot resume across processes; the bytes are streamed here with httpx and `Range` instead.

A partial file is never a model: it does not end in `.gguf`, so nothing lists or serves it. It
becomes the model only once its size and sha256 match the hub's (the LFS ETag is the sha256),
by an atomic rename. A rerun after Ctrl-C, `kill -9` or a dropped connection asks only for the
missing bytes (`Range: bytes=N-`, guarded by `If-Range` so a file changed upstream restarts
from zero instead of being spliced). 5xx answers and dropped connections are retried with
tenacity, each retry resuming where the last one stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Protocol

from airpods.errors import AirpodsError, BadAnswer, RetryableStatus, UsageError
from airpods.hub.hubhttp import origin
from airpods.hub.refs import SPLIT_RE, RemoteFile
from airpods.hub.retry import describe_error, is_transient, retrying
from airpods.models.store import (
    DISK_FULL,
    GGUF_MAGIC,
    PARTIAL_SUFFIX,
    check_name,
    check_space,
    disk_full,
    fsync_dir,
)

ETAG_XATTR = "user.airpods.etag"


class Progress(Protocol):
    def begin(self, name: str, total: int, done: int) -> None: ...

    def advance(self, n: int) -> None: ...

    def note(self, text: str) -> None: ...

    def end(self) -> None: ...


class NoProgress:
    def begin(self, name: str, total: int, done: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def end(self) -> None:
        pass


def dest_names(files: list[RemoteFile], name: str | None) -> list[str]:
    """The file names in the volume: the hub's file names, or `--name` (split parts renamed
    alike, so llama.cpp still finds part 2 from part 1)."""
    base = [f.path.rsplit("/", 1)[-1] for f in files]
    if name is None:
        return [check_name(b) for b in base]
    check_name(name)
    if len(files) == 1:
        return [name]
    match = SPLIT_RE.match(name)
    prefix = match.group("prefix") if match else name.removesuffix(".gguf")
    return [check_name(f"{prefix}-{i:05d}-of-{len(files):05d}.gguf")
            for i in range(1, len(files) + 1)]


def new_hasher(remote: RemoteFile) -> Any:
    """The hash the ETag is: sha256 for LFS files, else git's blob sha1 ("blob SIZE\\0" + data)."""
    if re.fullmatch(r"[0-9a-f]{64}", remote.etag):
        return hashlib.sha256()
    hasher = hashlib.sha1()
    hasher.update(f"blob {remote.size}\0".encode())
    return hasher


def _hash_prefix(fd: int, n: int, hasher: Any) -> None:
    pos = 0
    while pos < n:
        chunk = os.pread(fd, min(8 << 20, n - pos), pos)
        if not chunk:
            raise AirpodsError("the partial download shrank while it was read")
        hasher.update(chunk)
        pos += len(chunk)


def _open_partial(path: Path) -> int:
    """`path` opened for writing, created if missing; refused unless it is a regular file of
    its own: a link planted there would have the pull write (and truncate) its target, and a
    FIFO would hang it."""
    import errno
    import stat

    not_regular = AirpodsError(f"{path} is not a regular file (a link, FIFO or directory)",
                               hint="remove it, then pull again")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
                     | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise not_regular from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise not_regular
    os.set_blocking(fd, True)
    return fd


class _Partial:
    """`<dest>.partial`, locked against a second pull of the same file."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.closed = False
        self.tries = 0  # GETs made (hub/retry.py decides how many)
        self.path = dest.with_name(dest.name + PARTIAL_SUFFIX)
        self.fd = _open_partial(self.path)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise AirpodsError(f"another pull is writing {dest.name}",
                               hint="wait for it to finish") from None

    @property
    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def seek_end(self) -> int:
        return os.lseek(self.fd, 0, os.SEEK_END)

    def origin(self) -> str | None:
        """The ETag the bytes already here were downloaded for (an xattr; None if unknown)."""
        try:
            return os.getxattr(self.fd, ETAG_XATTR).decode()
        except OSError:
            return None

    def mark(self, etag: str) -> bool:
        """Record which ETag the bytes are for; False where the file system has no xattrs."""
        try:
            os.setxattr(self.fd, ETAG_XATTR, etag.encode())
            return True
        except OSError:
            return False

    def restart(self) -> None:
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def finish(self) -> None:
        os.fsync(self.fd)
        os.replace(self.path, self.dest)
        fsync_dir(self.dest.parent)
        self.close()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)


def _stream(client: Any, remote: RemoteFile, part: _Partial, hasher: Any,
            progress: Progress, headers: dict[str, str]) -> Any:
    """One GET from where the partial ends; returns the hasher (a new one after a restart)."""
    have = part.seek_end()
    req = dict(headers)
    if have:
        req["Range"] = f"bytes={have}-"
        req["If-Range"] = f'"{remote.etag}"'
    with client.stream("GET", remote.url, headers=req) as resp:
        if resp.status_code == 416 and have == remote.size:
            return hasher
        if resp.status_code >= 500 or resp.status_code == 429:
            raise RetryableStatus(resp.status_code)
        if resp.status_code not in (200, 206):
            raise AirpodsError(f"{remote.repo}/{remote.path}: the download answered HTTP "
                               f"{resp.status_code}", hint="check HF_TOKEN and the reference")
        if resp.status_code == 206:
            start = _content_range_start(resp.headers.get("Content-Range", ""))
            if start != have:
                raise AirpodsError(f"{remote.path}: the server sent bytes from {start}, "
                                   f"not from {have}")
        elif have:  # a full answer: the file changed, or the server ignores Range
            progress.note(f"{remote.path}: the server sent the whole file; starting over")
            part.restart()
            hasher = new_hasher(remote)
            progress.begin(part.dest.name, remote.size, 0)
        first = part.size == 0
        background = _BackgroundHash(hasher, part.fd)
        try:
            for chunk in resp.iter_raw():
                if first:
                    if chunk[:4] != GGUF_MAGIC[:len(chunk[:4])]:
                        raise _NotGGUF()
                    first = False
                part.write(chunk)
                background.update(chunk)
                progress.advance(len(chunk))
        finally:
            # Whatever happens, the hash covers exactly the bytes written, for a resume.
            hasher = background.finish()
    return hasher


class _BackgroundHash:
    """sha256 on a second thread, fed 1 MiB at a time: hashlib releases the GIL while it
    hashes, so hashing overlaps receiving and writing (per 64 KiB chunk, the hand-off cost
    more than it saved). What is written is flushed to disk by a third (`_Flusher`)."""

    BATCH = 1 << 20

    def __init__(self, hasher: Any, fd: int) -> None:
        import queue
        import threading

        self.hasher = hasher
        self.queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.pending: list[bytes] = []
        self.size = 0
        self.flusher = _Flusher(fd)
        self.thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (data := self.queue.get()) is not None:
            self.hasher.update(data)

    def update(self, chunk: bytes) -> None:
        self.flusher.wrote(len(chunk))
        if not self.pending and len(chunk) >= self.BATCH:
            self.queue.put(chunk)  # a whole read already: no copy
            return
        self.pending.append(chunk)
        self.size += len(chunk)
        if self.size >= self.BATCH:
            self.queue.put(b"".join(self.pending))
            self.pending, self.size = [], 0

    def finish(self) -> Any:
        if self.pending:
            self.queue.put(b"".join(self.pending))
            self.pending, self.size = [], 0
        self.queue.put(None)
        self.thread.join()
        self.flusher.stop()
        return self.hasher


class _Flusher:
    """fdatasync on its own thread every SYNC_EVERY bytes written, so the fsync before the
    rename waits for the tail only, not the whole file. On its own, not on the hash thread:
    a sync that waits for a slow disk then holds back neither the hash nor the writes (the
    hash used to finish ~90 ms after the last byte of a 315 MB pull)."""

    SYNC_EVERY = 16 << 20

    def __init__(self, fd: int) -> None:
        import threading

        self.fd = fd
        self.unsynced = 0
        self.stopping = False
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fdatasync", daemon=True)
        self.thread.start()

    def wrote(self, n: int) -> None:
        self.unsynced += n
        if self.unsynced >= self.SYNC_EVERY:
            self.unsynced = 0
            self.wake.set()

    def _run(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            if self.stopping:
                return
            with contextlib.suppress(OSError):  # only an early start: finish() fsyncs
                os.fdatasync(self.fd)

    def stop(self) -> None:
        self.stopping = True
        self.wake.set()
        self.thread.join()


class _NotGGUF(Exception):
    pass


def _content_range_start(value: str) -> int | None:
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", value.strip())
    return int(match.group(1)) if match else None


def download(client: Any, remote: RemoteFile, dest: Path, progress: Progress,
             token: str | None) -> int:
    """Stream `remote` into `dest` through `<dest>.partial`, resuming, verified, atomic.

    Returns the bytes this call moved. The partial is kept when the download is interrupted
    (to resume) and deleted when it can never become the file (checksum, not a GGUF, disk full).
    """
    part = _Partial(dest)
    try:
        return _download(client, remote, part, progress, token)
    except _NotGGUF:
        part.discard()
        raise UsageError(f"{remote.repo}/{remote.path} is not a GGUF file (no GGUF magic); "
                         "nothing was kept", hint="llama-server loads GGUF models") from None
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        part.discard()
        raise disk_full(dest.name, dest.parent) from None
    except BadAnswer as exc:
        raise AirpodsError(f"{remote.repo}/{remote.path} from {origin(remote.url)}: {exc}",
                           hint="check HF_ENDPOINT points at a hub or mirror") from None
    except Exception as exc:
        if is_transient(exc):
            raise AirpodsError(
                f"{remote.repo}/{remote.path} from {origin(remote.url)}: {describe_error(exc)}, "
                f"{part.tries} tries without progress; {part.size} bytes kept",
                hint="run the same pull again to resume",
            ) from None
        raise
    finally:
        part.close()  # Ctrl-C included: the partial stays for the next run


def _download(client: Any, remote: RemoteFile, part: _Partial, progress: Progress,
              token: str | None) -> int:
    have = part.size
    origin = part.origin()
    # Bytes downloaded for another version of the file (or of unknown origin where the file
    # system keeps xattrs) are useless: start over. Without xattrs, the final check guards.
    if have > remote.size or (origin != remote.etag and part.mark(remote.etag) and have):
        part.restart()
        have = 0
    check_space(part.dest.parent, remote.size - have, part.dest.name)
    hasher = new_hasher(remote)
    _hash_prefix(part.fd, have, hasher)
    progress.begin(part.dest.name, remote.size, have)
    headers = {"Accept-Encoding": "identity"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    state = {"hasher": hasher, "moved": 0}

    def attempt() -> None:
        part.tries += 1
        before = part.size
        try:
            state["hasher"] = _stream(client, remote, part, state["hasher"], progress, headers)
        finally:
            state["moved"] += max(0, part.size - before)
        if part.size < remote.size:  # the body ended early without a transport error
            raise RetryableStatus(0)

    def on_retry(exc: BaseException) -> None:
        if part.size:  # before the first byte, the one line the pull ends with says it all
            progress.note(f"{part.dest.name}: {describe_error(exc)}; resuming at {part.size} bytes")

    retry = retrying(lambda: part.size, on_retry=on_retry)
    retry(attempt)
    progress.end()
    got = state["hasher"].hexdigest()
    if part.size != remote.size or got != remote.etag:
        size = part.size
        part.discard()
        raise AirpodsError(
            f"{remote.repo}/{remote.path}: checksum mismatch (expected {remote.etag[:16]}..., "
            f"got {got[:16]}... over {size} bytes); the partial download was deleted",
            hint="run the pull again; if it repeats, the mirror serves a damaged file")
    part.finish()
    return state["moved"]
