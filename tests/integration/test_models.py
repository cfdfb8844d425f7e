"""`airpods models` and download-on-first-use on real Podman, from a loopback Hugging Face hub
(tests/hf_server.py) serving a real generated GGUF, then served by a real llama-server."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hf_server import FakeHub
from tests.stack_config import TINY_ARGS, airpods_env, llama_config

AUTO_FILE = "qwen2.5-0.5b-instruct-q4_k_m.gguf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cli:
    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config, self.env = config, env

    def __call__(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "airpods", "--config", str(self.config),
                               *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def hub(tiny_model: Path, tmp_path: Path):
    from tests.tiny_model import write_tiny_gguf

    q8 = write_tiny_gguf(tmp_path / "q8.gguf", layers=3, seed=5)
    with FakeHub(redirect=True) as fake:
        fake.add("acme/Tiny-GGUF", "tiny-Q4_K_M.gguf", tiny_model)
        fake.add("acme/Tiny-GGUF", "tiny-Q8_0.gguf", q8)
        # the tiny tier of config/models.toml, played by the tiny model (model_source = auto)
        fake.add("Qwen/Qwen2.5-0.5B-Instruct-GGUF", AUTO_FILE,
                 write_tiny_gguf(tmp_path / "auto.gguf", seed=7))  # its own sha256
        yield fake


@pytest.fixture
def cli(podman_env, llama_image, hub: FakeHub, tmp_path: Path):
    volume = f"airpods_it_pull_{tmp_path.name[-8:].replace('-', '_')}"
    config = tmp_path / "config.toml"
    port = free_port()
    # A network name of its own: aardvark-dns keeps configs by name host-wide.
    network = f"airpods-itm-{secrets.token_hex(4)}"
    config.write_text(llama_config(
        llama_image, port, volume, network=network, model="first-use.gguf",
        settings='model_source = "acme/Tiny-GGUF:Q4_K_M"', args=TINY_ARGS + 'alias = "tiny"\n'))
    env = airpods_env(podman_env.env, tmp_path, HF_ENDPOINT=hub.url)
    env.pop("HF_TOKEN", None)
    c = Cli(config, env)
    c.volume, c.port, c.podman = volume, port, podman_env.podman  # type: ignore[attr-defined]
    yield c
    c("stop", "--timeout", "1")
    podman_env.podman("volume", "rm", "-f", volume)
    podman_env.podman("network", "rm", "-f", network)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_pull_list_info_rm(cli: Cli, hub: FakeHub, tiny_model: Path) -> None:
    listed = cli("models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"volume": cli.volume, "configured": "first-use.gguf",
                                         "models": []}
    assert cli.podman("volume", "exists", cli.volume).returncode == 1  # listing created nothing

    pulled = cli("models", "pull", "acme/Tiny-GGUF:q8_0")
    assert pulled.returncode == 0, pulled.stderr
    assert f"pulled: tiny-Q8_0.gguf in volume {cli.volume}" in pulled.stdout
    assert "pulling tiny-Q8_0.gguf" in pulled.stderr  # plain progress lines off a terminal
    for ref in ("hf://acme/Tiny-GGUF/tiny-Q4_K_M.gguf",):
        assert cli("models", "pull", ref, "--name", "named.gguf").returncode == 0

    data = json.loads(cli("models", "list", "--json").stdout)
    entries = {m["name"]: m for m in data["models"]}
    assert sorted(entries) == ["named.gguf", "tiny-Q8_0.gguf"]
    q8 = entries["tiny-Q8_0.gguf"]
    assert set(q8) == {"name", "size", "architecture", "quantization", "parameters",
                       "context_length", "last_used", "used_by", "damaged"}
    assert (q8["architecture"], q8["quantization"], q8["context_length"]) == ("llama", "F16", 2048)
    assert q8["parameters"] > 0 and q8["last_used"] is None and q8["used_by"] == []
    assert entries["named.gguf"]["size"] == tiny_model.stat().st_size

    info = cli("models", "info", "tiny-Q8_0.gguf", "--json")
    assert info.returncode == 0, info.stderr
    got = json.loads(info.stdout)
    # 3 layers × ctx 256 × 4 K/V heads × head dim 16 × 2 (K and V) × 2 bytes
    assert got["memory"]["kv_cache_bytes"] == 3 * 256 * 4 * 16 * 2 * 2
    assert got["memory"]["weights_bytes"] == q8["size"]
    assert got["memory"]["total_bytes"] == q8["size"] + 3 * 256 * 4 * 16 * 2 * 2
    assert got["fits"]["ram"] is True and got["fits"]["vram"] is None
    assert got["fits"]["advice"].startswith("fits in RAM")

    assert "no model 'nope.gguf'" in one_line(cli("models", "info", "nope.gguf"))
    assert cli("models", "rm", "nope.gguf", "--yes").returncode == 2
    refused = cli("models", "rm", "named.gguf")  # no --yes, no terminal: nothing deleted
    assert refused.returncode != 0
    removed = cli("models", "rm", "named.gguf", "--yes")
    assert removed.returncode == 0, removed.stderr
    names = [m["name"] for m in json.loads(cli("models", "list", "--json").stdout)["models"]]
    assert names == ["tiny-Q8_0.gguf"]

    unknown = cli("models", "pull", "acme/Nope:Q4_K_M")
    assert unknown.returncode == 2 and "no such repository" in one_line(unknown)
    no_quant = cli("models", "pull", "acme/Tiny-GGUF:Q2_K")
    assert "quants available: Q4_K_M, Q8_0" in one_line(no_quant)


def test_first_use_download_offline_and_serving(cli: Cli, hub: FakeHub) -> None:
    from openai import OpenAI

    offline = cli("start", "llamacpp", "--offline")
    assert offline.returncode == 2
    line = offline.stderr.strip().splitlines()[-1]
    assert "--offline forbids downloading" in line
    assert ("airpods models pull acme/Tiny-GGUF:Q4_K_M --service llamacpp "
            "--name first-use.gguf") in line
    assert hub.gets("tiny-Q4_K_M.gguf") == []

    started = cli("start", "llamacpp", timeout=300)
    assert started.returncode == 0, started.stderr
    assert "downloading acme/Tiny-GGUF:Q4_K_M" in started.stderr
    assert len(hub.gets("tiny-Q4_K_M.gguf")) == 1
    key = cli("config", "get", "services.llamacpp.env.LLAMA_API_KEY").stdout.strip()
    client = OpenAI(base_url=f"http://127.0.0.1:{cli.port}/v1", api_key=key)
    chat = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    assert chat.choices[0].finish_reason in ("length", "stop")
    assert chat.usage.completion_tokens > 0

    data = json.loads(cli("models", "list", "--json").stdout)
    [entry] = data["models"]
    assert entry["name"] == "first-use.gguf" and entry["used_by"] == ["llamacpp"]
    assert entry["last_used"] is not None

    # A model a running service uses is never deleted.
    busy = cli("models", "rm", "first-use.gguf", "--yes")
    assert busy.returncode == 2 and "in use by running service llamacpp" in one_line(busy)
    swept = cli("models", "cleanup", "--days", "0", "--yes")
    assert swept.returncode == 0, swept.stderr
    assert "no model unused" in swept.stdout

    # Started again while running: no second download, and the dry run shows the estimate.
    assert cli("start", "llamacpp").returncode == 0
    assert len(hub.gets("tiny-Q4_K_M.gguf")) == 1
    dry = cli("start", "llamacpp", "--dry-run")
    assert "model:    llamacpp: first-use.gguf:" in dry.stdout and "K/V cache at ctx 256" \
        in dry.stdout

    assert cli("stop", "llamacpp", "--timeout", "1").returncode == 0
    swept = cli("models", "cleanup", "--days", "0", "--yes")
    assert "deleted" in swept.stdout and "first-use.gguf" in swept.stdout
    assert json.loads(cli("models", "list", "--json").stdout)["models"] == []


def test_pull_without_a_quant_takes_the_largest_that_fits(cli: Cli, hub: FakeHub) -> None:
    pulled = cli("models", "pull", "acme/Tiny-GGUF")
    assert pulled.returncode == 0, pulled.stderr
    assert "picked Q8_0" in pulled.stderr  # both fit; Q8_0 (3 layers) is the larger
    assert f"pulled: tiny-Q8_0.gguf in volume {cli.volume}" in pulled.stdout
    assert hub.gets("tiny-Q4_K_M.gguf") == []


def test_model_source_auto_downloads_the_tier_and_serves_it(cli: Cli, hub: FakeHub) -> None:
    from openai import OpenAI

    for key, value in (("default_model", AUTO_FILE), ("model_source", "auto")):
        done = cli("config", "set", f"services.llamacpp.{key}", value)
        assert done.returncode == 0, done.stderr
    dry = cli("start", "llamacpp", "--dry-run")
    assert "tier tiny" in dry.stdout and "nothing downloaded" in dry.stdout, dry.stdout
    assert hub.gets(AUTO_FILE) == []
    started = cli("start", "llamacpp", timeout=300)
    assert started.returncode == 0, started.stderr
    [line] = [t for t in started.stderr.splitlines() if "model_source = auto" in t]
    assert "tier tiny" in line and f"downloading {AUTO_FILE}" in line
    assert len(hub.gets(AUTO_FILE)) == 1
    key = cli("config", "get", "services.llamacpp.env.LLAMA_API_KEY").stdout.strip()
    client = OpenAI(base_url=f"http://127.0.0.1:{cli.port}/v1", api_key=key)
    chat = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert chat.choices[0].message is not None
    status = json.loads(cli("status", "llamacpp", "--json").stdout)
    memory = status["services"][0]["memory"]
    assert memory["fits"] is True and memory["estimate_bytes"] > 0
