"""`doctor`'s image checks (issue 21, part 5): each enabled service's image, present locally or
not, what backs its pin, and with --pull-check whether the registry has it, against a real
loopback registry (the distribution API with a bearer-token challenge) and against the real
registries, which this machine cannot reach: one line, in seconds."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from airpods.cli.doctor_images import image_checks, pull_checks, split_ref
from airpods.kinds.image_pins import LITELLM, LLAMA_CPP, OPEN_WEBUI, PINS

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(("ref", "parts"), [
    ("ghcr.io/ggml-org/llama.cpp:server-b11382@" + DIGEST,
     ("ghcr.io", "ggml-org/llama.cpp", DIGEST)),
    ("ghcr.io/berriai/litellm:v1.106.12", ("ghcr.io", "berriai/litellm", "v1.106.12")),
    ("docker.io/ollama/ollama:rocm", ("docker.io", "ollama/ollama", "rocm")),
    ("busybox", ("docker.io", "library/busybox", "latest")),
    ("localhost:5000/x/y:1", ("localhost:5000", "x/y", "1")),
])
def test_split_ref(ref: str, parts: tuple[str, str, str]) -> None:
    assert split_ref(ref) == parts


def test_each_image_is_named_with_its_local_state_and_its_pin() -> None:
    images = {"llamacpp": LLAMA_CPP["cpu"].ref, "gateway": LITELLM.ref,
              "mine": "localhost/me/x:1"}
    checks = {c.name: c for c in image_checks(images, lambda ref: ref == LITELLM.ref)}
    here = checks["image (gateway)"]
    assert here.status == "ok" and f"{LITELLM.ref} present locally" in here.found
    assert "UNCONFIRMED" in here.found  # no source shows v1.106.12 published
    llama = checks["image (llamacpp)"]
    assert llama.status == "warn" and "not present locally" in llama.found
    assert "confirmed: llama.cpp b11382" in llama.found and "podman pull" in llama.fix
    assert "set in your config" in checks["image (mine)"].found


def test_every_pin_says_what_backs_it() -> None:
    assert all(p.basis for p in PINS.values())
    assert all(p.confirmed for p in LLAMA_CPP.values())
    # amd64-only images by digest; multi-arch ones by tag (an amd64 digest breaks arm64 hosts)
    assert {a for a, p in LLAMA_CPP.items() if "@sha256:" in p.ref} == {"cuda", "rocm"}
    assert not LITELLM.confirmed and not OPEN_WEBUI.confirmed  # said in doctor and README


class Registry(BaseHTTPRequestHandler):
    """A distribution-API registry: 401 with a Bearer challenge without a token, a token
    endpoint, then 200 for the manifests it holds and 404 for the rest."""

    held = {("/v2/o/held/manifests/1.0"), ("/v2/o/held/manifests/" + DIGEST)}

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/token":
            scope = parse_qs(url.query)["scope"][0]
            body = json.dumps({"token": f"t:{scope}"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(404)
        self.end_headers()

    def do_HEAD(self) -> None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer t:repository:o/"):
            realm = f"http://127.0.0.1:{self.server.server_port}/token"
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="test"')
            self.end_headers()
            return
        self.send_response(200 if self.path in self.held else 404)
        self.end_headers()


@pytest.fixture
def registry():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_pull_check_says_which_images_the_registry_has(registry: str) -> None:
    refs = ["reg.test/o/held:1.0", "reg.test/o/held:9.9@" + DIGEST, "reg.test/o/gone:2.0"]
    checks = {c.name: c for c in pull_checks(refs, base=lambda r: registry)}
    assert checks["registry (reg.test/o/held:1.0)"].status == "ok"
    assert checks[f"registry (reg.test/o/held:9.9@{DIGEST})"].status == "ok"  # by digest
    gone = checks["registry (reg.test/o/gone:2.0)"]
    assert gone.status == "fail" and "does not have it" in gone.found


def test_an_unreachable_registry_is_one_line_in_seconds() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    checks = pull_checks([p.ref for p in PINS.values()], base=lambda r: f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 10
    assert len(checks) == 1 and checks[0].status == "warn"
    assert "unreachable" in checks[0].found and "\n" not in checks[0].found
