"""The gateway on real parts: a real llama-server in the isolated Podman (started by the real
`airpods` CLI), the real LiteLLM proxy (PyPI, pinned) run as a host process with the config.yaml,
guard module and key files airpods renders (tests/gateway_host.py), and a loopback stand-in
remote that COUNTS the model requests it receives (tests/remote_standin.py).

The gateway container itself is not run here: no registry is reachable for its image. What it
would mount is exactly what the host process gets; only the in-network URL (http://llamacpp:8080)
is swapped for the published loopback port.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from airpods.resolving import resolve
from airpods.secrets import SecretStore
from tests.gateway_host import HostGateway, free_port, run_gateway
from tests.remote_standin import StandinRemote

REMOTE_KEY = "standin-remote-key"
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
PRIVATE = {"X-Airpods-Private": "1"}
CONFIG = """\
[runtime]
network = "{network}"

[services.llamacpp]
image = "{image}"
default_model = "tiny.gguf"
ports = [{{ host = {port}, container = 8080 }}]
volumes.models.source = "{volume}"

[services.llamacpp.command_args]
alias = "tiny"
threads = 1
ctx_size = 2048

[services.open-webui]
enabled = false

[services.gateway]
enabled = true

[services.gateway.remotes.homelab]
base_url = "{remote}"
api_key_env = "STANDIN_KEY"
models = ["big-model"]
price_in = 1.0
price_out = 2.0
timeout_s = 3

[services.gateway.fallbacks]
tiny = ["big-model"]

