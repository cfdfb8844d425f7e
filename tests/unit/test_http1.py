"""airpods/http1.py and the libpod read client on it: framing, errors, lost connections."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airpods import http1
from airpods.engine.libpod import Libpod, connection_lost
from airpods.errors import ConnectionClosed, ConnectionLost, PodmanError


def answer(raw: bytes) -> http1.Response:
    return http1.read_response(io.BytesIO(raw))


def test_content_length_chunked_and_close_delimited_bodies() -> None:
    r = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhelloEXTRA")
    assert (r.status, r.reason, r.body, r.headers["x-a"], r.will_close) == (
        200, "OK", b"hello", "b", False)
    r = answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n")
    assert r.body == b"abc0123456789"
    r = answer(b"HTTP/1.0 503 Service Unavailable\r\n\r\nloading")
    assert (r.status, r.body, r.will_close) == (503, b"loading", True)
    r = answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
    assert (r.status, r.body, r.will_close) == (204, b"", True)


@pytest.mark.parametrize("raw", [
    b"", b"SSH-2.0-OpenSSH\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", b"HTTP/1.1 200 OK\r\nA: b\r\n",
])
def test_a_cut_or_foreign_answer_is_closed_not_a_crash(raw: bytes) -> None:
    with pytest.raises(ConnectionClosed):
        answer(raw)


def test_urls_and_quoting() -> None:
    assert http1.split_url("http://127.0.0.1:8080/health") == ("127.0.0.1", 8080, "/health")
    assert http1.split_url("http://[::1]:3000/v1/models?x=1") == ("::1", 3000, "/v1/models?x=1")
    assert http1.split_url("http://host") == ("host", 80, "/")
    with pytest.raises(ValueError):
        http1.split_url("https://host/")
    quoted = "ghcr.io%2Fggml-org%2Fllama.cpp%3Aserver"
    assert http1.quote("ghcr.io/ggml-org/llama.cpp:server") == quoted
    assert http1.on_server("http://h:1/health", "/v1/models") == "http://h:1/v1/models"
    assert http1.on_server("http://h:1/a/health", "models") == "http://h:1/a/models"


class FakeAPI:
    """A unix-socket server answering each connection from `handler(request line)`."""

    def __init__(self, path: Path, handler) -> None:
        self.path, self.handler, self.requests = path, handler, []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                line = data.split(b"\r\n", 1)[0].decode()
                self.requests.append(line)
                conn.sendall(self.handler(line))


def test_libpod_get_exists_404_and_refusal(tmp_path: Path) -> None:
    def handler(line: str) -> bytes:
        if "/containers/json" in line:
            body = json.dumps([{"Names": ["a"]}]).encode()
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        if "/images/x%2Fy%3Az/exists" in line:
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        if "/volumes/missing" in line:
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        body = b'{"cause": "boom", "message": "something broke\\nmore", "response": 500}'
        return b"HTTP/1.1 500 Internal\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    FakeAPI(tmp_path / "api.sock", handler)
    api = Libpod(f"unix://{tmp_path}/api.sock")
    assert api.get("/containers/json", {"all": "true"}) == [{"Names": ["a"]}]
    assert api.exists("/images/x%2Fy%3Az/exists") is True
    assert api.exists("/volumes/missing/exists") is False
    assert api.get("/volumes/missing/json") is None
    with pytest.raises(PodmanError, match="podman refused: something broke$"):
        api.get("/info")


def test_libpod_lost_connection_is_recognised(tmp_path: Path) -> None:
    FakeAPI(tmp_path / "api.sock", lambda line: b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{")
    with pytest.raises(ConnectionLost) as cut:
        Libpod(f"unix://{tmp_path}/api.sock").get("/info")
    with pytest.raises(ConnectionLost) as gone:
        Libpod(f"unix://{tmp_path}/nothing.sock").get("/info")
    assert connection_lost(cut.value) and connection_lost(gone.value)
    assert not connection_lost(ValueError("x"))


def test_a_read_on_a_lost_service_is_one_podman_error(tmp_path: Path) -> None:
    from airpods.engine.podman_reads import PodmanReads

    reads = PodmanReads(f"unix://{tmp_path}/gone.sock")
    with pytest.raises(PodmanError, match="lost the connection to Podman at unix://"):
        reads.managed()
    with pytest.raises(PodmanError, match="lost the connection"):
        reads.image_exists("x")


def test_the_lost_connection_wrapper_knows_generators_without_inspect() -> None:
    import inspect

    from airpods.engine import libpod

    assert libpod.CO_GENERATOR == inspect.CO_GENERATOR

    @libpod.maps_lost_connection
    class Adapter:
        def lost_connection(self) -> str:
            return "gone"

        def one(self) -> int:
            return 1

        def many(self) -> Iterator[int]:
            yield from (1, 2)

    assert inspect.isgeneratorfunction(Adapter.many) and Adapter().one() == 1
    assert list(Adapter().many()) == [1, 2]
