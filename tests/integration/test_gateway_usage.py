"""The gateway's usage callback, for real: a LiteLLM proxy (PyPI, pinned, as a host process)
with airpods' `airpods_usage.py` in front of a real llama-server (isolated Podman) and a
loopback stand-in remote with prices. Requests go through the proxy; the records it appends
must carry the response's own token counts, cost 0 for local and the price for the remote,
the backend, the client; `airpods usage` must sum them beside the llama-server's tokens that
`stop` records. A `kill -9` of the proxy mid-run loses at most the request in flight, and the
records survive a restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.sandbox import free_port

REPO = Path(__file__).resolve().parents[2]
CALLBACK = REPO / "airpods" / "kinds" / "gateway_files" / "airpods_usage.py"
PRICE_IN, PRICE_OUT = 2.0, 8.0  # per million tokens
STANDIN_USAGE = (11, 7)
MASTER_KEY = "sk-airpods-test-master"


def litellm_venv() -> Path:
    """The pinned LiteLLM venv (tests/litellm_env.py builds it; here it must exist)."""
    try:
        from tests.litellm_env import ensure_litellm_venv  # type: ignore[import-not-found]
    except ImportError:
        venv = Path.home() / ".cache" / "airpods" / "litellm" / "1.106.12" / "venv"
        if not (venv / ".airpods-complete").exists():
            pytest.fail(f"no LiteLLM venv at {venv}")
        return venv
    return ensure_litellm_venv()


# --- a stand-in remote: OpenAI-compatible, fixed usage, counts what it receives -------------


class StandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _StandInHandler)
        self.requests: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _StandInHandler(BaseHTTPRequestHandler):
    server: StandIn

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._json({"object": "list", "data": [{"id": "standin-model", "object": "model"}]})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.requests.append(body)
        prompt, completion = STANDIN_USAGE
        self._json({
            "id": "chatcmpl-standin", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "standin-model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "hello from the remote"}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        })


@contextlib.contextmanager
def standin() -> Iterator[StandIn]:
    server = StandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# --- the llama-server (real Podman) -------------------------------------------------------------

CONFIG = """\
[runtime]
network = "{network}"

[services.llamacpp]
image = "{image}"
default_model = "tiny.gguf"
ports = [{{ host = {port}, container = 8080 }}]
volumes.models.source = "{volume}"

[services.llamacpp.command_args]
threads = 1
ctx_size = 256
metrics = true

