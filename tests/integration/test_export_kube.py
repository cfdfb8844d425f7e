"""`airpods export kube` played for real by this machine's `podman kube play` (Podman 4.3.1).

The recipe the README gives Podman users: export with `--podman-secrets DIR`, create the Podman
secrets from DIR, `podman kube play --start=false` (it creates the PVC's volume; it refuses a
volume that already exists), `podman volume import` the model into that volume, then start the
pod. The
llama-server pod must become ready, answer /v1/models with the key and 401 without it.

Two ways for the key, both played: the env secret (`secretKeyRef`, today's LLAMA_API_KEY) from a
real config, and a secret file (`SecretFile` + `--api-key-file`, a hand-made spec) mounted from a
secret volume.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx

from airpods.export.kube import render_kube
from airpods.record import replace
from airpods.spec import ContainerSpec, Health, Mount, PortMapping, SecretFile, ServingSettings
from tests.sandbox import free_port
from tests.stack_config import airpods_env, llama_config


def _wait_ready(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready after {timeout}s: {last}")


def _validate(path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", "1.30.0", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _play(podman_env, yaml_path: Path, secrets: list[tuple[str, Path]], fill, pod: str) -> None:
    for name, path in secrets:
        podman_env.podman("secret", "create", name, str(path), check=True)
    # Created, not started: the PVC's volume exists now and can be filled.
    podman_env.podman("kube", "play", "--start=false", str(yaml_path), check=True, timeout=180)
    fill()
    podman_env.podman("pod", "start", pod, check=True)


def _import_model(podman_env, volume: str, model: Path, tmp_path: Path) -> None:
    """The README's way: `podman volume import VOLUME model.tar`."""
    archive = tmp_path / "models.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(model, arcname=model.name)
    podman_env.podman("volume", "import", volume, str(archive), check=True)


def _assert_key_guards(port: int, key: str, alias: str) -> None:
    base = f"http://127.0.0.1:{port}"
    _wait_ready(f"{base}/health")
    denied = httpx.get(f"{base}/v1/models", timeout=10)
    assert denied.status_code == 401, denied.text
    wrong = httpx.get(f"{base}/v1/models", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401, wrong.text
    allowed = httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {key}"},
                        timeout=10)
    assert allowed.status_code == 200, allowed.text
    assert [m["id"] for m in allowed.json()["data"]] == [alias]


def _down(podman_env, yaml_path: Path, secrets: list[str], volume: str) -> None:
    podman_env.podman("kube", "down", str(yaml_path), timeout=120)
    for name in secrets:
        podman_env.podman("secret", "rm", name)
    podman_env.podman("volume", "rm", "-f", volume)


