"""Smoke test of the integration fixtures: the real llama-server image, in a pod with a published
port on the isolated Podman, serving the tiny model from a named volume to the openai client."""

from __future__ import annotations

import secrets
import socket
import time

import httpx
import openai


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(base_url: str, container, timeout: float = 30) -> float:
    """Poll GET /health until 200; fail fast with the log if the container dies."""
    start = time.monotonic()
    last = "no answer"
    while time.monotonic() - start < timeout:
        container.reload()
        if container.status not in ("created", "running"):
            logs = b"".join(container.logs(stdout=True, stderr=True)).decode(errors="replace")
            raise AssertionError(f"llama-server container is {container.status}:\n{logs[-3000:]}")
        try:
            resp = httpx.get(f"{base_url}/health", timeout=2)
            if resp.status_code == 200:
                return time.monotonic() - start
            last = f"{resp.status_code} {resp.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.1)
    logs = b"".join(container.logs(stdout=True, stderr=True)).decode(errors="replace")
    raise AssertionError(f"/health not 200 after {timeout}s (last: {last}):\n{logs[-3000:]}")


def test_podman_env_is_isolated(podman_env):
    info = podman_env.podman(
        "info", "--format", "{{.Store.GraphRoot}} {{.Host.OCIRuntime.Name}}", check=True
    )
    graph_root, runtime = info.stdout.split()
    assert graph_root.startswith(str(podman_env.base))
    assert runtime == "runc"
    assert podman_env.socket_url.startswith("unix:///")
    with podman_env.client() as client:
        assert client.ping()
        assert client.info()["store"]["graphRoot"] == graph_root


def test_llama_server_in_pod_answers_openai(
    podman_env, podman_client, llama_image, tiny_model, model_volume
):
    tag = secrets.token_hex(3)
    volume = model_volume(f"it-models-{tag}", tiny_model)
    port = _free_port()
    network = podman_client.networks.create(f"it-net-{tag}")
    pod = podman_client.pods.create(
        f"it-pod-{tag}",
        networks={network.name: {}},
        portmappings=[
            {"host_ip": "127.0.0.1", "host_port": port, "container_port": 8080, "protocol": "tcp"}
        ],
    )
    try:
        container = podman_client.containers.create(
            llama_image,
            name=f"it-llama-{tag}",
            pod=pod.id,
            volumes={volume: {"bind": "/models", "mode": "ro"}},
            command=[
                "--model",
                "/models/tiny.gguf",
                "--host",
                "0.0.0.0",
                "--port",
                "8080",
                "--alias",
                "tiny",
            ],
        )
        pod.start()
        container.reload()
        if container.status != "running":
            container.start()
        base_url = f"http://127.0.0.1:{port}"
        waited = _wait_healthy(base_url, container)
        print(f"llama-server healthy after {waited:.2f}s")

        client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", timeout=30)
        assert "tiny" in [model.id for model in client.models.list()]
        chat = client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=8,
        )
        assert chat.choices[0].finish_reason in ("stop", "length")
        assert chat.usage is not None and chat.usage.total_tokens > 0
        assert chat.usage.completion_tokens <= 8
    finally:
        pod.stop(timeout=2)
        pod.remove(force=True)
        network.remove(force=True)
        podman_client.volumes.get(volume).remove(force=True)