[services.open-webui]
enabled = false
"""


@dataclass
class Stack:
    config: Path
    env: dict[str, str]
    port: int
    data: Path

    def airpods(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "airpods", "--config", str(self.config), *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, cwd=REPO)

    def key(self) -> str:
        out = self.airpods("config", "get", "services.llamacpp.env.LLAMA_API_KEY")
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()


@pytest.fixture
def stack(podman_env, llama_image, tiny_model, tmp_path: Path) -> Iterator[Stack]:
    volume = f"airpods_gwu_models_{tmp_path.name[-8:].replace('-', '_')}"
    config = tmp_path / "config.toml"
    port = free_port()
    network = f"airpods-it-{podman_env.subnet.split('.')[1]}"
    config.write_text(CONFIG.format(image=llama_image, port=port, network=network,
                                    volume=volume))
    env = dict(podman_env.env)
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg"), XDG_DATA_HOME=str(tmp_path / "xdg-data"),
               XDG_CACHE_HOME=str(tmp_path / "xdg-cache"))
    s = Stack(config, env, port, tmp_path / "xdg-data")
    added = s.airpods("models", "add", str(tiny_model))
    assert added.returncode == 0, added.stderr
    started = s.airpods("start", "llamacpp")
    assert started.returncode == 0, started.stderr
    yield s
    s.airpods("stop", "--timeout", "1")
    s.airpods("stop", "--remove-volumes", "llamacpp")


# --- the proxy ------------------------------------------------------------------------------------


def proxy_config(llama_port: int, remote_url: str) -> dict:
    """What the gateway kind renders, reduced to what the callback reads: model_info on each
    model, prices on the remote, the callback in litellm_settings."""
    return {
        "model_list": [
            {"model_name": "tiny",
             "litellm_params": {"model": "openai/tiny",
                                "api_base": f"http://127.0.0.1:{llama_port}/v1",
                                "api_key": "os.environ/LOCAL_KEY"},
             "model_info": {"airpods_backend": "local"}},
            {"model_name": "standin-model",
             "litellm_params": {"model": "openai/standin-model", "api_base": remote_url,
                                "api_key": "os.environ/STANDIN_KEY",
                                "input_cost_per_token": PRICE_IN / 1e6,
                                "output_cost_per_token": PRICE_OUT / 1e6},
             "model_info": {"airpods_backend": "remote", "airpods_remote": "standin"}},
        ],
        "router_settings": {"num_retries": 0},
        "litellm_settings": {"callbacks": ["airpods_usage.usage_logger"],
                             "drop_params": True},
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
    }


@dataclass
class Proxy:
    proc: subprocess.Popen
    url: str
    log: Path


def start_proxy(workdir: Path, port: int, env: dict[str, str]) -> Proxy:
    venv = litellm_venv()
    log = workdir / f"litellm-{port}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "litellm"), "--config", "config.yaml", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"litellm exited {proc.returncode}:\n{log.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200:
                return Proxy(proc, url, log)
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"litellm did not answer in 180 s:\n{log.read_text()[-4000:]}")


def stop_proxy(proxy: Proxy, sig: int = signal.SIGTERM) -> None:
    if proxy.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proxy.proc.pid, sig)
        try:
            proxy.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proxy.proc.pid, signal.SIGKILL)
            proxy.proc.wait(timeout=10)


def chat(url: str, model: str, stream: bool = False, key: str = MASTER_KEY) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hi"}],
            "max_tokens": 6, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    headers = {"Authorization": f"Bearer {key}"}
    if not stream:
        r = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()
    usage: dict = {}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers,
                      timeout=60) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                usage = json.loads(line[6:]).get("usage") or usage
    return {"usage": usage}


def records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def wait_records(path: Path, count: int, timeout: float = 20) -> list[dict]:
    """The callback runs after the response is sent: give it a moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(records(path)) >= count:
            return records(path)
        time.sleep(0.1)
    return records(path) if path.exists() else []


@pytest.fixture
def gateway(stack: Stack, tmp_path: Path) -> Iterator[tuple[Stack, Path, dict, StandIn]]:
    workdir = tmp_path / "gateway"
    workdir.mkdir()
    usage_dir = stack.data / "airpods" / "gateway" / "gateway"
    usage_dir.mkdir(parents=True)
    usage_file = usage_dir / "usage.jsonl"
    shutil.copy(CALLBACK, workdir / "airpods_usage.py")
    with standin() as remote:
        (workdir / "config.yaml").write_text(json.dumps(proxy_config(stack.port, remote.url)))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
               "LANG": "C.UTF-8", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "LITELLM_MASTER_KEY": MASTER_KEY, "LOCAL_KEY": stack.key(),
               "STANDIN_KEY": "standin-key", "AIRPODS_USAGE_FILE": str(usage_file),
               "NO_PROXY": "*"}
        yield stack, usage_file, env, remote