[services.gateway.clients.laptop]
[services.gateway.clients.phone]
"""


@dataclass
class Stack:
    config: Path
    env: dict[str, str]
    port: int
    podman: object
    remote: StandinRemote
    tmp: Path

    def airpods(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "airpods", "--config", str(self.config),
                               *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def gateway_spec(self, text: str | None = None):
        """The gateway's ContainerSpec as `start` renders it (the same secret store)."""
        config = self.config
        if text is not None:
            config = self.tmp / f"variant-{abs(hash(text))}.toml"
            config.write_text(text)
        with pytest.MonkeyPatch.context() as mp:
            for key in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
                mp.setenv(key, self.env[key])
            mp.setenv("AIRPODS_NO_CACHE", "1")
            store = SecretStore()
            resolved = resolve(config, environ={}, secrets=store)
            store.save()
            return resolved.specs["gateway"], resolved

    def gateway(self, name: str, text: str | None = None, edit: object = None):
        spec, _ = self.gateway_spec(text)
        urls = {"http://llamacpp:8080/v1": f"http://127.0.0.1:{self.port}/v1"}
        return run_gateway(spec, self.tmp / name, urls, {"STANDIN_KEY": REMOTE_KEY}, edit)

    def client_key(self, name: str) -> str:
        out = self.airpods("config", "get", f"services.gateway.clients.{name}.key")
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def start_local(self) -> None:
        out = self.airpods("start", "llamacpp", timeout=300)
        assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def stack(podman_env, llama_image, tiny_model, tmp_path_factory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("gateway")
    volume = f"airpods_it_gw_{tmp.name[-8:].replace('-', '_')}"
    port = free_port()
    network = f"airpods-it-{podman_env.subnet.split('.')[1]}"
    env = dict(podman_env.env)
    env |= {"XDG_CONFIG_HOME": str(tmp / "xdg"), "XDG_DATA_HOME": str(tmp / "xdg-data"),
            "XDG_CACHE_HOME": str(tmp / "xdg-cache")}
    with StandinRemote(["big-model"], api_key=REMOTE_KEY) as remote:
        config = tmp / "config.toml"
        config.write_text(CONFIG.format(image=llama_image, port=port, volume=volume,
                                        network=network, remote=remote.base_url))
        s = Stack(config, env, port, podman_env.podman, remote, tmp)
        added = s.airpods("models", "add", str(tiny_model))
        assert added.returncode == 0, added.stderr
        s.start_local()
        try:
            yield s
        finally:
            s.airpods("stop", "--timeout", "1")


@pytest.fixture(scope="module")
def gw(stack: Stack) -> Iterator[HostGateway]:
    with stack.gateway("main") as gateway:
        yield gateway


def _chat(gw: HostGateway, body: dict | None = None, key: str | None = None,
          headers: dict | None = None, timeout: float = 60) -> httpx.Response:
    with gw.client(key, timeout=timeout) as client:
        return client.post("/v1/chat/completions", json=body or CHAT, headers=headers or {})


def _served_by(resp: httpx.Response) -> str:
    return resp.headers.get("x-litellm-model-id", "")


def _wait_local(gw: HostGateway, within_s: float) -> float:
    """Seconds until a request for `tiny` is served locally again (fails after `within_s`)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within_s:
        resp = _chat(gw)
        if resp.status_code == 200 and _served_by(resp) == "local:llamacpp:tiny":
            return time.monotonic() - t0
        time.sleep(1)
    raise AssertionError(f"not back to local within {within_s}s")


# --- one endpoint, keys -----------------------------------------------------------------------


def test_one_url_one_key_lists_local_and_remote_and_serves_locally(
    stack: Stack, gw: HostGateway
) -> None:
    with gw.client() as client:
        ids = {m["id"] for m in client.get("/v1/models").json()["data"]}
    assert ids == {"tiny", "big-model"}
    before = stack.remote.count
    resp = _chat(gw)
    assert resp.status_code == 200, resp.text
    assert _served_by(resp) == "local:llamacpp:tiny"
    assert resp.json()["usage"]["completion_tokens"] > 0
    # Local: no API cost (LiteLLM leaves the header out when the cost is 0/None).
    assert float(resp.headers.get("x-litellm-response-cost") or 0) == 0.0
    assert stack.remote.count == before
    # The remote, through the same URL and key, priced as configured.
    remote = _chat(gw, {**CHAT, "model": "big-model"})
    assert remote.status_code == 200, remote.text
    assert _served_by(remote) == "remote:homelab:big-model"
    assert remote.json()["system_fingerprint"] == "standin"
    assert float(remote.headers["x-litellm-response-cost"]) == pytest.approx(5e-6 + 8e-6)


def test_keys_no_key_or_unknown_key_is_401_client_key_works(stack: Stack, gw: HostGateway) -> None:
    assert httpx.get(gw.url + "/v1/models", trust_env=False).status_code == 401
    assert _chat(gw, key="not-a-key").status_code == 401
    assert _chat(gw, key=stack.client_key("laptop")).status_code == 200
    # The llama-server behind it stays on loopback only.
    out = stack.airpods("start", "llamacpp", "--dry-run", "--json")
    [svc] = json.loads(out.stdout)["services"]
    assert {p["host_ip"] for p in svc["ports"]} == {"127.0.0.1"}


# --- local first, fallback, back -------------------------------------------------------------


def test_local_stopped_falls_back_then_returns(stack: Stack, gw: HostGateway) -> None:
    assert _served_by(_chat(gw)) == "local:llamacpp:tiny"
    out = stack.airpods("stop", "llamacpp", "--timeout", "1")
    assert out.returncode == 0, out.stderr
    before = stack.remote.count
    resp = _chat(gw)
    assert resp.status_code == 200, resp.text
    assert _served_by(resp) == "remote:homelab:big-model"  # the header names who answered
    assert resp.headers.get("x-litellm-attempted-fallbacks") == "1"
    assert stack.remote.count == before + 1
    status = json.loads(stack.airpods("status", "llamacpp", "--json").stdout)
    route = next(r for r in status["routes"] if r["model"] == "tiny")
    assert (route["route"], route["via"]) == ("fallback", "big-model")
    # Private: never to the remote, whatever the model; a clear 503 instead.
    for body in (CHAT, {**CHAT, "model": "big-model"}, {**CHAT, "model": "no-such-model"}):
        private = _chat(gw, body, headers=PRIVATE)
        assert private.status_code == 503, private.text
        assert "private" in private.json()["error"]["message"]
    # The header fails closed: any value but an explicit no, in any of its copies, is private.
    odd = [[("X-Airpods-Private", v)] for v in ("2", "private", "", "TRUE")]
    for headers in [*odd, [("x-airpods-private", "0"), ("X-Airpods-Private", "1")]]:
        private = _chat(gw, headers=headers)  # type: ignore[arg-type]
        assert private.status_code == 503, (headers, private.text)
    assert stack.remote.count == before + 1
    resp = _chat(gw, headers={"X-Airpods-Private": "false"})  # an explicit no: may fall back
    assert resp.status_code == 200 and _served_by(resp) == "remote:homelab:big-model"
    assert stack.remote.count == before + 2
    stack.start_local()
    _wait_local(gw, within_s=60)
    status = json.loads(stack.airpods("status", "llamacpp", "--json").stdout)
    route = next(r for r in status["routes"] if r["model"] == "tiny")
    assert (route["route"], route["via"]) == ("local", "llamacpp")


def test_kill_9_falls_back_and_private_stays_local(stack: Stack, gw: HostGateway) -> None:
    _wait_local(gw, within_s=60)
    stack.podman("kill", "--signal", "KILL", "airpods-llamacpp-server")
    before = stack.remote.count
    resp = _chat(gw)
    assert resp.status_code == 200 and _served_by(resp) == "remote:homelab:big-model", resp.text
    private = _chat(gw, headers=PRIVATE)
    assert private.status_code == 503, private.text
    assert stack.remote.count == before + 1  # the fallback only, never the private one
    stack.start_local()
    _wait_local(gw, within_s=60)


def test_private_crash_mid_stream_never_reaches_the_remote(stack: Stack, gw: HostGateway) -> None:
    _wait_local(gw, within_s=60)
    before = stack.remote.count
    from tests.tiny_model import SPECIAL_TOKENS, _vocab

    tokens = _vocab()[0]
    # Random weights end early on an end token: bias them away so the stream is still going
    # when the container is killed.
    bias = {str(tokens.index(t)): -100 for t in SPECIAL_TOKENS}
    body = {**CHAT, "max_tokens": 1900, "stream": True, "logit_bias": bias}
    got_first = threading.Event()
    chunks: list[str] = []
    error: list[BaseException] = []

    def consume() -> None:
        try:
            with gw.client(timeout=60) as client, client.stream(
                "POST", "/v1/chat/completions", json=body, headers=PRIVATE
            ) as resp:
                for line in resp.iter_lines():
                    chunks.append(line)
                    got_first.set()
        except httpx.HTTPError as exc:
            error.append(exc)
        finally:
            got_first.set()

    reader = threading.Thread(target=consume)
    reader.start()
    assert got_first.wait(60)
    stack.podman("kill", "--signal", "KILL", "airpods-llamacpp-server")
    reader.join(90)
    assert not reader.is_alive()
    assert not any("standin" in c for c in chunks)
    assert not any(c.strip() == "data: [DONE]" for c in chunks) or error, "finished before the kill"
    assert stack.remote.count == before
    stack.start_local()
    _wait_local(gw, within_s=60)


# --- a fallback configured by mistake; revoked keys ----------------------------------------------


def test_mistaken_fallback_on_private_model_and_revoked_key(stack: Stack) -> None:
    """A hand-built config (validation bypassed): the model is private AND has a fallback, and
    a remote deployment shares its name. The guard alone must keep it local. The same run has
    `phone` removed from the TOML: its key is revoked, and stays revoked when `phone` is added
    back (which gets a new key)."""
    phone = stack.client_key("phone")

    def mistake(config: dict) -> None:
        for entry in config["model_list"]:
            if entry["model_name"] == "tiny":
                entry["model_info"]["airpods_private"] = True
        remote = next(e for e in config["model_list"] if e["model_name"] == "big-model")
        twin = json.loads(json.dumps(remote))
        twin["model_name"] = "tiny"
        twin["model_info"]["id"] = "remote:homelab:tiny-twin"
        config["model_list"].append(twin)
        assert config["router_settings"]["fallbacks"] == [{"tiny": ["big-model"]}]

    text = stack.config.read_text().replace("[services.gateway.clients.phone]\n", "")
    with stack.gateway("mistake", text, edit=mistake) as gw:
        assert _chat(gw, key=phone).status_code == 401  # revoked
        assert _chat(gw, key=stack.client_key("laptop")).status_code == 200
        before = stack.remote.count
        for _ in range(3):  # local up: the twin must never be picked
            resp = _chat(gw)
            assert resp.status_code == 200 and _served_by(resp) == "local:llamacpp:tiny"
        stack.airpods("stop", "llamacpp", "--timeout", "1")
        try:
            resp = _chat(gw)
            assert resp.status_code == 503, resp.text
            assert stack.remote.count == before
        finally:
            stack.start_local()
    renewed = stack.client_key("phone")  # the table is back: a new key, never the revoked one
    assert renewed != phone
    with stack.gateway("phone-again") as gw:
        assert _chat(gw, key=phone).status_code == 401
        assert _chat(gw, key=renewed).status_code == 200


# --- a remote that fails -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["500", "hang", "garbage"])
def test_failing_remote_is_a_clear_error_and_local_keeps_serving(
    stack: Stack, gw: HostGateway, mode: str
) -> None:
    _wait_local(gw, within_s=60)
    stack.remote.mode = mode
    try:
        result: list[httpx.Response] = []
        call = threading.Thread(target=lambda: result.append(
            _chat(gw, {**CHAT, "model": "big-model"}, timeout=60)))
        call.start()
        # While the remote misbehaves, local requests are served.
        local = _chat(gw)
        assert local.status_code == 200 and _served_by(local) == "local:llamacpp:tiny"
        call.join(60)
        assert result, "the gateway did not answer"
        resp = result[0]
        assert resp.status_code >= 400, resp.text
        assert resp.json()["error"]["message"]
    finally:
        stack.remote.mode = "ok"
    # A failing deployment is skipped for cooldown_time (10 s); then the remote is used again.
    deadline = time.monotonic() + 30
    while _chat(gw, {**CHAT, "model": "big-model"}).status_code != 200:
        assert time.monotonic() < deadline, "the remote was not used again after its cooldown"
        time.sleep(1)
