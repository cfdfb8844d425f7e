"""A thin client for Podman's libpod REST API on its unix socket, and the lost-connection wrapper.

Why not podman-py or httpx: on this project's 2-core reference machine, importing podman-py
(with requests and urllib3) costs 100-140 ms and httpx 40-60 ms; airpods/http1.py (sockets and
a few lines of HTTP/1.1) next to nothing (bench/README.md has the `python -X importtime`
figures). `status` and an idempotent `start` only read, so the reads (engine/podman_reads.py)
go through this module and never import either; writes stay with podman-py (engine/podman.py),
imported on the first write.

One connection per request: on a unix socket a connect costs microseconds, and it keeps the
client safe to share between threads with no stale keep-alive connection to retry.
"""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from airpods import http1
from airpods.errors import ConnectionLost, PodmanError

# The libpod API path podman-py uses too (Podman 4.3 and later answer under any version).
API_PREFIX = "/v5.0.0/libpod"


class Libpod:
    """GET requests to libpod on `url` (unix:///path/podman.sock), answers decoded from JSON."""

    def __init__(self, url: str, timeout: float = 600) -> None:
        if not url.startswith("unix://"):
            raise PodmanError(f"{url}: airpods talks to Podman over a local unix:// socket only")
        self.url = url
        self.socket_path = url[len("unix://"):]
        self.timeout = timeout

    def request(self, path: str, params: Mapping[str, str] | None = None, *,
                method: str = "GET", body: bytes | None = None,
                raw: bool = False) -> tuple[int, bytes]:
        """(HTTP status, body) of one request; ConnectionLost when the service does not answer.
        A body is JSON unless `raw` (a secret's bytes)."""
        target = API_PREFIX + path + (f"?{http1.query(dict(params))}" if params else "")
        headers = {"Accept": "application/json"}
        if body is not None and not raw:
            headers["Content-Type"] = "application/json"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
            http1.send(sock, method, target, "d", headers, body)
            with sock.makefile("rb") as rfile:
                resp = http1.read_response(rfile)
            return resp.status, resp.body
        except OSError as exc:  # refused, reset, cut short (ConnectionClosed), timed out
            raise ConnectionLost(f"{method} {path}: {exc}") from exc
        finally:
            sock.close()

    def send(self, method: str, path: str, params: Mapping[str, str] | None = None,
             body: bytes | None = None, *, missing_ok: bool = False, raw: bool = False) -> Any:
        """A write (POST, DELETE): the decoded JSON answer; PodmanError when Podman refuses
        (a 404 is None with `missing_ok`)."""
        status, answer = self.request(path, params, method=method, body=body, raw=raw)
        if status == 404 and missing_ok:
            return None
        if not 200 <= status < 300 and status != 304:  # 304: already in that state
            raise refused(status, answer)
        return json.loads(answer) if answer.strip() else None

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """The decoded JSON body; None when Podman answers 404 (no such object)."""
        status, body = self.request(path, params)
        if status == 404:
            return None
        if not 200 <= status < 300:
            raise refused(status, body)
        return json.loads(body) if body else None

    def exists(self, path: str) -> bool:
        """For libpod's `.../exists` endpoints: 204 yes, 404 no."""
        status, body = self.request(path)
        if status == 404:
            return False
        if not 200 <= status < 300:
            raise refused(status, body)
        return True


quote = http1.quote  # a name as one path segment (image references hold '/' and ':')


def refused(status: int, body: bytes) -> PodmanError:
    """Podman's own message from an error answer, as podman-py's APIError would give it."""
    try:
        data = json.loads(body)
        message = str(data.get("message") or data.get("cause") or "").strip()
    except (ValueError, AttributeError):
        message = body.decode(errors="replace").strip()
    first = message.splitlines()[0][:300] if message else f"HTTP {status}"
    return PodmanError(f"podman refused: {first}")


def connection_lost(exc: BaseException) -> bool:
    """True when `exc` means the Podman API service stopped answering, not that it refused.

    Our own client raises ConnectionLost. podman-py wraps a refused connection in APIError (the
    requests error is its __cause__); a stream cut mid-way surfaces from urllib3 (ProtocolError:
    IncompleteRead) directly. requests and urllib3 are only looked at when something imported
    them: an exception cannot come from a library that is not loaded.
    """
    lost: tuple[type[BaseException], ...] = (ConnectionError,)
    requests = sys.modules.get("requests")
    if requests is not None:
        lost += (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)
    urllib3_exceptions = sys.modules.get("urllib3.exceptions")
    if urllib3_exceptions is not None:
        lost += (urllib3_exceptions.ProtocolError,)
    seen: BaseException | None = exc
    for _ in range(8):  # a cause chain is short; never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, lost):
            return True
        seen = seen.__cause__
    return False


# inspect.CO_GENERATOR, without importing inspect (with ast, dis and tokenize: ~5 ms a command)
CO_GENERATOR = 0x20


def maps_lost_connection(cls: type) -> type:
    """Wrap every public method: a lost Podman connection becomes one PodmanError with a hint.

    Done once here, for the read and the write side alike, so that no command has to know what
    http.client, podman-py, requests or urllib3 raise. The class provides `lost_connection()`.
    """
    for name, member in list(vars(cls).items()):
        if (not name.startswith("_") and name != "lost_connection"
                and isinstance(member, types.FunctionType)):
            setattr(cls, name, _mapped(member))
    return cls


def _mapped(fn: Callable[..., Any]) -> Callable[..., Any]:
    if fn.__code__.co_flags & CO_GENERATOR:

        @functools.wraps(fn)
        def streaming(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            with _lost_as_podman_error(self):
                yield from fn(self, *args, **kwargs)

        return streaming

    @functools.wraps(fn)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _lost_as_podman_error(self):
            return fn(self, *args, **kwargs)

    return call


@contextlib.contextmanager
def _lost_as_podman_error(adapter: Any) -> Iterator[None]:
    try:
        yield
    except PodmanError:
        raise
    except Exception as exc:
        if not connection_lost(exc):
            raise
        raise adapter.lost_connection() from None
