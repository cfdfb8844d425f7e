"""A loopback OpenAI-compatible stand-in for a remote server, that COUNTS what it receives.

    with StandinRemote(models=["big-model"]) as remote:
        remote.base_url          # http://127.0.0.1:PORT/v1
        remote.count             # model requests received (POSTs: they carry prompts)
        remote.listings          # GETs (LiteLLM lists a remote's models on its own)
        remote.mode = "500"      # "ok" | "500" | "hang" | "garbage"

No test double of airpods itself: it plays a remote server (a homelab Ollama, a cloud API) for
the real LiteLLM gateway. Its answers say `"model": "<asked>"` and carry `"system_fingerprint":
"standin"`, so a test can tell them from llama-server's.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG_S = 30.0


class StandinRemote:
    def __init__(self, models: list[str], api_key: str | None = None) -> None:
        self.models = list(models)
        self.api_key = api_key
        self.mode = "ok"
        self.count = 0
        self.listings = 0
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
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
                if self.path == "/health":
                    return self._send(200, b'{"status":"ok"}')
                remote._note(self.path, dict(self.headers), prompt=False)
                data = [{"id": m, "object": "model", "owned_by": "standin"} for m in remote.models]
                self._send(200, json.dumps({"object": "list", "data": data}).encode())

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
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
