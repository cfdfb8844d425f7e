"""airpods' own hub client (hub/hubhttp.py) against real local servers: plain and TLS
(a certificate it must refuse unless trusted), redirects that keep the token on its host,
chunked bodies, a body cut short, a server that never answers."""

from __future__ import annotations

import http.server
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airpods.errors import TransportError
from airpods.hub.hubhttp import HubClient

BODY = bytes(range(256)) * 4096  # 1 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, str | None]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, body: bool) -> None:
        Handler.seen.append((self.command, self.path, self.headers.get("Authorization")))
        if self.path == "/redirect-away":
            port = self.server.other_port  # type: ignore[attr-defined]
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{port}/file")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/redirect-here":
            self.send_response(307)
            self.send_header("Location", "/file")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path in ("/loop", "/to-ftp", "/spaced"):
            self.send_response(302)
            self.send_header("Location", {"/loop": "/loop", "/to-ftp": "ftp://127.0.0.1/f",
                                          "/spaced": "/a file?x=\"y\""}[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/flood":
            self.send_response(200)
            for i in range(1000):
                self.send_header(f"X-{i}", "x")
            self.end_headers()
            return
        if self.path == "/bad-chunk":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"zz\r\nhello\r\n")
            return
        if self.path.startswith("/a%20file"):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            return
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (BODY[:1000], BODY[1000:5000], BODY[5000:]):
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        if body:
            self.wfile.write(BODY[: len(BODY) // 2] if self.path == "/short" else BODY)

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)


def serve(context: ssl.SSLContext | None = None) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[tuple[str, str]]:
    a, b = serve(), serve()
    a.other_port = b.server_address[1]  # type: ignore[attr-defined]
    Handler.seen = []
    yield f"http://127.0.0.1:{a.server_address[1]}", f"http://127.0.0.1:{b.server_address[1]}"
    a.shutdown()
    b.shutdown()


def client(timeout: float = 5.0) -> HubClient:
    return HubClient(connect_timeout=timeout, read_timeout=timeout)


def test_head_get_and_the_token_stays_on_its_host(servers: tuple[str, str]) -> None:
    hub, _ = servers
    head = client().head(f"{hub}/file", headers={"Authorization": "Bearer t"})
    assert head.status_code == 200 and head.headers.get("Content-Length") == str(len(BODY))
    with client().stream("GET", f"{hub}/redirect-away", headers={"Authorization": "Bearer t"}) \
            as answer:
        assert answer.status_code == 200 and b"".join(answer.iter_raw()) == BODY
    with client().stream("GET", f"{hub}/redirect-here", headers={"Authorization": "Bearer t"}) \
            as answer:
        assert b"".join(answer.iter_raw()) == BODY
    assert Handler.seen == [("HEAD", "/file", "Bearer t"),
                            ("GET", "/redirect-away", "Bearer t"), ("GET", "/file", None),
                            ("GET", "/redirect-here", "Bearer t"), ("GET", "/file", "Bearer t")]
    redirect = client().head(f"{hub}/redirect-away", headers={})
    assert redirect.is_redirect and redirect.status_code == 302  # a HEAD does not follow


def test_chunked_and_cut_short_bodies(servers: tuple[str, str]) -> None:
    hub, _ = servers
    with client().stream("GET", f"{hub}/chunked", headers={}) as answer:
        assert b"".join(answer.iter_raw()) == BODY
    with client().stream("GET", f"{hub}/short", headers={}) as answer:
        got = b"".join(answer.iter_raw())
    assert got == BODY[: len(BODY) // 2]  # the caller sees the size fall short and resumes


def test_refused_and_silent_servers_are_transport_errors() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(TransportError):
        client().head(f"http://127.0.0.1:{port}/x", headers={})
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        with pytest.raises(TransportError, match="timed out"):
            client(timeout=0.3).head(f"http://127.0.0.1:{silent.getsockname()[1]}/x",
                                     headers={})
    finally:
        silent.close()


def test_hostile_answers_are_one_clear_error(servers: tuple[str, str]) -> None:
    from airpods.errors import AirpodsError

    hub, _ = servers
    with pytest.raises(AirpodsError, match="more than 10 redirects"):
        client().stream("GET", f"{hub}/loop", headers={}).__enter__()
    with pytest.raises(AirpodsError, match="not an http:// or https:// URL"):
        client().stream("GET", f"{hub}/to-ftp", headers={}).__enter__()
    with pytest.raises(AirpodsError, match="not an http:// or https:// URL"):
        client().head("http://127.0.0.1:99999/x", headers={})
    with pytest.raises(TransportError, match="more than 256 header lines"):
        client().head(f"{hub}/flood", headers={})
    with client().stream("GET", f"{hub}/bad-chunk", headers={}) as answer, \
            pytest.raises(TransportError, match="bad chunk size"):
        b"".join(answer.iter_raw())
    with client().stream("GET", f"{hub}/spaced", headers={}) as answer:
        assert b"".join(answer.iter_raw()) == b"ok"  # the space went out percent-encoded
    assert ("GET", '/a%20file?x=%22y%22', None) in Handler.seen


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_tls_refuses_an_untrusted_certificate_and_takes_a_trusted_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = serve(context)
    url = f"https://localhost:{server.server_address[1]}/file"
    try:
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            client().head(url, headers={})
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the user's own trust, as OpenSSL reads
        with client().stream("GET", url, headers={}) as answer:
            assert b"".join(answer.iter_raw()) == BODY
    finally:
        server.shutdown()


def test_a_proxy_means_httpx_which_serves_the_same_pull(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """With a proxy variable set for the hub, the hub's client is httpx (it speaks to proxies);
    the same HEAD and GET code pulls through it (here forced, with no proxy in the way)."""
    import httpx

    from airpods.http_clients import hub_httpx
    from airpods.hub.client import Hub
    from airpods.hub.hubhttp import HubClient
    from airpods.models.pull import pull
    from tests.hf_server import FakeHub, write_gguf_blob

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy",
                 "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(Hub(endpoint="https://hub.example", token="").http(), HubClient)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert isinstance(Hub(endpoint="https://hub.example", token="").http(), httpx.Client)
    monkeypatch.delenv("HTTPS_PROXY")

    source = write_gguf_blob(tmp_path / "src.gguf", 3 << 20)
    with FakeHub() as fake:
        fake.add("acme/Tiny-GGUF", "tiny.gguf", source)
        hub = Hub(endpoint=fake.url, token="")
        hub._http = hub_httpx()
        got = pull("acme/Tiny-GGUF/tiny.gguf", tmp_path / "vol", hub=hub)
    assert got.names == ["tiny.gguf"]
    assert (tmp_path / "vol" / "tiny.gguf").read_bytes() == source.read_bytes()
