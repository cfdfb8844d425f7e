"""A loopback stand-in for the Hugging Face hub: the part huggingface_hub and `models pull` use.

    with FakeHub() as hub:
        hub.add("org/repo", "model-Q4_K_M.gguf", path_to_real_gguf)
        env = {"HF_ENDPOINT": hub.url}

It speaks, over real HTTP on 127.0.0.1:

* `GET /api/models?search=Q&filter=gguf&sort=downloads&limit=N`: a search of the GGUF repos;
* `GET /api/models/{repo}[/revision/{rev}]`: model info with `sha` and `siblings`;
* `GET /api/models/{repo}/tree/{rev}[/{path}]`: the file list (`size`, `oid`, `lfs`);
* `HEAD`/`GET /{repo}/resolve/{rev}/{path}`: `X-Repo-Commit`, `ETag` (quoted), `X-Linked-Etag`
  (the sha256, as for LFS files), `X-Linked-Size`, `Content-Length`, `Accept-Ranges`; `Range:
  bytes=N-` / `bytes=N-M` answered 206 with `Content-Range`, honouring `If-Range`; with
  `redirect=True` LFS files answer 302 to `/lfs/{sha256}` like the real hub's CDN hop;
* `X-Error-Code: RepoNotFound` / `EntryNotFound` 404s, which huggingface_hub maps to its errors.

It records every request (method, path, range, status, body bytes sent), so a test can assert
that a resumed pull asked for, and got, only the missing bytes. Faults can be injected per file:
`stall_after` (send N body bytes, then hold the connection until released: the moment to
`kill -9` a client), `fail` (answer 500 to the next K GETs), `drop_after` (close the connection
after N body bytes, once), `corrupt` (serve other bytes than the ETag says) and `pace_s`
(send the body slowly, in 16 pieces).
No pytest here: bench/ uses it too.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SEND_CHUNK = 1 << 20


@dataclass
class HubFile:
    path: str
    source: Path
    size: int
    sha256: str
    blob: str  # git blob id (sha1), as the hub's `oid`


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    status: int
    sent: int = 0  # body bytes written


@dataclass
class Faults:
    stall_after: int | None = None
    fail: int = 0
    fail_status: int = 500
    drop_after: int | None = None
    corrupt: bool = False
    pace_s: float = 0.0  # the body in 16 pieces, this long apart: slow, but always progressing


@dataclass
class Repo:
    commit: str
    files: dict[str, HubFile] = field(default_factory=dict)


def _digests(path: Path) -> tuple[str, str]:
    size = path.stat().st_size
    sha256, sha1 = hashlib.sha256(), hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            sha256.update(chunk)
            sha1.update(chunk)
    return sha256.hexdigest(), sha1.hexdigest()


class FakeHub:
    def __init__(self, *, redirect: bool = False) -> None:
        self.repos: dict[str, Repo] = {}
        self.downloads: dict[str, int] = {}  # repo -> downloads, for the search ranking
        self.requests: list[Request] = []
        self.faults: dict[str, Faults] = {}
        self.redirect = redirect
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- content -----------------------------------------------------------------------------

    def add(self, repo: str, path: str, source: Path) -> HubFile:
        source = Path(source)
        entry = self.repos.setdefault(repo, Repo(hashlib.sha1(repo.encode()).hexdigest()))
        sha256, blob = _digests(source)
        entry.files[path] = HubFile(path, source, source.stat().st_size, sha256, blob)
        return entry.files[path]

    def listed(self, repo: str, path: str, size: int) -> HubFile:
        """A file the listing shows with `size` bytes but that has no bytes behind it: a 40 GB
        quant for the fit choice without 40 GB on disk. Fetching it is a test failure (500)."""
        entry = self.repos.setdefault(repo, Repo(hashlib.sha1(repo.encode()).hexdigest()))
        digest = hashlib.sha256(path.encode()).hexdigest()
        entry.files[path] = HubFile(path, Path("/nonexistent/listed-only"), size, digest,
                                    digest[:40])
        return entry.files[path]

    def fault(self, path: str, **kwargs: Any) -> Faults:
        faults = self.faults.setdefault(path, Faults())
        for key, value in kwargs.items():
            setattr(faults, key, value)
        return faults

    def gets(self, path: str) -> list[Request]:
        """The GETs of a file's bytes (the resolve URL, or the CDN hop when redirecting)."""
        sha = next((f.sha256 for r in self.repos.values() for p, f in r.files.items()
                    if p == path), None)
        with self._lock:
            return [r for r in self.requests
                    if r.method == "GET" and r.status != 302
                    and ("/resolve/" in r.path
                         and r.path.split("/resolve/", 1)[1].split("/", 1)[1] == path
                         or r.path == f"/lfs/{sha}")]

    def sent(self, path: str) -> int:
        return sum(r.sent for r in self.gets(path))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            owner = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)


