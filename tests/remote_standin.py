"""A loopback OpenAI-compatible stand-in for a remote server, that COUNTS what it receives.

    with StandinRemote(models=["big-model"]) as remote:
        remote.base_url          # http://127.0.0.1:PORT/v1
        remote.count             # model requests received (POSTs: they carry prompts)
        remote.listings          # GETs (LiteLLM lists a remote's models on its own)
        remote.mode = "500"      # "ok" | "500" | "hang" | "garbage"

    with ContainerStandin(penv, image, network, ["big-model"], api_key="k") as remote:
        remote.base_url          # http://airpods-it-standin:8000/v1: inside `network`
        remote.count, remote.mode = "500"   # the same, through its control endpoints

No test double of airpods itself: it plays a remote server (a homelab Ollama, a cloud API) for
the real LiteLLM gateway. The container variant runs this file in a container (any image with
python3) on the network the gateway container is on, so the gateway reaches it by name as it
would a host on the LAN; the test reads its counters on a published loopback port. Its answers
say `"model": "<asked>"` and carry `"system_fingerprint": "standin"`, so a test can tell them
from llama-server's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG_S = 30.0
CONTROL = "/_standin/state"  # GET: counters; POST {"mode": ...}: set the mode
CONTAINER_PORT = 8000


class StandinRemote:
    def __init__(self, models: list[str], api_key: str | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.models = list(models)
        self.api_key = api_key
        self.mode = "ok"
        self.count = 0
        self.listings = 0
        self.private_posts = 0  # POSTs that carried X-Airpods-Private (a private_ok peer's)
        self.hop_posts = 0  # POSTs that carried X-Airpods-Hop (sent by a peer gateway)
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> StandinRemote:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _note(self, path: str, headers: dict[str, str], prompt: bool = True) -> None:
        with self._lock:
            if prompt:
                self.count += 1
                lower = {k.lower() for k in headers}
                self.private_posts += "x-airpods-private" in lower
                self.hop_posts += "x-airpods-hop" in lower
            else:
                self.listings += 1
            self.paths.append(path)
            self.headers.append(headers)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        remote = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorized(self) -> bool:
                if remote.api_key is None:
                    return True
                return self.headers.get("Authorization") == f"Bearer {remote.api_key}"

            def do_GET(self) -> None:  # noqa: N802
                if self.path == CONTROL:
                    state = {"count": remote.count, "listings": remote.listings,
                             "mode": remote.mode, "private_posts": remote.private_posts,
                             "hop_posts": remote.hop_posts}
                    return self._send(200, json.dumps(state).encode())
                if self.path == "/health":
                    return self._send(200, b'{"status":"ok"}')
                remote._note(self.path, dict(self.headers), prompt=False)
                data = [{"id": m, "object": "model", "owned_by": "standin"} for m in remote.models]
                self._send(200, json.dumps({"object": "list", "data": data}).encode())

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path == CONTROL:
                    remote.mode = json.loads(raw)["mode"]
                    return self._send(200, b"{}")
                remote._note(self.path, dict(self.headers))
                if not self._authorized():
                    return self._send(401, b'{"error":{"message":"bad key"}}')
                mode = remote.mode
                if mode == "500":
                    return self._send(500, b'{"error":{"message":"stand-in says 500"}}')
                if mode == "hang":
                    time.sleep(HANG_S)
                    return self._send(504, b"{}")
                if mode == "garbage":
                    return self._send(200, b"\x00this is not json{{{", "application/json")
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                model = str(body.get("model", ""))
                if body.get("stream"):
                    return self._stream(model)
                self._send(200, json.dumps(_completion(model)).encode())

            def _stream(self, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for i, word in enumerate(["stand", "-in", " says", " hi"]):
                    chunk = {"id": "standin-1", "object": "chat.completion.chunk",
                             "created": int(time.time()), "model": model,
                             "system_fingerprint": "standin",
                             "choices": [{"index": 0, "delta": {"content": word},
                                          "finish_reason": "stop" if i == 3 else None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "standin-1", "object": "chat.completion", "created": int(time.time()),
        "model": model, "system_fingerprint": "standin",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "stand-in says hi"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
    }


class ContainerStandin:
    """The stand-in, run by python3 in a container of `image` on `network` (alias `name`)."""

    def __init__(self, penv, image: str, network: str, models: list[str],
                 api_key: str | None = None, name: str = "airpods-it-standin") -> None:
        self.penv, self.image, self.network, self.name = penv, image, network, name
        self.models, self.api_key = list(models), api_key
        self.host_port = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.name}:{CONTAINER_PORT}/v1"

    def __enter__(self) -> ContainerStandin:
        from tests.sandbox import free_port

        self.host_port = free_port()
        argv = ["run", "-d", "--replace", "--name", self.name, "--network", self.network,
                "-p", f"127.0.0.1:{self.host_port}:{CONTAINER_PORT}",
                "-v", f"{__file__}:/standin.py:ro", "--entrypoint", "python3", self.image,
                "/standin.py", "--port", str(CONTAINER_PORT), "--models", ",".join(self.models)]
        if self.api_key:
            argv += ["--api-key", self.api_key]
        self.penv.podman(*argv, check=True)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                self._state()
                return self
            if time.monotonic() > deadline:
                logs = self.penv.podman("logs", self.name).stderr
                raise AssertionError(f"the stand-in container did not answer:\n{logs}")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        self.penv.podman("rm", "-f", "-t", "0", self.name)

    def _state(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.host_port}{CONTROL}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=5) as resp:
            return json.loads(resp.read())

    @property
    def count(self) -> int:
        return int(self._state()["count"])

    @property
    def listings(self) -> int:
        return int(self._state()["listings"])

    def state(self) -> dict[str, Any]:
        """count, listings, mode, private_posts, hop_posts: one read."""
        return self._state()

    @property
    def mode(self) -> str:
        return str(self._state()["mode"])

    @mode.setter
    def mode(self, value: str) -> None:
        req = urllib.request.Request(f"http://127.0.0.1:{self.host_port}{CONTROL}",
                                     data=json.dumps({"mode": value}).encode(), method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=5):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description="an OpenAI-compatible stand-in remote")
    parser.add_argument("--port", type=int, default=CONTAINER_PORT)
    parser.add_argument("--models", default="big-model")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    remote = StandinRemote(args.models.split(","), api_key=args.api_key, host="0.0.0.0",
                           port=args.port)
    print(f"stand-in on :{remote.port}", flush=True)
    remote._server.serve_forever()


if __name__ == "__main__":
    main()
