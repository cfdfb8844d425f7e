"""GET requests to the services' own published ports (plain http, usually 127.0.0.1).

Readiness polls and `status` probes only ever GET a plain-http URL that airpods built itself,
so the stdlib's http.client does: it imports in about 5 ms where httpx takes 40-60 ms on a
2-core machine, and `status` and `start` pay that on every call (bench/README.md). Connections
are kept alive per thread and host, so polling every few milliseconds opens one connection.
No proxy is ever used: an HTTP(S)_PROXY in the user's environment must not capture 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any


class TransportError(Exception):
    """No answer: `detail` says why in the words `status` shows ("connection refused", ...)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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


class LocalHTTP:
    """A GET-only client: `get(url, headers=, timeout=)` -> Reply, or TransportError."""

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self.is_closed = False

    def get(
        self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> Reply:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise TransportError(f"not a plain http URL: {url}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        limit = self.timeout if timeout is None else timeout
        host = (parts.hostname, parts.port or 80)
        for attempt in (1, 2):
            conn, reused = self._connection(host, limit)
            try:
                conn.request("GET", target, headers=dict(headers or {}))
                resp = conn.getresponse()
                reply = Reply(resp.status, resp.reason, resp.read())
                if resp.will_close:
                    self._drop(host)
                return reply
            except (OSError, http.client.HTTPException) as exc:
                self._drop(host)
                # A kept-alive connection the server closed meanwhile: try once on a new one.
                if attempt == 1 and reused and not isinstance(exc, TimeoutError):
                    continue
                raise TransportError(_detail(exc, limit)) from exc
        raise AssertionError("unreachable")

    def _connection(
        self, host: tuple[str, int], timeout: float | None
    ) -> tuple[http.client.HTTPConnection, bool]:
        conns: dict = self._local.__dict__.setdefault("conns", {})
        conn = conns.get(host)
        reused = conn is not None
        if conn is None:
            conn = _Connection(host[0], host[1], timeout=timeout)
            conns[host] = conn
            with self._lock:
                self._all.append(conn)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, reused

    def _drop(self, host: tuple[str, int]) -> None:
        conn = self._local.__dict__.get("conns", {}).pop(host, None)
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


class _Connection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        # Headers and body of a request go out in one write, but a server's answer may come in
        # two: no Nagle delay on our side either way.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _detail(exc: BaseException, timeout: float | None) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:.1f}s" if timeout is not None else "no answer"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (ConnectionError, http.client.HTTPException)):
        return "connection closed"  # reset, broken pipe, cut short, no status line
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
