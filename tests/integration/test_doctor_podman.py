"""`airpods doctor --json` against the isolated Podman: the shape, the model check, a port held
by another program, and the exit code that follows."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.sandbox import free_port
from tests.stack_config import airpods_env, llama_config


def doctor(podman_env, tmp_path: Path, model: str, port: int, volume: str, image: str,
           *extra: str):
    config = tmp_path / f"{model}.toml"
    config.write_text(llama_config(image, port, volume, network="airpods-it-doctor",
                                   model=model, args=""))
    env = airpods_env(podman_env.env, tmp_path, AIRPODS_ACCELERATOR="cpu")
    result = subprocess.run(
        [sys.executable, "-m", "airpods", "--config", str(config), "doctor", "--json", *extra],
        env=env, capture_output=True, text=True, timeout=120)
    data = json.loads(result.stdout)
    return result.returncode, data, {c["name"]: c for c in data["checks"]}


def test_doctor_json_on_real_podman(podman_env, llama_image, tiny_model, model_volume,
                                    tmp_path: Path) -> None:
    volume = f"airpods_it_doctor_{tmp_path.name[-6:].replace('-', '_')}"
    model_volume(volume, tiny_model)
    port = free_port()
    code, data, checks = doctor(podman_env, tmp_path, tiny_model.name, port, volume, llama_image)
    assert set(data) == {"ok", "blocking", "checks", "notes"}
    for check in data["checks"]:
        assert set(check) == {"name", "status", "found", "fix"}
        assert check["status"] in ("ok", "warn", "fail")
    assert checks["config"]["status"] == "ok"
    assert checks["podman"]["found"].startswith("podman ")
    assert checks["api socket"]["found"] == podman_env.socket_url
    assert checks["cgroups and runtime"]["found"].startswith("cgroups v")
    assert checks["model (llamacpp)"]["status"] == "ok"
    assert tiny_model.name in checks["model (llamacpp)"]["found"]
    # The tiny model's weights + K/V cache fit any machine that runs this test.
    fit = checks["fit (llamacpp)"]
    assert fit["status"] == "ok" and fit["found"].endswith(": fits"), fit
    assert checks[f"port 127.0.0.1:{port} (llamacpp)"]["found"] == "free"
    assert {"disk (images)", "disk (volumes)"} <= set(checks)
    image = checks["image (llamacpp)"]  # the locally built image, named by the config
    assert image["status"] == "ok", image
    assert image["found"] == f"{llama_image} present locally; set in your config"
    assert not any(name.startswith("registry") for name in checks)  # only with --pull-check
    assert code == (1 if data["blocking"] else 0) and data["ok"] == (not data["blocking"])

    # An image Podman lacks, with --pull-check and a registry that cannot be reached (a closed
    # loopback port: tests send nothing off this machine): named, not present, and the registry
    # check is one line (it gives up within seconds).
    missing = "127.0.0.1:9/airpods/llama-server:missing"
    started = time.monotonic()
    code, data, checks = doctor(podman_env, tmp_path, tiny_model.name, port, volume, missing,
                                "--pull-check")
    assert checks["image (llamacpp)"]["status"] == "warn"
    assert checks["image (llamacpp)"]["found"].startswith(f"{missing} not present locally")
    registry = [c for name, c in checks.items() if name.startswith("registry")]
    assert len(registry) == 1, registry
    assert registry[0]["name"] == "registry", registry  # one line for the whole check
    assert "unreachable" in registry[0]["found"] and time.monotonic() - started < 60

    # A missing model and a port held by another program both block start.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        code, data, checks = doctor(podman_env, tmp_path, "absent.gguf", port, volume,
                                    llama_image)
    assert code == 1
    assert {"model (llamacpp)", f"port 127.0.0.1:{port} (llamacpp)"} <= set(data["blocking"])
    assert "airpods models add" in checks["model (llamacpp)"]["fix"]
    assert checks[f"port 127.0.0.1:{port} (llamacpp)"]["found"] == "in use by another program"



ROUTER_CONFIG = """\
[runtime]
network = "airpods-it-doctor"

[services.llamacpp]
mode = "router"
image = "{image}"
images = {{ cpu = "{image}" }}
model_source = "hf://org/repo/{model}"
ports = [{{ host = {port}, container = 8080 }}]
volumes = {{ models = {{ source = "{volume}", target = "/models", mode = "ro" }} }}

[services.llamacpp.models.here]
file = "{model}"

[services.llamacpp.models.gone]
file = "not-there.gguf"

[services.open-webui]
enabled = false
"""


def test_doctor_fails_for_a_missing_preset_and_survives_a_hostile_gguf(
        podman_env, llama_image, model_volume, tmp_path: Path) -> None:
    from tests.unit.test_gguf_hostile import HOSTILE

    volume = f"airpods_it_doctor_r{tmp_path.name[-6:].replace('-', '_')}"
    deep = tmp_path / "deep.gguf"
    deep.write_bytes(HOSTILE["deep-nesting"])  # arrays nested 100k deep: once a RecursionError
    model_volume(volume, deep)
    config = tmp_path / "router.toml"
    config.write_text(ROUTER_CONFIG.format(image=llama_image, model="deep.gguf",
                                           port=free_port(), volume=volume))
    env = airpods_env(podman_env.env, tmp_path, AIRPODS_ACCELERATOR="cpu")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "airpods", "--config", str(config), *args],
                              env=env, capture_output=True, text=True, timeout=120)

    result = run("doctor", "--json")
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    data = json.loads(result.stdout)
    checks = {c["name"]: c for c in data["checks"]}
    assert result.returncode == 1, result.stdout
    gone = checks["model (llamacpp: the file of model 'gone')"]
    assert gone["status"] == "fail" and "start refuses" in gone["found"], gone
    assert "start downloads" not in result.stdout
    assert checks["model (llamacpp: the file of model 'here')"]["status"] == "ok"
    listed = run("models", "list")
    assert listed.returncode == 0, listed.stderr
    assert "deep.gguf" in listed.stdout and "damaged: " in listed.stdout
