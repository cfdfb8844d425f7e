"""The gateway as a user runs it: every part a container that `airpods start` creates.

    with gateway_stack(penv, llama_image, litellm_image, tiny_model, tmp) as stack:
        stack.start("gateway")                  # llamacpp, the stand-in remote, then the gateway
        stack.chat()                            # POST /v1/chat/completions with the master key
        stack.remote.count                      # model requests the remote received

One TOML (tests/stack_config.gateway_config) for every gateway suite and the benchmark: a
llama-server (alias `tiny`) from the locally built image, the gateway from the locally built
LiteLLM image (containers/python-service/build.sh litellm), a remote `homelab` serving
`big-model` (tests/remote_standin.py in a container on the same Podman network, reached by name
as a LAN host would be), `tiny` falling back to `big-model`, and clients `laptop` and `phone`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.remote_standin import ContainerStandin
from tests.sandbox import PodmanEnv, free_port_run, free_ports
from tests.stack_config import airpods_env, gateway_config

REMOTE_KEY = "standin-remote-key"
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
PRIVATE = {"X-Airpods-Private": "1"}
LOCAL_ID = "local:llamacpp:tiny"
REMOTE_ID = "remote:homelab:big-model"


@dataclass
class GatewayStack:
    config: Path
    env: dict[str, str]
    port: int  # llama-server's published port
    gateway_port: int
    penv: PodmanEnv
    remote: ContainerStandin
    tmp: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def usage_file(self) -> Path:
        return Path(self.env["XDG_DATA_HOME"]) / "airpods" / "gateway" / "gateway" / "usage.jsonl"

    def airpods(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "airpods", "--config", str(self.config),
                               *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def start(self, *services: str) -> None:
        out = self.airpods("start", *services)
        assert out.returncode == 0, out.stderr

    def config_get(self, key: str) -> str:
        out = self.airpods("config", "get", key)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    @property
    def master_key(self) -> str:
        return self.config_get("services.gateway.env.LITELLM_MASTER_KEY")

    def client_key(self, name: str) -> str:
        return self.config_get(f"services.gateway.clients.{name}.key")

    def client(self, key: str | None = None, timeout: float = 60) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.master_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                            trust_env=False)

    def chat(self, body: dict | None = None, key: str | None = None,
             headers: dict | None = None, timeout: float = 60) -> httpx.Response:
        with self.client(key, timeout=timeout) as client:
            return client.post("/v1/chat/completions", json=body or CHAT, headers=headers or {})

    def local_again(self, within_s: float = 60) -> float:
        """`airpods start llamacpp` (a no-op when it runs), then wait_local: a test that left it
        down does not fail the next one."""
        self.start("llamacpp")
        return self.wait_local(within_s)

    def wait_local(self, within_s: float) -> float:
        """Seconds until a request for `tiny` is served locally (fails after `within_s`)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < within_s:
            with contextlib.suppress(httpx.HTTPError):
                resp = self.chat(timeout=10)
                if resp.status_code == 200 and served_by(resp) == LOCAL_ID:
                    return time.monotonic() - t0
            time.sleep(0.5)
        raise AssertionError(f"not back to local within {within_s}s:\n{self.gateway_log()}")

    def gateway_log(self, lines: int = 40) -> str:
        out = self.penv.podman("logs", "--tail", str(lines), "airpods-gateway-server")
        return out.stdout + out.stderr

    def records(self) -> list[dict]:
        if not self.usage_file.exists():
            return []
        return [json.loads(x) for x in self.usage_file.read_text().splitlines() if x.strip()]

    def wait_records(self, count: int, timeout: float = 20) -> list[dict]:
        """The usage callback runs after the response is sent: give it a moment."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.records()) < count:
            time.sleep(0.1)
        return self.records()


def served_by(resp: httpx.Response) -> str:
    """The deployment that answered (LiteLLM's x-litellm-model-id header)."""
    return resp.headers.get("x-litellm-model-id", "")


def network_of(penv: PodmanEnv) -> str:
    """The airpods network name for this sandbox (its subnets are the sandbox's own)."""
    return f"airpods-it-{penv.subnet.split('.')[1]}"


@contextlib.contextmanager
def gateway_stack(penv: PodmanEnv, llama_image: str, litellm_image: str, model: Path,
                  tmp: Path, replicas: int = 1, **options: str) -> Iterator[GatewayStack]:
    """Write the config, add the model, start llamacpp and the stand-in remote (the gateway is
    left to the caller: `stack.start("gateway")`); stop everything at the end. `options` go to
    tests.stack_config.gateway_config; `replicas` > 1 runs that many llama-servers (llamacpp
    on `stack.port`, llamacpp-2 on the next port, ...)."""
    if replicas > 1:
        port, gateway_port = free_port_run(replicas), free_ports(1)[0]
        while port <= gateway_port < port + replicas:
            gateway_port = free_ports(1)[0]
        options["llama_settings"] = f"replicas = {replicas}\n" + options.get("llama_settings", "")
    else:
        port, gateway_port = free_ports(2)
    volume = f"airpods_it_gw_{secrets.token_hex(4)}"
    network = network_of(penv)
    remote = ContainerStandin(penv, litellm_image, network, ["big-model"], api_key=REMOTE_KEY,
                              name=f"airpods-it-standin-{secrets.token_hex(3)}")
    config = tmp / "config.toml"
    config.write_text(gateway_config(
        llama_image, port, volume, network=network, gateway_image=litellm_image,
        gateway_port=gateway_port, remote_url=remote.base_url, **options))
    env = airpods_env(penv.env, tmp, STANDIN_KEY=REMOTE_KEY)
    stack = GatewayStack(config, env, port, gateway_port, penv, remote, tmp)
    added = stack.airpods("models", "add", str(model))
    assert added.returncode == 0, added.stderr
    try:
        stack.start("llamacpp")  # makes the network the stand-in joins
        with remote:
            yield stack
    finally:
        stack.airpods("stop", "--timeout", "1")
        stack.airpods("stop", "--remove-volumes", "llamacpp")
