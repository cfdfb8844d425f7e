"""Pull GGUF files from Hugging Face (or a mirror: HF_ENDPOINT) into a model volume, resumably.

huggingface_hub answers the questions (which files a repo has, a file's size, sha256 and commit,
its URL, the token and endpoint in effect); the bytes are streamed here with httpx and `Range`
into `<name>.partial` beside the final file, because huggingface_hub 2.4's `hf_hub_download`
writes a new process-unique temp file on every run and so cannot resume across processes.

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from airpods.errors import AirpodsError, UsageError
from airpods.models.store import (
    DISK_FULL,
    GGUF_MAGIC,
    PARTIAL_SUFFIX,
    check_name,
    check_space,
    disk_full,
    fsync_dir,
    model_path,
)

DEFAULT_ENDPOINT = "https://huggingface.co"
CHUNK = 1 << 20
RETRIES = 5  # attempts in a row that make no progress before giving up
RETRY_WAIT_S = 0.5  # first wait; doubles up to RETRY_MAX_WAIT_S
RETRY_MAX_WAIT_S = 8.0
CONNECT_TIMEOUT_S = 10.0
ETAG_XATTR = "user.airpods.etag"
READ_TIMEOUT_S = 60.0

_SPLIT_RE = re.compile(r"^(?P<prefix>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")
# A quant tag as it appears in GGUF file names: `-Q4_K_M.gguf`, `.q8_0.gguf`, `-IQ2_XS-00001-`.
_QUANT_RE = re.compile(
    r"(?:^|[-_./])((?:I?Q\d|TQ\d)(?:_[A-Z0-9]+)*|MXFP4(?:_MOE)?|BF16|FP?16|FP?32)(?=[-.])",
    re.IGNORECASE,
)
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
REF_HELP = "use ORG/REPO/FILE.gguf, hf://ORG/REPO/FILE.gguf or ORG/REPO:QUANT (e.g. :Q4_K_M)"


@dataclass(frozen=True)
class Ref:
    repo: str
    path: str | None = None  # a file in the repo
    quant: str | None = None  # or a quant tag to pick one
    revision: str = "main"

    def __str__(self) -> str:
        return f"{self.repo}:{self.quant}" if self.quant else f"{self.repo}/{self.path}"


@dataclass(frozen=True)
class RemoteFile:
    repo: str
    path: str
    size: int
    etag: str  # the sha256 for LFS files, a git blob sha1 otherwise
    commit: str
    url: str  # pinned to `commit`


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


# --- references -------------------------------------------------------------------------------


def parse_ref(text: str) -> Ref:
    """`ORG/REPO/PATH.gguf`, `hf://ORG/REPO/PATH.gguf` or `[hf://]ORG/REPO:QUANT`."""
    raw = text.strip()
    body = raw[len("hf://"):] if raw.startswith("hf://") else raw
    if ":" in body:
        repo, _, quant = body.rpartition(":")
        if _REPO_RE.fullmatch(repo) and re.fullmatch(r"[A-Za-z0-9_]+", quant):
            return Ref(repo=repo, quant=quant)
        raise UsageError(f"bad model reference {text!r}", hint=REF_HELP)
    parts = body.split("/")
    if len(parts) >= 3 and _REPO_RE.fullmatch("/".join(parts[:2])):
        path = "/".join(parts[2:])
        if any(p in ("", ".", "..") for p in parts[2:]):
            raise UsageError(f"bad model reference {text!r}: the file path is not clean",
                             hint=REF_HELP)
        if not path.endswith(".gguf"):
            raise UsageError(f"{text!r} does not name a .gguf file",
                             hint="llama-server loads GGUF models; " + REF_HELP)
        return Ref(repo="/".join(parts[:2]), path=path)
    raise UsageError(f"bad model reference {text!r}", hint=REF_HELP)


def quant_of(filename: str) -> str | None:
    """The quant tag in a GGUF file name (upper case), or None."""
    found = _QUANT_RE.findall(filename.rsplit("/", 1)[-1])
    return found[-1].upper() if found else None


def split_parts(path: str) -> list[str]:
    """All part names of a split GGUF (`-00001-of-00003.gguf`), or just `path`."""
    match = _SPLIT_RE.match(path)
    if not match:
        return [path]
    count = int(match.group("count"))
    return [f"{match.group('prefix')}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]


def pick_quant(ref: Ref, files: list[str]) -> str:
    """The one GGUF file (first part of a split one) whose name carries `ref.quant`."""
    ggufs = [f for f in files if f.endswith(".gguf")]
    models = {split_parts(f)[0] for f in ggufs}
    wanted = (ref.quant or "").upper()
    matches = sorted(f for f in models if quant_of(f) == wanted)
    if len(matches) == 1:
        return matches[0]
    available = sorted({q for f in models if (q := quant_of(f))})
    listing = ", ".join(available) if available else "none"
    if not ggufs:
        raise UsageError(f"{ref.repo} has no .gguf files", hint="pick a GGUF repository")
    if not matches:
        raise UsageError(f"no {ref.quant} file in {ref.repo}; quants available: {listing}",
                         hint=f"e.g. airpods models pull {ref.repo}:{available[0]}"
                         if available else REF_HELP)
    raise UsageError(
        f"{len(matches)} files in {ref.repo} carry {ref.quant}: {', '.join(matches)}; "
        f"quants available: {listing}",
        hint=f"name the file: airpods models pull {ref.repo}/{matches[0]}",
    )


# --- talking to the hub -----------------------------------------------------------------------


def endpoint_from_env(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return (env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def token_from_env(environ: dict[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN") or None


def _hub_error(exc: BaseException, what: str, endpoint: str) -> AirpodsError:
    """One line for whatever huggingface_hub or httpx raised."""
    from huggingface_hub import errors as hf

    name = type(exc).__name__
    if isinstance(exc, hf.RepositoryNotFoundError):
        return UsageError(f"{what}: no such repository on {endpoint} (or it is private)",
                          hint="check the name; set HF_TOKEN for a private or gated repo")
    if isinstance(exc, (hf.EntryNotFoundError, hf.RemoteEntryNotFoundError)):
        return UsageError(f"{what}: no such file in the repository",
                          hint="`airpods models pull ORG/REPO:QUANT` lists the quants there")
    if isinstance(exc, hf.RevisionNotFoundError):
        return UsageError(f"{what}: no such revision")
    if isinstance(exc, hf.GatedRepoError):
        return UsageError(f"{what}: the repository is gated",
                          hint="accept its terms on the hub and set HF_TOKEN")
    if isinstance(exc, hf.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        return AirpodsError(f"{what}: the hub answered HTTP {status}",
                            hint="try again later, or check HF_ENDPOINT")
    if "Offline" in name:
        return AirpodsError(f"{what}: HF_HUB_OFFLINE is set", hint="unset it to download")
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    return AirpodsError(f"{what}: cannot reach {endpoint} ({detail})",
                        hint="check the network, or HF_ENDPOINT for a mirror")


def _transient(exc: BaseException) -> bool:
    """Worth retrying: connection trouble, timeouts, 5xx and 429 answers."""
    import httpx

    if isinstance(exc, _RetryableStatus):
        return True
    if isinstance(exc, (httpx.TransportError,)):
        return True
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and (status >= 500 or status == 429):
        return True
    # huggingface_hub's own HTTP client raises its own transport errors
    return type(exc).__name__ in ("ConnectError", "ReadError", "ReadTimeout", "ConnectTimeout",
                                  "RemoteProtocolError", "WriteError", "PoolTimeout")


class _RetryableStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class _NoProgressStop:
    """tenacity stop: give up after RETRIES attempts in a row that moved no byte."""

    def __init__(self, progress: Callable[[], int], attempts: int) -> None:
        self.progress, self.attempts = progress, attempts
        self.last, self.failures = progress(), 0

    def __call__(self, state: Any) -> bool:
        now = self.progress()
        self.failures = 0 if now > self.last else self.failures + 1
        self.last = now
        return self.failures >= self.attempts


def _retrying(progress: Callable[[], int] = lambda: 0, *, attempts: int = RETRIES,
              on_retry: Callable[[BaseException], None] = lambda e: None) -> Any:
    from tenacity import Retrying, retry_if_exception, wait_exponential

    def before_sleep(state: Any) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None:
            on_retry(exc)

    return Retrying(
        retry=retry_if_exception(_transient),
        wait=wait_exponential(multiplier=RETRY_WAIT_S, max=RETRY_MAX_WAIT_S),
        stop=_NoProgressStop(progress, attempts),
        before_sleep=before_sleep,
        reraise=True,
    )


class Hub:
    """huggingface_hub for the questions, with airpods' errors and retries."""

    def __init__(self, endpoint: str | None = None, token: str | None = None) -> None:
        self.endpoint = (endpoint or endpoint_from_env()).rstrip("/")
        if token is None:
            from huggingface_hub import get_token

            token = token_from_env() or get_token()  # HF_TOKEN, then `hf auth login`'s file
        self.token = token

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return _retrying(attempts=3)(fn)
        except AirpodsError:
            raise
        except Exception as exc:
            raise _hub_error(exc, what, self.endpoint) from None

    def list_files(self, ref: Ref) -> list[str]:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=self.endpoint, token=self.token or False)
        return self._call(str(ref), lambda: api.list_repo_files(ref.repo, revision=ref.revision))

    def file(self, repo: str, path: str, revision: str = "main") -> RemoteFile:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        url = hf_hub_url(repo, path, revision=revision, endpoint=self.endpoint)
        meta = self._call(f"{repo}/{path}", lambda: get_hf_file_metadata(
            url, token=self.token or False, endpoint=self.endpoint))
        if meta.size is None or not meta.etag or not meta.commit_hash:
            raise AirpodsError(f"{repo}/{path}: the hub did not send its size, ETag and commit",
                               hint="check HF_ENDPOINT points at a Hugging Face hub or mirror")
        pinned = hf_hub_url(repo, path, revision=meta.commit_hash, endpoint=self.endpoint)
        return RemoteFile(repo, path, int(meta.size), meta.etag, meta.commit_hash, pinned)

    def files_for(self, ref: Ref) -> list[RemoteFile]:
        """The files a reference means: one GGUF, or every part of a split one."""
        path = ref.path if ref.path is not None else pick_quant(ref, self.list_files(ref))
        first = self.file(ref.repo, path, ref.revision)
        rest = [self.file(ref.repo, p, first.commit) for p in split_parts(path)[1:]]
        return [first, *rest]