def test_records_match_the_responses_and_usage_sums_them(gateway, tmp_path: Path) -> None:
    stack, usage_file, env, remote = gateway
    proxy = start_proxy(tmp_path / "gateway", free_port(), env)
    try:
        local = chat(proxy.url, "tiny")
        streamed = chat(proxy.url, "tiny", stream=True)
        priced = chat(proxy.url, "standin-model")
        got = wait_records(usage_file, 3)
    finally:
        stop_proxy(proxy)
    assert len(remote.requests) == 1
    assert len(got) == 3, (got, proxy.log.read_text()[-3000:])
    by_kind = {(r["model"], r["backend"]): r for r in got}
    first = got[0]
    assert set(first) == {"ts", "client", "model", "backend", "remote", "deployment",
                          "prompt_tokens", "completion_tokens", "latency_ms", "cost", "ok"}
    # The local answers: llama-server's own token counts, no cost, its URL.
    loc = [r for r in got if r["backend"] == "local"]
    assert [(r["prompt_tokens"], r["completion_tokens"]) for r in loc] == [
        (local["usage"]["prompt_tokens"], local["usage"]["completion_tokens"]),
        (streamed["usage"]["prompt_tokens"], streamed["usage"]["completion_tokens"])]
    assert all(r["cost"] == 0 and r["remote"] is None and r["ok"] for r in loc)
    assert loc[0]["deployment"] == f"http://127.0.0.1:{stack.port}/v1"
    # The remote: its usage, priced per million tokens.
    rem = by_kind[("standin-model", "remote")]
    assert (rem["prompt_tokens"], rem["completion_tokens"]) == STANDIN_USAGE
    assert (priced["usage"]["prompt_tokens"], priced["usage"]["completion_tokens"]) == (
        STANDIN_USAGE)
    assert rem["cost"] == pytest.approx((11 * PRICE_IN + 7 * PRICE_OUT) / 1e6)
    assert rem["remote"] == "standin" and rem["deployment"] == remote.url
    assert all(r["latency_ms"] > 0 and r["ts"] > time.time() - 600 for r in got)
    clients = {r["client"] for r in got}
    assert len(clients) == 1, clients

    # `stop` records llama-server's own counters; `usage` shows both, apart.
    stopped = stack.airpods("stop", "llamacpp")
    assert stopped.returncode == 0, stopped.stderr
    out = stack.airpods("usage", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    rows = {r["key"]: r for r in summary["rows"]}
    assert rows["tiny"]["no_api_cost"] and rows["tiny"]["requests"] == 2
    assert rows["standin-model"]["cost"] == pytest.approx(rem["cost"])
    assert summary["total"]["prompt_tokens"] == sum(r["prompt_tokens"] for r in got)
    [server] = summary["servers"]
    assert server["service"] == "llamacpp" and server["completion_tokens"] >= sum(
        r["completion_tokens"] for r in loc)
    text = stack.airpods("usage", "--by", "backend").stdout
    assert "no API cost" in text and "remote" in text


def test_kill_9_loses_at_most_the_request_in_flight(gateway, tmp_path: Path) -> None:
    stack, usage_file, env, _ = gateway
    workdir = tmp_path / "gateway"
    proxy = start_proxy(workdir, free_port(), env)
    answered = 0
    done = threading.Event()

    def load() -> None:
        nonlocal answered
        while not done.is_set():
            try:
                chat(proxy.url, "standin-model")
            except (httpx.HTTPError, AssertionError):
                return
            answered += 1

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    deadline = time.monotonic() + 60
    while answered < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proxy.proc.pid, signal.SIGKILL)  # mid-run: requests keep coming
    proxy.proc.wait(timeout=10)
    done.set()
    worker.join(timeout=30)
    assert answered >= 15
    before = records(usage_file)  # every line parses: no torn record
    # At most the one request being answered when the proxy died is missing.
    assert answered - 1 <= len(before) <= answered + 1, (answered, len(before))

    again = start_proxy(workdir, free_port(), env)
    try:
        chat(again.url, "tiny")
        after = wait_records(usage_file, len(before) + 1)
    finally:
        stop_proxy(again)
    assert after[: len(before)] == before  # the restart kept every record
    assert len(after) == len(before) + 1 and after[-1]["backend"] == "local"
    out = stack.airpods("usage", "--json")
    assert json.loads(out.stdout)["total"]["requests"] == len(after)
