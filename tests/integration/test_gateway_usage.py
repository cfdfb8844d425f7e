"""The gateway's usage callback, for real: the gateway airpods renders (config.yaml, the guard
and `airpods_usage.py`, key files) run by the pinned LiteLLM proxy as a host process
(tests/gateway_host.py) in front of a real llama-server (isolated Podman) and a loopback
stand-in remote with prices (tests/remote_standin.py). Requests go through it with the master
key and a client key; the records it appends must carry the response's own token counts,
cost 0 for local and the price for the remote, the backend and the client's name; `airpods
usage` must sum them beside the llama-server tokens that `stop` records. A `kill -9` of the
proxy mid-run loses at most the request in flight, and the records survive a restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from airpods.config import load_config
from airpods.host import HostFacts
from airpods.kinds.render import render_service
from airpods.secrets import SecretStore
from tests.gateway_host import HostGateway, run_gateway
from tests.remote_standin import StandinRemote
from tests.sandbox import free_port

REPO = Path(__file__).resolve().parents[2]
PRICE_IN, PRICE_OUT = 2.0, 8.0  # per million tokens
STANDIN_USAGE = (5, 4)  # what tests/remote_standin.py answers
HOST = HostFacts(accelerator="cpu", reason="test", physical_cores=1, logical_cores=1)

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

[services.gateway]
enabled = true

[services.gateway.remotes.standin]
base_url = "{remote}"
api_key_env = "STANDIN_KEY"
models = ["standin-model"]
price_in = {price_in}
price_out = {price_out}

[services.gateway.clients.laptop]
"""


@dataclass
class Stack:
    config: Path
    env: dict[str, str]
    port: int
    data: Path
    remote: StandinRemote

    def airpods(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "airpods", "--config", str(self.config), *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, cwd=REPO)

    @property
    def usage_file(self) -> Path:
        return self.data / "airpods" / "gateway" / "gateway" / "usage.jsonl"

    def gateway(self) -> tuple[object, str]:
        """The gateway's rendered spec (keys as `start` keeps them), and the laptop's key."""
        loaded = load_config(self.config, host=HOST,
                             secrets=SecretStore(self.data / "airpods" / "secrets"))
        cfg = loaded.config
        spec = render_service("gateway", cfg.services["gateway"], cfg, HOST)
        return spec, str(cfg.services["gateway"].clients["laptop"].key)

    @contextlib.contextmanager
    def running(self, workdir: Path) -> Iterator[HostGateway]:
        spec, _ = self.gateway()
        urls = {"http://llamacpp:8080/v1": f"http://127.0.0.1:{self.port}/v1"}
        extra = {"STANDIN_KEY": "standin-key", "AIRPODS_USAGE_FILE": str(self.usage_file)}
        with run_gateway(spec, workdir, urls, extra_env=extra) as gw:  # type: ignore[arg-type]
            yield gw


@pytest.fixture
def stack(podman_env, llama_image, tiny_model, tmp_path: Path) -> Iterator[Stack]:
    volume = f"airpods_gwu_models_{tmp_path.name[-8:].replace('-', '_')}"
    config = tmp_path / "config.toml"
    port = free_port()
    network = f"airpods-it-{podman_env.subnet.split('.')[1]}"
    env = dict(podman_env.env)
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg"), XDG_DATA_HOME=str(tmp_path / "xdg-data"),
               XDG_CACHE_HOME=str(tmp_path / "xdg-cache"), STANDIN_KEY="standin-key")
    with StandinRemote(["standin-model"], api_key="standin-key") as remote:
        config.write_text(CONFIG.format(image=llama_image, port=port, network=network,
                                        volume=volume, remote=remote.base_url,
                                        price_in=PRICE_IN, price_out=PRICE_OUT))
        s = Stack(config, env, port, tmp_path / "xdg-data", remote)
        added = s.airpods("models", "add", str(tiny_model))
        assert added.returncode == 0, added.stderr
        started = s.airpods("start", "llamacpp")
        assert started.returncode == 0, started.stderr
        s.usage_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            yield s
        finally:
            s.airpods("stop", "--timeout", "1")
            s.airpods("stop", "--remove-volumes", "llamacpp")


def chat(url: str, model: str, key: str, stream: bool = False) -> dict:
    body: dict = {"model": model, "messages": [{"role": "user", "content": "Say hi"}],
                  "max_tokens": 6, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    headers = {"Authorization": f"Bearer {key}"}
    if not stream:
        r = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60,
                       trust_env=False)
        assert r.status_code == 200, r.text
        return r.json()
    usage: dict = {}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers,
                      timeout=60, trust_env=False) as r:
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


def tokens(usage: dict) -> tuple[int, int]:
    return usage["prompt_tokens"], usage["completion_tokens"]


