"""The user config and environment the integration tests and the benchmarks (bench/_stack.py)
run airpods with: one llama-server on the locally built image, a tiny model in its own volume,
Open WebUI off, and XDG directories of its own. One place, so a test and a benchmark measure
the same stack."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

LLAMA_CONFIG = """\
[runtime]
network = "{network}"

[services.llamacpp]
image = "{image}"
images = {{ cpu = "{image}" }}
default_model = "{model}"
ports = [{{ host = {port}, container = 8080 }}]
volumes = {{ models = {{ source = "{volume}", target = "/models", mode = "ro" }} }}
{settings}
{args}
[services.open-webui]
enabled = false
"""

# llama-server's flags for a tiny model on a shared 2-core machine.
TINY_ARGS = "threads = 1\nctx_size = 256\n"


def llama_config(image: str, port: int, volume: str, *, network: str,
                 model: str = "tiny.gguf", settings: str = "", args: str = TINY_ARGS) -> str:
    """The TOML text: `settings`, more keys of [services.llamacpp] (TOML lines); `args`, the
    body of its command_args table ("" for none)."""
    table = f"[services.llamacpp.command_args]\n{args}" if args else ""
    return LLAMA_CONFIG.format(network=network, image=image, model=model, port=port,
                               volume=volume, settings=settings, args=table)


def airpods_env(base: Mapping[str, str], root: Path, **extra: str) -> dict[str, str]:
    """`base` (the sandbox's Podman environment) with airpods' config, data and cache under
    `root`: nothing of the user's airpods is read or written."""
    env = dict(base)
    env.update(XDG_CONFIG_HOME=str(root / "xdg-config"), XDG_DATA_HOME=str(root / "xdg-data"),
               XDG_CACHE_HOME=str(root / "xdg-cache"), **extra)
    return env


GATEWAY_TABLES = """
[services.gateway]
enabled = true
image = "{gateway_image}"
ports = [{{ host = {gateway_port}, container = 4000 }}]
{gateway_settings}
[services.gateway.remotes.homelab]
base_url = "{remote_url}"
api_key_env = "STANDIN_KEY"
models = {remote_models}
price_in = 1.0
price_out = 2.0
timeout_s = 3

[services.gateway.fallbacks]
tiny = ["big-model"]

[services.gateway.clients.laptop]
[services.gateway.clients.phone]
"""

# The gateway suites' llama-server: served as `tiny`, room for a long stream, token counters.
GATEWAY_LLAMA_ARGS = 'alias = "tiny"\nthreads = 1\nctx_size = 2048\nmetrics = true\n'


def gateway_config(image: str, port: int, volume: str, *, network: str, gateway_image: str,
                   gateway_port: int, remote_url: str, gateway_settings: str = "",
                   model: str = "tiny.gguf", llama_args: str = GATEWAY_LLAMA_ARGS,
                   remote_models: tuple[str, ...] = ("big-model",),
                   llama_settings: str = "") -> str:
    """llama_config (alias `tiny`) plus the gateway on `gateway_image`: the one TOML of the
    gateway suites (tests/gateway_stack.py) and bench/bench_gateway.py. `gateway_settings`:
    more keys of [services.gateway] (TOML lines); `llama_args`, llamacpp's command_args;
    `llama_settings`, more keys of [services.llamacpp]; `remote_models`, what the remote
    `homelab` serves."""
    import json

    return llama_config(image, port, volume, network=network, model=model,
                        settings=llama_settings, args=llama_args) + GATEWAY_TABLES.format(
        gateway_image=gateway_image, gateway_port=gateway_port, remote_url=remote_url,
        gateway_settings=gateway_settings, remote_models=json.dumps(list(remote_models)))