# --- moving bytes -----------------------------------------------------------------------------


def dest_names(files: list[RemoteFile], name: str | None) -> list[str]:
    """The file names in the volume: the hub's file names, or `--name` (split parts renamed
    alike, so llama.cpp still finds part 2 from part 1)."""
    base = [f.path.rsplit("/", 1)[-1] for f in files]
    if name is None:
        return [check_name(b) for b in base]
    check_name(name)
    if len(files) == 1:
        return [name]
    match = _SPLIT_RE.match(name)
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


class _Partial:
    """`<dest>.partial`, locked against a second pull of the same file."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.closed = False
        self.path = dest.with_name(dest.name + PARTIAL_SUFFIX)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
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
            raise _RetryableStatus(resp.status_code)
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
    more than it saved). The same thread flushes what is written to disk every SYNC_EVERY
    bytes, so the fsync before the rename waits for the tail only, not the whole file."""

    BATCH = 1 << 20
    SYNC_EVERY = 16 << 20

    def __init__(self, hasher: Any, fd: int) -> None:
        import queue
        import threading

        self.hasher = hasher
        self.fd = fd
        self.queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.pending: list[bytes] = []
        self.size = 0
        self.thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        unsynced = 0
        while (data := self.queue.get()) is not None:
            self.hasher.update(data)
            unsynced += len(data)
            if unsynced >= self.SYNC_EVERY:
                unsynced = 0
                with contextlib.suppress(OSError):  # only an early start: finish() fsyncs
                    os.fdatasync(self.fd)

    def update(self, chunk: bytes) -> None:
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
        return self.hasher


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
    except Exception as exc:
        if _transient(exc):
            raise AirpodsError(
                f"{remote.repo}/{remote.path}: {_describe(exc)}, {RETRIES} tries without "
                f"progress; {part.size} bytes kept", hint="run the same pull again to resume",
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
        before = part.size
        try:
            state["hasher"] = _stream(client, remote, part, state["hasher"], progress, headers)
        finally:
            state["moved"] += max(0, part.size - before)
        if part.size < remote.size:  # the body ended early without a transport error
            raise _RetryableStatus(0)

    retry = _retrying(lambda: part.size, on_retry=lambda e: progress.note(
        f"{part.dest.name}: {_describe(e)}; resuming at {part.size} bytes"))
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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _RetryableStatus):
        return "the connection ended early" if exc.status == 0 else f"HTTP {exc.status}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