def test_records_match_the_responses_and_usage_sums_them(stack: Stack, tmp_path: Path) -> None:
    _, laptop = stack.gateway()
    with stack.running(tmp_path / "gateway") as gw:
        local = chat(gw.url, "tiny", gw.master_key)
        streamed = chat(gw.url, "tiny", laptop, stream=True)
        priced = chat(gw.url, "standin-model", laptop)
        refused = httpx.post(f"{gw.url}/v1/chat/completions", trust_env=False, timeout=30,
                             headers={"Authorization": "Bearer not-a-key"},
                             json={"model": "standin-model", "messages": []})
        got = wait_records(stack.usage_file, 3)
        time.sleep(1)  # a record for the refused request would be written by now
        got = records(stack.usage_file)
        log = gw.log.read_text()
    assert refused.status_code == 401
    assert stack.remote.count == 1
    assert len(got) == 3, (got, log[-3000:])  # a refused key is no request
    assert all(set(r) == {"ts", "client", "model", "backend", "remote", "deployment",
                          "prompt_tokens", "completion_tokens", "latency_ms", "cost", "ok"}
               for r in got)
    first, second, third = got
    # The local answers: llama-server's own token counts, no cost, its URL; the client's name.
    assert (first["model"], first["backend"], first["client"]) == ("tiny", "local", "master")
    assert (second["model"], second["backend"], second["client"]) == ("tiny", "local", "laptop")
    assert (tokens(first), tokens(second)) == (tokens(local["usage"]), tokens(streamed["usage"]))
    assert all(r["cost"] == 0 and r["remote"] is None and r["ok"] for r in (first, second))
    assert first["deployment"] == f"http://127.0.0.1:{stack.port}/v1"
    # The remote: its usage, priced per million tokens.
    assert (third["model"], third["backend"], third["remote"]) == (
        "standin-model", "remote", "standin")
    assert tokens(third) == tokens(priced["usage"]) == STANDIN_USAGE
    assert third["cost"] == pytest.approx((5 * PRICE_IN + 4 * PRICE_OUT) / 1e6)
    assert third["deployment"] == stack.remote.base_url and third["client"] == "laptop"
    assert all(r["latency_ms"] > 0 and abs(r["ts"] - time.time()) < 600 for r in got)

    # `stop` records llama-server's own counters; `usage` shows both, apart.
    stopped = stack.airpods("stop", "llamacpp")
    assert stopped.returncode == 0, stopped.stderr
    out = stack.airpods("usage", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    rows = {r["key"]: r for r in summary["rows"]}
    assert rows["tiny"]["no_api_cost"] and rows["tiny"]["requests"] == 2
    assert rows["standin-model"]["cost"] == pytest.approx(third["cost"])
    assert summary["total"]["prompt_tokens"] == sum(r["prompt_tokens"] for r in got)
    [server] = summary["servers"]
    assert server["service"] == "llamacpp"
    assert server["completion_tokens"] >= first["completion_tokens"] + second["completion_tokens"]
    by_client = json.loads(stack.airpods("usage", "--by", "client", "--json").stdout)
    assert {r["key"]: r["requests"] for r in by_client["rows"]} == {"laptop": 2, "master": 1}
    text = stack.airpods("usage", "--by", "backend").stdout
    assert "no API cost" in text and "remote" in text, text


def test_kill_9_loses_at_most_the_request_in_flight(stack: Stack, tmp_path: Path) -> None:
    _, laptop = stack.gateway()
    answered = 0
    with stack.running(tmp_path / "gateway") as gw:
        done = threading.Event()

        def load() -> None:
            nonlocal answered
            while not done.is_set():
                try:
                    chat(gw.url, "standin-model", laptop)
                except (httpx.HTTPError, AssertionError):
                    return
                answered += 1

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        deadline = time.monotonic() + 60
        while answered < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(gw.proc.pid, signal.SIGKILL)  # mid-run: requests keep coming
        gw.proc.wait(timeout=10)
        done.set()
        worker.join(timeout=30)
    assert answered >= 15
    before = records(stack.usage_file)  # every line parses: no torn record
    # At most the one request being answered when the proxy died is missing.
    assert answered - 1 <= len(before) <= answered + 1, (answered, len(before))

    with stack.running(tmp_path / "gateway-again") as gw:
        chat(gw.url, "tiny", laptop)
        after = wait_records(stack.usage_file, len(before) + 1)
    assert after[: len(before)] == before  # the restart kept every record
    assert len(after) == len(before) + 1 and after[-1]["backend"] == "local"
    out = stack.airpods("usage", "--json")
    assert json.loads(out.stdout)["total"]["requests"] == len(after)
