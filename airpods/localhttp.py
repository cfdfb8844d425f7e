"""GET requests to the services' own published ports (plain http, usually 127.0.0.1).

Readiness polls and `status` probes only ever GET a plain-http URL that airpods built itself,
so airpods/http1.py does: httpx takes 40-60 ms to import on a 2-core machine and http.client
pulls in the email package, and `status` and `start` would pay that on every call
(bench/README.md). Connections are kept alive per thread and host, so polling every few
milliseconds opens one connection. No proxy is ever used: an HTTP(S)_PROXY in the user's
environment must not capture 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Mapping
from typing import Any, BinaryIO, Protocol

from airpods import http1
from airpods.errors import LocalTransportError


class Reply:
    """The answer to one GET: the fields of httpx.Response that airpods reads."""

    def __init__(self, status_code: int, reason_phrase: str, content: bytes) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)  # ValueError when it is not JSON, as httpx


class Client(Protocol):
    """What readiness needs from an HTTP client (LocalHTTP; tests pass fakes)."""

    def get(self, url: str, *, headers: Any = None, timeout: float | None = None) -> Reply: ...


class LocalHTTP:
    """A GET-only client: `get(url, headers=, timeout=)` -> Reply, or LocalTransportError."""

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[_Connection] = []
        self._lock = threading.Lock()
        self.is_closed = False

    def get(
        self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> Reply:
        try:
            host, port, target = http1.split_url(url)
        except ValueError as exc:
            raise LocalTransportError(str(exc)) from None
        limit = self.timeout if timeout is None else timeout
        for attempt in (1, 2):
            conn = self._connections().get((host, port))
            reused = conn is not None
            try:
                if conn is None:
                    conn = self._open(host, port, limit)
                conn.sock.settimeout(limit)
                http1.send_get(conn.sock, target, _host_header(host, port), dict(headers or {}))
                resp = http1.read_response(conn.rfile)
            except OSError as exc:  # refused, reset, cut short (ConnectionClosed), timed out
                self._drop(host, port)
                # A kept-alive connection the server closed meanwhile: try once on a new one.
                if attempt == 1 and reused and not isinstance(exc, TimeoutError):
                    continue
                raise LocalTransportError(_detail(exc, limit)) from exc
            if resp.will_close:
                self._drop(host, port)
            return Reply(resp.status, resp.reason, resp.body)
        raise AssertionError("unreachable")

    def _connections(self) -> dict[tuple[str, int], _Connection]:
        return self._local.__dict__.setdefault("conns", {})

    def _open(self, host: str, port: int, timeout: float | None) -> _Connection:
        sock = _connect(host, port, timeout)
        # A request is one write; no Nagle delay waiting for the ACK of the previous one.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(sock, sock.makefile("rb"))
        self._connections()[(host, port)] = conn
        with self._lock:
            self._all.append(conn)
        return conn

    def _drop(self, host: str, port: int) -> None:
        conn = self._connections().pop((host, port), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self.is_closed = True

    def __enter__(self) -> LocalHTTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Connection:
    def __init__(self, sock: socket.socket, rfile: BinaryIO) -> None:
        self.sock, self.rfile = sock, rfile

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


def accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts a TCP connection there (no request is sent)."""
    try:
        _connect(host, port, timeout).close()
    except OSError:
        return False
    return True


def _connect(host: str, port: int, timeout: float | None) -> socket.socket:
    """An IP literal (what health URLs hold) is connected to directly: getaddrinfo, which
    create_connection uses, would import the idna codec (with unicodedata) for the name."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if family == socket.AF_INET and not host.replace(".", "").isdigit():
        return socket.create_connection((host, port), timeout=timeout)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _host_header(host: str, port: int) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port == 80 else f"{name}:{port}"


def _detail(exc: BaseException, timeout: float | None) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:.1f}s" if timeout is not None else "no answer"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionError):
        return "connection closed"  # reset, broken pipe, cut short, not HTTP
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