_API_RE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?P<rest>/.*)?$")
_RESOLVE_RE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


class _Handler(BaseHTTPRequestHandler):
    owner: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing ----------------------------------------------------------------------------

    def _finish(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                record: bool = True) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        sent = 0
        if self.command != "HEAD" and body:
            self.wfile.write(body)
            sent = len(body)
        if record:
            self.owner.record(Request(self.command, self.path, self.headers.get("Range"),
                                      status, sent))

    def _json(self, data: Any) -> None:
        import json

        self._finish(200, json.dumps(data).encode(), {"Content-Type": "application/json"})

    def _not_found(self, code: str) -> None:
        self._finish(404, b"not found", {"X-Error-Code": code, "X-Error-Message": code})

    # -- routes ------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def _route(self) -> None:
        path = unquote(urlsplit(self.path).path)
        if path == "/api/models":
            return self._search(parse_qs(urlsplit(self.path).query))
        if match := _API_RE.match(path):
            return self._api(match.group("repo"), match.group("rest") or "")
        if match := _RESOLVE_RE.match(path):
            return self._resolve(match.group("repo"), match.group("rev"), match.group("path"))
        if path.startswith("/lfs/"):
            sha = path[len("/lfs/"):]
            for repo in self.owner.repos.values():
                for hub_file in repo.files.values():
                    if hub_file.sha256 == sha:
                        return self._send_file(repo, hub_file)
        self._finish(404, b"no route")

    def _search(self, query: dict[str, list[str]]) -> None:
        """`GET /api/models?search=&filter=gguf&sort=downloads&limit=`: the repos whose name
        holds `search` and that hold a .gguf, most downloaded first (`FakeHub.downloads`)."""
        words = query.get("search", [""])[0].lower()
        limit = int(query.get("limit", ["1000"])[0])
        hits = [name for name, repo in self.owner.repos.items()
                if words in name.lower() and any(p.endswith(".gguf") for p in repo.files)]
        hits.sort(key=lambda n: -self.owner.downloads.get(n, 0))
        self._json([{"id": n, "modelId": n, "downloads": self.owner.downloads.get(n, 0),
                     "tags": ["gguf"]} for n in hits[:limit]])

    def _api(self, name: str, rest: str) -> None:
        repo = self.owner.repos.get(name)
        if repo is None:
            return self._not_found("RepoNotFound")
        if rest == "" or rest.startswith("/revision/"):
            return self._json({"id": name, "modelId": name, "sha": repo.commit,
                               "siblings": [{"rfilename": p} for p in sorted(repo.files)]})
        if rest.startswith("/tree/"):
            sub = rest[len("/tree/"):].partition("/")[2]
            entries = [
                {"type": "file", "path": f.path, "size": f.size, "oid": f.blob,
                 "lfs": {"oid": f.sha256, "size": f.size, "pointerSize": 134}}
                for p, f in sorted(repo.files.items()) if not sub or p.startswith(sub + "/")
            ]
            return self._json(entries)
        self._finish(404, b"no route")

    def _resolve(self, name: str, rev: str, path: str) -> None:
        repo = self.owner.repos.get(name)
        if repo is None:
            return self._not_found("RepoNotFound")
        if rev not in ("main", repo.commit):
            return self._not_found("RevisionNotFound")
        hub_file = repo.files.get(path)
        if hub_file is None:
            return self._not_found("EntryNotFound")
        if self.owner.redirect:
            headers = self._meta_headers(repo, hub_file)
            headers["Location"] = f"/lfs/{hub_file.sha256}"
            return self._finish(302, b"", headers)
        self._send_file(repo, hub_file)

    def _meta_headers(self, repo: Repo, f: HubFile) -> dict[str, str]:
        return {"X-Repo-Commit": repo.commit, "ETag": f'"{f.sha256}"',
                "X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size),
                "Accept-Ranges": "bytes"}

    def _send_file(self, repo: Repo, f: HubFile) -> None:
        faults = self.owner.faults.get(f.path, Faults())
        headers = self._meta_headers(repo, f)
        if self.command == "GET" and faults.fail > 0:
            faults.fail -= 1
            return self._finish(faults.fail_status, b"injected failure")
        start, end, status = 0, f.size - 1, 200
        wanted = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if wanted and (if_range is None or if_range.strip('"') == f.sha256):
            match = _RANGE_RE.match(wanted.strip())
            if not match:
                return self._finish(416, b"bad range", {"Content-Range": f"bytes */{f.size}"})
            start = int(match.group(1))
            end = min(int(match.group(2)), f.size - 1) if match.group(2) else f.size - 1
            if start >= f.size or start > end:
                return self._finish(416, b"", {"Content-Range": f"bytes */{f.size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{f.size}"
        length = end - start + 1
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        req = Request(self.command, self.path, wanted, status)
        self.owner.record(req)
        if self.command == "HEAD":
            return
        self._body(f, faults, start, length, req)

    def _body(self, f: HubFile, faults: Faults, start: int, length: int, req: Request) -> None:
        limit = length
        stall = faults.stall_after
        if stall is not None and start < stall:
            limit = min(length, stall - start)
        drop = faults.drop_after
        if drop is not None and start < drop:
            limit = min(limit, drop - start)
        plain = not faults.corrupt and limit == length and not faults.pace_s
        piece = max(1, length // 16) if faults.pace_s else SEND_CHUNK
        try:
            with open(f.source, "rb") as fh:
                if plain:
                    self.wfile.flush()
                    # Zero-copy, so the server is never the bottleneck of a throughput bench.
                    req.sent = self.connection.sendfile(fh, start, length)
                    return
                fh.seek(start)
                while req.sent < limit:
                    if faults.pace_s and req.sent:
                        self.wfile.flush()
                        time.sleep(faults.pace_s)
                    chunk = fh.read(min(piece, limit - req.sent))
                    if faults.corrupt and start + req.sent + len(chunk) == f.size:
                        chunk = chunk[:-1] + bytes([chunk[-1] ^ 0x5A])  # the last byte
                    self.wfile.write(chunk)
                    req.sent += len(chunk)
                self.wfile.flush()
            if stall is not None and start < stall:
                self.owner.release.wait()  # hold the connection: the client is killed now
            elif drop is not None and start < drop:
                faults.drop_after = None  # once
            else:
                return
            self.close_connection = True
            self.connection.shutdown(2)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


def write_gguf_blob(path: Path, size: int, seed: int = 1) -> Path:
    """A file of `size` bytes that starts with a GGUF header (a tiny model), then random bytes:
    enough for a throughput bench, whose client only checks the magic and the sha256."""
    from tests.tiny_model import write_tiny_gguf

    tiny = write_tiny_gguf(path.with_name(path.name + ".tiny"))
    head = tiny.read_bytes()
    tiny.unlink()
    rng = __import__("random").Random(seed)
    with open(path, "wb") as out:
        out.write(head)
        left = size - len(head)
        block = rng.randbytes(8 << 20)
        while left > 0:
            out.write(block[:left])
            left -= len(block)
    os.chmod(path, 0o644)
    return path
