"""A small HTTP/1.1 client for `models pull`: HEADs and streamed GETs to the hub and its CDN,
over TCP or TLS (the system's trust store, SSL_CERT_FILE / SSL_CERT_DIR honoured).

Why not httpx here: a pull is one HEAD and one GET, and httpx's import (with h11, httpcore
and its CLI's rich) plus its client cost a pull about as long as moving 100 MB on loopback
(bench/README.md); this reads the socket in 1 MiB pieces with no per-chunk parsing. It covers
what the hub needs: Content-Length or chunked bodies, redirects (the Authorization header
stays on the host it was meant for), connect and read timeouts. Where a proxy applies, the
hub uses httpx instead, which speaks CONNECT (airpods/http_clients.py sets both up). The same
`head` / `stream` / `close` surface as httpx's client, so models/transfer.py serves both.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote, urljoin, urlsplit

from airpods import http1
from airpods.errors import AirpodsError, BadAnswer, NotHTTP, TransportError
from airpods.masking import mask_url

REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10
READ_BYTES = 1 << 20


class Headers(dict):
    """Header names in lower case; `get` takes any case, as httpx's headers do."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


class Answer:
    """One response: status and headers read, the body left on the socket for `iter_raw`."""

    def __init__(self, url: str, status: int, headers: Headers, sock: socket.socket,
                 rfile: BinaryIO) -> None:
        self.url, self.status_code, self.headers = url, status, headers
        self.sock, self.rfile = sock, rfile

    @property
    def is_redirect(self) -> bool:
        return self.status_code in REDIRECTS and "location" in self.headers

    def iter_raw(self) -> Iterator[bytes]:
        """The body as it arrives (Content-Length, chunked, or up to the connection's end)."""
        try:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                yield from self._chunked()
                return
            length = self.headers.get("content-length")
            left = int(length) if length is not None and length.isdigit() else None
            while left is None or left > 0:
                data = self.rfile.read1(READ_BYTES if left is None else min(left, READ_BYTES))
                if not data:
                    return  # cut short: the caller compares what it got with the size
                if left is not None:
                    left -= len(data)
                yield data
        except OSError as exc:  # reset, timed out, TLS error while reading
            raise TransportError(f"reading {self.url}: {exc}") from None

    def _chunked(self) -> Iterator[bytes]:
        while True:
            line = self.rfile.readline(http1.MAX_LINE)
            try:
                size = int(line.split(b";", 1)[0].strip() or b"0", 16) if line else 0
            except ValueError:
                raise TransportError(f"{self.url}: bad chunk size {line[:40]!r}") from None
            if size == 0:
                return
            while size > 0:
                data = self.rfile.read1(min(size, READ_BYTES))
                if not data:
                    return
                size -= len(data)
                yield data
            self.rfile.readline(http1.MAX_LINE)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.rfile.close()
            self.sock.close()


class _Watchdog:
    """Shuts `sock` down after `seconds` (None: never), which ends a blocked read at once."""

    def __init__(self, sock: socket.socket, seconds: float | None) -> None:
        self.sock, self.fired, self.timer = sock, False, None
        if seconds is not None:
            import threading

            self.timer = threading.Timer(seconds, self._fire)
            self.timer.daemon = True
            self.timer.start()

    def _fire(self) -> None:
        self.fired = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


class HubClient:
    """`read_timeout` bounds each read, so a body that keeps coming is never cut however slow;
    `head_timeout` bounds the status line and headers as a whole (a server that drips a byte a
    second would pass any per-read timeout)."""

    def __init__(self, *, connect_timeout: float, read_timeout: float,
                 head_timeout: float | None = None, user_agent: str = "airpods") -> None:
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.head_timeout = head_timeout
        self.user_agent = user_agent
        self._tls: Any = None

    def head(self, url: str, headers: dict[str, str], follow_redirects: bool = False) -> Answer:
        answer = self._follow("HEAD", url, headers, follow_redirects)
        answer.close()  # a HEAD has no body
        return answer

    @contextlib.contextmanager
    def stream(self, method: str, url: str, headers: dict[str, str]) -> Iterator[Answer]:
        answer = self._follow(method, url, headers, True)
        try:
            yield answer
        finally:
            answer.close()

    def close(self) -> None:
        pass  # no connection outlives its answer

    def _follow(self, method: str, url: str, headers: dict[str, str], follow: bool) -> Answer:
        origin = urlsplit(url).netloc
        for _ in range(MAX_REDIRECTS):
            answer = self._send(method, url, headers)
            if not (follow and answer.is_redirect):
                return answer
            answer.close()
            url = urljoin(url, answer.headers["location"])
            if urlsplit(url).netloc != origin:  # the token is for the hub, not its CDN
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        raise AirpodsError(f"more than {MAX_REDIRECTS} redirects, last to {url}",
                           hint="check HF_ENDPOINT points at a Hugging Face hub or mirror")

    def _send(self, method: str, url: str, headers: dict[str, str]) -> Answer:
        parts = urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # a port out of range or not a number
            port = 0
        if parts.scheme not in ("http", "https") or not parts.hostname or not port:
            raise AirpodsError(f"cannot fetch {url}: not an http:// or https:// URL",
                               hint="check HF_ENDPOINT points at a Hugging Face hub or mirror")
        # What a URL may hold as it is; anything else (a space, a quote) is percent-encoded.
        target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                       safe="/?&=%:@!$'()*+,;~-._")
        sock = self._connect(parts.scheme, parts.hostname, port)
        watchdog = _Watchdog(sock, self.head_timeout)
        try:
            sock.settimeout(self.read_timeout)
            host = parts.netloc.rpartition("@")[2]
            sent = {"User-Agent": self.user_agent, "Connection": "close"}
            # http1.send asks for the identity encoding itself (sizes are the stored ones).
            sent |= {k: v for k, v in headers.items() if k.lower() != "accept-encoding"}
            http1.send(sock, method, target, host, sent)
            rfile = sock.makefile("rb", buffering=READ_BYTES)
            _, status, _, found = http1.read_head(rfile)
            watchdog.cancel()
        except NotHTTP as exc:
            watchdog.cancel()
            sock.close()
            raise BadAnswer(f"{method} {mask_url(url)}: {exc}") from None
        except OSError as exc:  # ConnectionClosed included
            watchdog.cancel()
            sock.close()
            cause = (f"no status line and headers within {self.head_timeout:g} s"
                     if watchdog.fired else exc)
            raise TransportError(f"{method} {mask_url(url)}: {cause}") from None
        return Answer(url, status, Headers(found), sock, rfile)

    def _connect(self, scheme: str, host: str, port: int) -> socket.socket:
        try:
            sock = socket.create_connection((host, port), timeout=self.connect_timeout)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            if scheme == "https":
                sock = self._context().wrap_socket(sock, server_hostname=host)
            return sock
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake or certificate
            raise TransportError(f"connecting to {host}:{port}: {exc}") from None

    def _context(self) -> Any:
        if self._tls is None:
            from airpods.http_clients import trust_context

            self._tls = trust_context()
        return self._tls


def origin(url: str) -> str:
    """scheme://host[:port] of `url`, a password in it masked: where the bytes come from."""
    scheme, _, rest = url.partition("://")
    return mask_url(f"{scheme}://{rest.split('/', 1)[0]}")
