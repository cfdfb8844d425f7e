"""Just enough HTTP/1.1 for GETs to two kinds of servers airpods knows: Podman's API on its
unix socket (engine/libpod.py) and the services' own published ports (airpods/localhttp.py).

Why not http.client: it imports the email package to parse headers, which costs `status` and
`start` about as much again as the rest of their HTTP work (bench/README.md). The answers these
servers give are plain: a status line, headers, and a body framed by Content-Length, chunked
transfer coding, or the connection's end; that is all this reads.
"""

from __future__ import annotations

import socket
from typing import BinaryIO

from airpods.errors import ConnectionClosed, NotHTTP

MAX_LINE = 64 * 1024
MAX_HEADERS = 256  # a server that keeps sending header lines is refused, not buffered forever
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class Response:
    """One answer. A plain class: a dataclass costs its creation on every command's start-up."""

    __slots__ = ("status", "reason", "headers", "body", "will_close")

    def __init__(self, status: int, reason: str, headers: dict[str, str], body: bytes,
                 will_close: bool) -> None:
        self.status, self.reason, self.body = status, reason, body
        self.headers = headers  # names in lower case
        self.will_close = will_close  # the server closes the connection after this answer


def send_get(sock: socket.socket, target: str, host: str, headers: dict[str, str]) -> None:
    send(sock, "GET", target, host, headers)


def send(sock: socket.socket, method: str, target: str, host: str, headers: dict[str, str],
         body: bytes | None = None) -> None:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))


def read_head(rfile: BinaryIO) -> tuple[str, int, str, dict[str, str]]:
    """(version, status, reason, headers) of the next final answer; interim ones (100
    Continue) are skipped. Header names in lower case. ConnectionClosed if it is cut short."""
    while True:
        version, status, reason = _status_line(rfile)
        headers = _headers(rfile)
        if not 100 <= status < 200:
            return version, status, reason, headers


def read_response(rfile: BinaryIO) -> Response:
    """One answer from `rfile` (the socket's makefile("rb")); ConnectionClosed if cut short."""
    version, status, reason, headers = read_head(rfile)
    connection = headers.get("connection", "").lower()
    will_close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
    if status in (204, 304):
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = _chunked(rfile)
    elif "content-length" in headers:
        body = _exactly(rfile, int(headers["content-length"]))
    else:  # delimited by the end of the connection
        body, will_close = rfile.read(), True
    return Response(status, reason, headers, body, will_close)


def quote(text: str) -> str:
    """`text` percent-encoded as one path segment or query value (like urllib's quote(safe=""))."""
    return "".join(chr(b) if b in UNRESERVED else f"%{b:02X}" for b in text.encode())


def query(params: dict[str, str]) -> str:
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())


def split_url(url: str) -> tuple[str, int, str]:
    """(host, port, path?query) of a plain http:// URL; ValueError for anything else."""
    if not url.startswith("http://"):
        raise ValueError(f"not a plain http URL: {url}")
    rest = url[len("http://"):].split("#", 1)[0]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    hostport, target = rest[:cut], rest[cut:]
    if hostport.startswith("["):  # [IPv6]:port
        host, _, tail = hostport[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    if not host:
        raise ValueError(f"no host in {url}")
    target = target if target.startswith("/") else "/" + target
    return host, int(port) if port else 80, target


def on_server(url: str, path: str) -> str:
    """`path` on `url`'s server: urljoin, without importing urllib for an absolute path."""
    if not path.startswith("/"):
        from urllib.parse import urljoin

        return urljoin(url, path)
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0]}{path}"


def _status_line(rfile: BinaryIO) -> tuple[str, int, str]:
    line = rfile.readline(MAX_LINE)
    if not line:
        raise ConnectionClosed("no answer")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise NotHTTP(f"not an HTTP answer: {line[:60]!r}")
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


def _headers(rfile: BinaryIO) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = rfile.readline(MAX_LINE)
        if not line:
            raise ConnectionClosed("headers cut short")
        if line in (b"\r\n", b"\n"):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    raise ConnectionClosed(f"more than {MAX_HEADERS} header lines")


def _exactly(rfile: BinaryIO, n: int) -> bytes:
    data = rfile.read(n)
    if len(data) < n:
        raise ConnectionClosed(f"answer cut short ({len(data)} of {n} bytes)")
    return data


def _chunked(rfile: BinaryIO) -> bytes:
    parts = []
    while True:
        line = rfile.readline(MAX_LINE)
        if not line:
            raise ConnectionClosed("chunked answer cut short")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ConnectionClosed(f"bad chunk size {line[:40]!r}") from None
        if size == 0:
            _headers(rfile)  # trailers, up to the blank line
            return b"".join(parts)
        parts.append(_exactly(rfile, size))
        if rfile.readline(MAX_LINE) not in (b"\r\n", b"\n"):
            raise ConnectionClosed("chunk not followed by CRLF")
