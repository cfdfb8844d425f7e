"""Two airpods "machines" on this host, for the peers suite and bench/bench_peers.py.

    a, b = Machine.make(penv_a, ...), Machine.make(penv_b, ...)
    a.write(peers={"b": b.url_for_peers})    # the TOML; `a.start("llamacpp", "gateway")`

Each machine is its own isolated Podman sandbox (tests/sandbox.py: storage root, network,
ports) running a llama-server (alias `tiny`) and a gateway container, both started by
`airpods start`. A machine's gateway is published on this host's own non-loopback address (the
address a LAN peer would use): a container in the other sandbox's rootless network reaches a
port published on that address (through the host), but not one published on 127.0.0.1, which
is the host's loopback, not the container's. No address outside this host is ever contacted.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.sandbox import PodmanEnv, free_ports
from tests.stack_config import airpods_env, llama_config

LLAMA_ARGS = 'alias = "tiny"\nthreads = 1\nctx_size = 512\n'
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}

GATEWAY = """
[services.gateway]
enabled = true
image = "{image}"
ports = [{{ host = {port}, container = 4000, host_ip = "{host_ip}" }}]
routing_strategy = "{strategy}"
[services.gateway.clients.peer]
"""


def lan_address() -> str | None:
    """This host's first global IPv4 address (from `ip`, no packet sent), or None."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    return None


@dataclass
class Machine:
    name: str
    penv: PodmanEnv
    root: Path
    llama_image: str
    litellm_image: str
    host_ip: str
    port: int = 0
    gateway_port: int = 0
    volume: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def make(cls, name: str, penv: PodmanEnv, root: Path, llama_image: str,
             litellm_image: str, host_ip: str, model: Path) -> Machine:
        port, gateway_port = free_ports(2)
        m = cls(name, penv, root, llama_image, litellm_image, host_ip, port, gateway_port,
                f"airpods_it_peer_{secrets.token_hex(4)}")
        root.mkdir(parents=True, exist_ok=True)
        m.env = airpods_env(penv.env, root)
        m.write()
        added = m.airpods("models", "add", str(model))
        assert added.returncode == 0, added.stderr
        return m

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def network(self) -> str:
        return f"airpods-it-{self.penv.subnet.split('.')[1]}"

    @property
    def url(self) -> str:
        """Where the tests (and a peer) reach this machine's gateway."""
        return f"http://{self.host_ip}:{self.gateway_port}"

    def write(self, peers: dict[str, str] | None = None, strategy: str = "least-busy",
              env: dict[str, str] | None = None, extra: str = "") -> None:
        """The TOML: llama-server `tiny`, the gateway, `peers` {name: extra TOML lines
        of the peer's table, its `url` included}, then `extra` (tables of the gateway's)."""
        text = llama_config(self.llama_image, self.port, self.volume, network=self.network,
                            args=LLAMA_ARGS)
        text += GATEWAY.format(image=self.litellm_image, port=self.gateway_port,
                               host_ip=self.host_ip, strategy=strategy)
        for name, lines in (peers or {}).items():
            text += f"\n[services.gateway.peers.{name}]\n{lines}\n"
        self.config.write_text(text + extra)
        self.env.update(env or {})

    def airpods(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "airpods", "--config", str(self.config),
                               *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def start(self, *services: str) -> subprocess.CompletedProcess[str]:
        out = self.airpods("start", *services)
        assert out.returncode == 0, out.stdout + out.stderr
        return out

    def get(self, key: str) -> str:
        out = self.airpods("config", "get", key)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    @property
    def master_key(self) -> str:
        return self.get("services.gateway.env.LITELLM_MASTER_KEY")

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout, trust_env=False,
                            headers={"Authorization": f"Bearer {self.master_key}"})

    def kill(self, service: str) -> None:
        self.penv.podman("kill", f"airpods-{service}-server", check=True)

    def log(self, lines: int = 60) -> str:
        out = self.penv.podman("logs", "--tail", str(lines), "airpods-gateway-server")
        return out.stdout + out.stderr

    def routes(self) -> list[dict]:
        import json

        out = self.airpods("status", "--json")
        return json.loads(out.stdout)["routes"] if out.stdout.strip() else []

    def wait_route(self, deployment: str, state: str, within_s: float) -> float:
        """Seconds until `status --json` shows `deployment` in `state` (fails after)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < within_s:
            if any(r["deployment"] == deployment and r["state"] == state
                   for r in self.routes()):
                return time.monotonic() - t0
            time.sleep(0.5)
        raise AssertionError(f"{deployment} not {state} in {within_s}s: {self.routes()}\n"
                             f"{self.log()}")

    def stop(self) -> None:
        self.airpods("stop", "--timeout", "1")
        self.airpods("stop", "--remove-volumes", "llamacpp")