SOCKET_READ_BYTES = 1 << 20


def _bigger_socket_reads() -> None:
    """httpcore reads 64 KiB per socket read: a multi-GB body then costs tens of thousands of
    trips through h11 and Python. 1 MiB reads about double the throughput on loopback
    (bench/bench_pull.py). A class constant of httpcore's, so set where it exists; a
    version without it keeps its own reads."""
    try:
        from httpcore._sync.http11 import HTTP11Connection
    except ImportError:
        return
    if getattr(HTTP11Connection, "READ_NUM_BYTES", SOCKET_READ_BYTES) < SOCKET_READ_BYTES:
        HTTP11Connection.READ_NUM_BYTES = SOCKET_READ_BYTES


def http_client() -> Any:
    import httpx

    _bigger_socket_reads()
    return httpx.Client(
        follow_redirects=True,
        timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        headers={"User-Agent": "airpods"},
    )


@dataclass(frozen=True)
class Pulled:
    names: list[str]
    bytes_moved: int
    skipped: list[str]


def pull(
    ref: str | Ref,
    root: Path,
    *,
    name: str | None = None,
    progress: Progress | None = None,
    hub: Hub | None = None,
) -> Pulled:
    """Download `ref` into the directory `root` (a model volume). Returns what landed."""
    parsed = parse_ref(ref) if isinstance(ref, str) else ref
    if name is not None:
        check_name(name)
    hub = hub or Hub()
    progress = progress or NoProgress()
    # Building an httpx client loads the CA bundle (0.1-0.2 s): do it while the hub answers.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        building = pool.submit(http_client)
        try:
            files = hub.files_for(parsed)
        finally:
            client = building.result()
    names = dest_names(files, name)
    moved, skipped = 0, []
    with client:
        for remote, target in zip(files, names, strict=True):
            dest = model_path(root, target)
            if dest.exists():
                if dest.stat().st_size == remote.size:
                    skipped.append(target)
                    progress.note(f"{target} is already in the volume")
                    continue
                raise UsageError(f"{target} is already in the volume and differs from "
                                 f"{remote.repo}/{remote.path}",
                                 hint="remove it first (`airpods models rm`) or use --name")
            dest.parent.mkdir(parents=True, exist_ok=True)
            partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
            have = partial.stat().st_size if partial.exists() else 0
            check_space(dest.parent, remote.size - min(have, remote.size), target)  # no file yet
            moved += download(client, remote, dest, progress, hub.token)
    return Pulled(names, moved, skipped)