def test_exported_llama_server_plays_under_podman(
    podman_env, llama_image, tiny_model, model_volume, tmp_path
) -> None:
    port = free_port()
    suffix = tmp_path.name[-6:].replace("-", "_").lower()
    volume = f"airpods_it_kube_{suffix}"
    pvc = volume.replace("_", "-")
    pod = f"airpods-it-kube-{suffix.replace('_', '-')}"
    config = tmp_path / "config.toml"
    config.write_text(llama_config(llama_image, port, volume, network="airpods-it-kube",
                                   settings=f'pod = "{pod}"'))
    env = airpods_env(podman_env.env, tmp_path, AIRPODS_ACCELERATOR="cpu")

    def airpods(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "airpods", "--config", str(config), *args],
                              env=env, capture_output=True, text=True, timeout=120)

    full = tmp_path / "stack.yaml"
    exported = airpods("export", "kube", "llamacpp", "-o", str(full))
    assert exported.returncode == 0, exported.stderr
    _validate(full)

    podman_yaml = tmp_path / "podman.yaml"
    secrets_dir = tmp_path / "secrets"
    exported = airpods("export", "kube", "llamacpp", "-o", str(podman_yaml),
                       "--podman-secrets", str(secrets_dir), "--json")
    assert exported.returncode == 0, exported.stderr
    summary = json.loads(exported.stdout)
    [secret] = summary["secrets"]
    assert secret["usage"] == "file"  # the key is a mounted file, as `start` does it
    assert {d["kind"] for d in summary["documents"]} == {
        "PersistentVolumeClaim", "Service", "Deployment"}
    key = airpods("config", "get", "services.llamacpp.env.LLAMA_API_KEY").stdout.strip()
    assert len(key) >= 32
    # The key is in the Secret payload only: never in the YAML played.
    assert key not in podman_yaml.read_text()
    assert key not in full.read_text()  # base64 in the Secret document, never in clear

    # The secret `airpods start` (and the quadlets) keep, with the bare key, already on this
    # host: the kube secret has a name of its own, so neither replaces the other.
    dry = json.loads(airpods("start", "llamacpp", "--dry-run", "--json").stdout)
    started = dry["services"][0]["podman"][0].split()[-2]  # `... podman secret create NAME -`
    assert started == "airpods-llamacpp-llama-api-key"
    ours = podman_env.podman("secret", "inspect", started).returncode != 0
    if ours:  # else left by another test's `start`: compared all the same
        bare = tmp_path / "bare-key"
        bare.write_text(key)
        podman_env.podman("secret", "create", started, str(bare), check=True)
    started_id = podman_env.podman("secret", "inspect", "--format", "{{.ID}}", started).stdout
    assert secret["name"] != started and secret["name"].startswith("airpods-kube-")
    try:
        _play(podman_env, podman_yaml, [(secret["name"], Path(secret["file"]))],
              lambda: _import_model(podman_env, pvc, tiny_model, tmp_path), f"{pod}-pod-0")
        try:
            _assert_key_guards(port, key, "tiny")
        finally:
            _down(podman_env, podman_yaml, [secret["name"]], pvc)
        after = podman_env.podman("secret", "inspect", "--format", "{{.ID}}", started).stdout
        assert after == started_id  # untouched
    finally:
        if ours:
            podman_env.podman("secret", "rm", started)


def test_secret_file_spec_plays_under_podman(
    podman_env, llama_image, tiny_model, model_volume, tmp_path
) -> None:
    """A spec as `start` renders it once keys leave env: SecretFile + --api-key-file."""
    port = free_port()
    suffix = tmp_path.name[-6:].replace("_", "-").lower()
    key = "file-key-" + suffix + "-0123456789abcdef0123456789"
    spec = ContainerSpec(
        service="llamafile", kind="llama-server", image=llama_image, image_reason="test",
        accelerator="cpu", pod=f"airpods-it-kfile-{suffix}", container="c", network="n",
        network_aliases=(f"llamafile-{suffix}",),
        ports=(PortMapping("127.0.0.1", port, 8080),),
        mounts=(Mount(f"airpods_it_kfile_{suffix}", "/models", "ro"),),
        env={},
        command=("--model", "/models/tiny.gguf", "--alias", "tiny-file", "--host", "0.0.0.0",
                 "--port", "8080", "--threads", "1", "--ctx-size", "256",
                 "--api-key-file", "/run/secrets/llama-api-key"),
        secret_files=(SecretFile(f"airpods-llamafile-{suffix}-llama-api-key",
                                 "/run/secrets/llama-api-key", key),),
        cap_drop=("ALL",), security_opt=("no-new-privileges",),
        health=Health("/health", 200, 60, 1.0, port),
        serving=ServingSettings(model="/models/tiny.gguf", alias="tiny-file", ctx_size=256,
                                api_keys=key),
    )
    spec = replace(spec, config_hash="0")
    result = render_kube([spec])
    [podman_secret] = result.podman_secrets
    assert podman_secret.usage == "file"
    yaml_path = tmp_path / "file.yaml"
    yaml_path.write_text(result.text(secrets=False))
    full = tmp_path / "full.yaml"
    full.write_text(result.text())
    _validate(full)
    payload = tmp_path / "secret.json"
    payload.write_text(podman_secret.payload)
    pvc = f"airpods-it-kfile-{suffix}"
    _play(podman_env, yaml_path, [(podman_secret.name, payload)],
          lambda: model_volume(pvc, tiny_model), f"{spec.pod}-pod-0")
    try:
        _assert_key_guards(port, key, "tiny-file")
        inspect = podman_env.podman("inspect", f"{spec.pod}-pod-0-llamafile", check=True)
        assert key not in inspect.stdout  # a mounted secret, not env: inspect does not show it
    finally:
        _down(podman_env, yaml_path, [podman_secret.name], pvc)

