"""The gateway CONTAINER as `airpods start gateway` creates it, on real Podman.

The image here is the local llama-server image plus a `litellm` script on its PATH (standing
in for LiteLLM, whose real image runs in test_gateway_podman.py) that records what it was given
(environment, argv, the files under /run/secrets) into the usage directory and sleeps.
Everything else is airpods' own: the pod, the mounted secrets, the entry script that exports the
keys, the bind-mounted usage directory, the refusal to start without a remote's key variable,
and the refusal to start (one line, nothing created) when the gateway's image is missing and no
registry answers.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.gateway_host import free_port

FAKE_LITELLM = """#!/bin/sh
# Stands in for LiteLLM's CLI: records what the entry script handed it, then waits.
env > /var/lib/airpods/env.txt
ls /run/secrets > /var/lib/airpods/secrets.txt
echo "$@" > /var/lib/airpods/argv.txt
exec sleep 3600
"""

CONFIG = """\
[runtime]
network = "{network}"

[services.llamacpp]
image = "{llama_image}"
default_model = "tiny.gguf"

[services.open-webui]
enabled = false

[services.gateway]
enabled = true
image = "{image}"
ports = [{{ host = {port}, container = 4000 }}]

[services.gateway.remotes.homelab]
base_url = "http://192.0.2.10:11434/v1"
api_key_env = "GW_TEST_REMOTE_KEY"
models = ["big-model"]
"""


def _image(podman_env, llama_image: str, tmp: Path) -> str:
    ctx = tmp / "ctx"
    ctx.mkdir()
    script = ctx / "litellm"
    script.write_text(FAKE_LITELLM)
    script.chmod(0o755)
    (ctx / "Containerfile").write_text(f"FROM {llama_image}\nCOPY litellm /app/litellm\n")
    name = "localhost/airpods-test/litellm-recorder:1"
    podman_env.podman("build", "-t", name, str(ctx), check=True, timeout=300)
    return name


def test_gateway_container_keys_mounted_not_inspectable(podman_env, llama_image, tmp_path):
    image = _image(podman_env, llama_image, tmp_path)
    network = f"airpods-it-{podman_env.subnet.split('.')[1]}"
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(network=network, llama_image=llama_image, image=image,
                                    port=port))
    env = dict(podman_env.env)
    env |= {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("GW_TEST_REMOTE_KEY", None)

    def airpods(*args: str, extra: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "airpods", "--config", str(config), *args],
                              env={**env, **(extra or {})}, capture_output=True, text=True,
                              timeout=180)

    usage = tmp_path / "data" / "airpods" / "gateway" / "gateway"
    # Without the remote's key variable: one line, exit 2, nothing created.
    refused = airpods("start", "gateway", "--no-wait")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "GW_TEST_REMOTE_KEY" in refused.stderr
    pods = podman_env.podman("pod", "ls", "--format", "{{.Name}}").stdout.split()
    assert "airpods-gateway" not in pods and not usage.exists()

    remote_key = "remote-secret-value-0123456789"
    try:
        started = airpods("start", "gateway", "--no-wait",
                          extra={"GW_TEST_REMOTE_KEY": remote_key})
        assert started.returncode == 0, started.stderr
        assert remote_key not in started.stdout + started.stderr
        deadline = time.monotonic() + 60
        while not (usage / "argv.txt").exists():
            assert time.monotonic() < deadline, "the entry script never ran the gateway"
            time.sleep(0.5)
        time.sleep(0.5)
        assert usage.stat().st_mode & 0o777 == 0o700
        master = airpods("config", "get", "services.gateway.env.LITELLM_MASTER_KEY").stdout.strip()
        llama_key = airpods("config", "get", "services.llamacpp.env.LLAMA_API_KEY").stdout.strip()
        assert len(master) > 20 and len(llama_key) > 20
        # The entry script exported every key from its mounted file, into LiteLLM's process only.
        seen = dict(line.split("=", 1) for line in (usage / "env.txt").read_text().splitlines()
                    if "=" in line)
        assert seen["LITELLM_MASTER_KEY"] == master
        assert seen["AIRPODS_LOCAL_KEY_0"] == llama_key
        assert seen["GW_TEST_REMOTE_KEY"] == remote_key
        assert seen["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
        assert (usage / "argv.txt").read_text().split() == [
            "--config", "/run/secrets/config.yaml", "--host", "0.0.0.0", "--port", "4000"]
        files = set((usage / "secrets.txt").read_text().split())
        assert {"config.yaml", "airpods_guard.py", "airpods-clients.json",
                "env.LITELLM_MASTER_KEY", "env.AIRPODS_LOCAL_KEY_0",
                "env.GW_TEST_REMOTE_KEY"} <= files
        inspect = podman_env.podman("inspect", "airpods-gateway-server", check=True).stdout
        for secret in (master, llama_key, remote_key):
            assert secret not in inspect
        ports = podman_env.podman("ps", "--filter", "name=^airpods-gateway-server$",
                                  "--format", "{{.Ports}}", check=True).stdout.strip()
        assert ports == f"127.0.0.1:{port}->4000/tcp", ports
    finally:
        airpods("stop", "gateway", "--timeout", "1")
        podman_env.podman("rmi", "-f", image)


MISSING = "ghcr.io/berriai/litellm:v1.106.12"  # no registry answers here, and it is not local


def _inventory(podman_env) -> dict[str, list[str]]:
    """Names of what exists in the sandbox Podman, to prove a refused start made nothing."""
    lists = {"pods": ("pod", "ls"), "containers": ("ps", "-a"), "volumes": ("volume", "ls"),
             "networks": ("network", "ls"), "secrets": ("secret", "ls")}
    return {what: sorted(podman_env.podman(*argv, "--format", "{{.Name}}" if what != "containers"
                                           else "{{.Names}}").stdout.split())
            for what, argv in lists.items()}


def test_missing_image_with_no_registry_is_one_line_and_creates_nothing(
    podman_env, llama_image, tmp_path
):
    network = f"airpods-it-{podman_env.subnet.split('.')[1]}x"
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(network=network, llama_image=llama_image, image=MISSING,
                                    port=port))
    assert podman_env.podman("image", "exists", MISSING).returncode != 0
    env = {**podman_env.env, "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "GW_TEST_REMOTE_KEY": "k"}
    before = _inventory(podman_env)
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "airpods", "--config", str(config), "start",
                          "gateway", "--no-wait"], env=env, capture_output=True, text=True,
                         timeout=120)
    took = time.monotonic() - t0
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    # Progress lines (the image chosen, the pull tried) come first; the error is one line.
    errors = [x for x in out.stderr.splitlines() if "cannot be pulled" in x]
    assert len(errors) == 1 and out.stderr.splitlines()[-1] == errors[0], out.stderr
    line = errors[0]
    assert MISSING in line and "services.gateway.image" in line, line
    assert "podman pull" in line and "containers/python-service/build.sh litellm" in line, line
    assert took < 10, (took, line)
    assert _inventory(podman_env) == before
    assert not (tmp_path / "data" / "airpods" / "gateway").exists()
