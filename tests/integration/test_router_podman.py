"""Router mode on real Podman: one llama-server serving two real GGUFs, loaded on demand.

The locally built llama-server image (llama-cpp-python 0.3.36 source) in an isolated Podman,
two tiny generated GGUFs with different weights, the `airpods` CLI in a subprocess and the
official `openai` client, as a user would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration.test_lifecycle import Stack
from tests.sandbox import free_port

CONFIG = """\
[runtime]
network = "airpods-it"

[services.open-webui]
enabled = false

[services.llamacpp]
image = "{image}"
mode = "router"
ports = [{{ host = {port}, container = 8080 }}]
volumes.models.source = "{volume}"
# Fail in a minute, not in the default 15: a tiny model loads in well under a second.
health = {{ path = "/health", expected_status = 200, timeout_s = 60, interval_s = 1.0 }}

[services.llamacpp.command_args]
threads = 1
ctx_size = 256

[services.llamacpp.router]
models_max = 1
{router}
"""
PRESETS = """
[services.llamacpp.models.alpha]
file = "alpha.gguf"
command_args = { ctx_size = 256 }

[services.llamacpp.models.beta]
file = "beta.gguf"
command_args = { ctx_size = 384 }
"""


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """alpha.gguf and beta.gguf (different seeds), and a truncated copy (GGUF magic, no body)."""
    from tests.tiny_model import write_tiny_gguf

    d = tmp_path_factory.mktemp("router-models")
    out = {name: write_tiny_gguf(d / f"{name}.gguf", seed=seed)
           for name, seed in (("alpha", 1), ("beta", 2))}
    out["broken"] = d / "broken.gguf"
    out["broken"].write_bytes(out["alpha"].read_bytes()[:4096])
    return out


@pytest.fixture
def make_stack(podman_env, llama_image, model_volume, ggufs, tmp_path) -> Callable[..., Stack]:
    stacks: list[Stack] = []

    def make(router: str = "", presets: str = PRESETS, files: tuple[str, ...] = ("alpha", "beta"),
             extra: str = "") -> Stack:
        volume = f"airpods_it_router_{tmp_path.name[-8:].replace('-', '_')}"
        for name in files:
            model_volume(volume, ggufs[name])
        config = tmp_path / "config.toml"
        port = free_port()
        config.write_text(CONFIG.format(image=llama_image, port=port, volume=volume,
                                        router=router) + presets + extra)
        env = dict(podman_env.env)
        for var, sub in (("XDG_CONFIG_HOME", "xdg"), ("XDG_DATA_HOME", "xdg-data"),
                         ("XDG_CACHE_HOME", "xdg-cache")):
            env[var] = str(tmp_path / sub)
        stack = Stack(config, env, port, 0, podman_env.podman)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.airpods("stop", "--timeout", "1")


def start(stack: Stack, *args: str) -> str:
    """`airpods start llamacpp`, asserted; its stderr. On failure, what answers inside the pod."""
    started = stack.airpods("start", "llamacpp", *args)
    if started.returncode != 0:
        inside = stack.podman("exec", "airpods-llamacpp-server", "/bin/busybox", "wget", "-qO-",
                              "-T", "3", "http://127.0.0.1:8080/health")
        pytest.fail(f"start failed:\n{started.stderr}\n/health from inside the container: "
                    f"rc {inside.returncode} {inside.stdout} {inside.stderr}")
    return started.stderr


def states(stack: Stack) -> dict[str, str]:
    """{id: status.value} straight from the router's GET /models (not through airpods)."""
    resp = httpx.get(f"{stack.base}/models",
                     headers={"Authorization": f"Bearer {stack.api_key()}"}, timeout=5)
    assert resp.status_code == 200, resp.text
    return {m["id"]: m["status"]["value"] for m in resp.json()["data"]}


def router_args(stack: Stack, model_id: str) -> list[str]:
    resp = httpx.get(f"{stack.base}/models",
                     headers={"Authorization": f"Bearer {stack.api_key()}"}, timeout=5)
    return next(m["status"]["args"] for m in resp.json()["data"] if m["id"] == model_id)


def wait_for(predicate: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def chat(stack: Stack, model: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{stack.base}/v1", api_key=stack.api_key())
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert reply.choices[0].finish_reason in ("length", "stop")
    assert reply.usage.completion_tokens > 0


def test_a_chat_loads_its_model_and_evicts_the_other(make_stack) -> None:
    from openai import OpenAI

    stack = make_stack()
    start(stack)
    assert states(stack) == {"alpha": "unloaded", "beta": "unloaded"}
    client = OpenAI(base_url=f"{stack.base}/v1", api_key=stack.api_key())
    assert sorted(m.id for m in client.models.list().data) == ["alpha", "beta"]

    chat(stack, "alpha")
    assert states(stack) == {"alpha": "loaded", "beta": "unloaded"}
    chat(stack, "beta")  # models_max = 1: alpha makes room
    assert states(stack) == {"alpha": "unloaded", "beta": "loaded"}
    assert "--ctx-size" in (args := router_args(stack, "beta")) and "384" in args

    # The INI reached the container read-only, as a mounted secret: not in its argv or env.
    inspected = stack.podman("inspect", "airpods-llamacpp-server").stdout
    assert "--models-preset" in inspected and "beta.gguf" not in inspected
    assert "airpods-llamacpp-models-preset" in stack.podman("secret", "ls").stdout


def test_models_load_unload_and_status_json(make_stack) -> None:
    stack = make_stack()
    start(stack)

    loaded = stack.airpods("models", "load", "beta")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith("beta loaded in ") and "(beta.gguf)" in loaded.stdout
    assert states(stack) == {"alpha": "unloaded", "beta": "loaded"}

    status = stack.airpods("status", "llamacpp", "--json")
    assert status.returncode == 0, status.stderr
    row = json.loads(status.stdout)["services"][0]
    assert row["health"] == "ready" and row["model"] is None
    assert row["models"] == [{"id": "alpha", "state": "unloaded", "file": "alpha.gguf"},
                             {"id": "beta", "state": "loaded", "file": "beta.gguf"}]
    table = stack.airpods("status", "llamacpp")
    assert "llamacpp models: alpha unloaded (alpha.gguf), beta loaded (beta.gguf)" in table.stdout

    again = stack.airpods("models", "load", "beta", "--service", "llamacpp")
    assert again.returncode == 0 and again.stdout.strip() == "beta is already loaded (beta.gguf)"
    unloaded = stack.airpods("models", "unload", "beta")
    assert unloaded.returncode == 0, unloaded.stderr
    assert unloaded.stdout.strip() == "beta unloaded"
    assert states(stack) == {"alpha": "unloaded", "beta": "unloaded"}

    unknown = stack.airpods("models", "load", "gamma")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.strip().splitlines() == [
        "airpods: unknown model 'gamma' in llamacpp (its models: alpha, beta)"]


def test_start_waits_for_preload_and_applies_an_edited_preset(make_stack) -> None:
    stack = make_stack(router='preload = ["alpha"]')
    assert "model 'alpha' loaded" in start(stack)
    assert states(stack)["alpha"] == "loaded"  # no wait here: start already waited
    first = stack.container_id("airpods-llamacpp-server")
    chat(stack, "beta")
    assert "384" in router_args(stack, "beta")

    edited = stack.airpods("config", "set", "services.llamacpp.models.beta.command_args.ctx_size",
                           "512")
    assert edited.returncode == 0, edited.stderr
    start(stack)
    assert stack.container_id("airpods-llamacpp-server") != first  # the INI is in the hash
    args = router_args(stack, "beta")
    assert args[args.index("--ctx-size") + 1] == "512"
    chat(stack, "beta")
    assert states(stack) == {"alpha": "unloaded", "beta": "loaded"}


def test_a_broken_preload_fails_start_at_once_with_its_log(make_stack) -> None:
    presets = PRESETS + '\n[services.llamacpp.models.broken]\nfile = "broken.gguf"\n'
    stack = make_stack(router='preload = ["broken"]', presets=presets,
                       files=("alpha", "beta", "broken"))
    began = time.monotonic()
    started = stack.airpods("start", "llamacpp")
    took = time.monotonic() - began
    assert started.returncode == 1
    assert "llamacpp did not become ready: model 'broken' failed to load (exit code 1)" in (
        started.stderr)
    assert "--- last log lines ---" in started.stderr
    assert "failed to load model" in started.stderr  # the child's own lines, via the router
    # The health timeout is 60 s: well under it, the wait ended on the failure itself.
    assert took < 30, took


def test_a_missing_preset_file_is_refused_before_anything_is_created(make_stack) -> None:
    presets = PRESETS + '\n[services.llamacpp.models.gamma]\nfile = "gamma.gguf"\n'
    stack = make_stack(presets=presets)
    started = stack.airpods("start", "llamacpp")
    assert started.returncode == 1
    lines = started.stderr.strip().splitlines()
    assert lines[-1].startswith(
        "airpods: llamacpp: missing the file of model 'gamma' (gamma.gguf in airpods_it_router_")
    assert "airpods models add FILE --service llamacpp" in lines[-1]
    assert stack.container_id("airpods-llamacpp-server") == ""
    assert "airpods-llamacpp-models-preset" not in stack.podman("secret", "ls").stdout


def test_without_presets_every_gguf_in_the_volume_is_served(make_stack) -> None:
    stack = make_stack(router='preload = ["beta"]', presets="")
    start(stack)
    assert states(stack) == {"alpha": "unloaded", "beta": "loaded"}
    chat(stack, "alpha")
    assert states(stack) == {"alpha": "loaded", "beta": "unloaded"}
    args = router_args(stack, "alpha")
    assert args[args.index("--ctx-size") + 1] == "256"  # the service's own command_args


def test_a_router_without_presets_is_found_by_models_and_doctor(make_stack) -> None:
    """No `[models]` tables: `models list` shows the router serving every GGUF of its volume,
    `doctor` checks that volume, and a running router's models cannot be deleted."""
    stack = make_stack(presets="")

    def doctor_check() -> dict:
        out = stack.airpods("doctor", "--json")
        checks = json.loads(out.stdout)["checks"]
        return next(c for c in checks if c["name"].startswith("models (llamacpp"))

    listed = stack.airpods("models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["configured"] is None
    assert {m["name"]: m["used_by"] for m in data["models"]} == {
        "alpha.gguf": ["llamacpp"], "beta.gguf": ["llamacpp"]}
    check = doctor_check()
    assert check["status"] == "ok" and "2 in volume" in check["found"], check
    assert "alpha, beta" in check["found"], check

    start(stack)
    refused = stack.airpods("models", "rm", "alpha.gguf", "--yes")
    assert refused.returncode == 2 and "in use by running service llamacpp" in refused.stderr
    chat(stack, "alpha")  # still served


def test_doctor_warns_about_a_router_with_nothing_to_serve(make_stack) -> None:
    stack = make_stack(presets="", files=())
    out = stack.airpods("doctor", "--json")
    check = next(c for c in json.loads(out.stdout)["checks"]
                 if c["name"].startswith("models (llamacpp"))
    assert check["status"] == "warn" and "serves no model" in check["found"], check
    assert "airpods models add FILE --service llamacpp" in check["fix"], check


def test_auto_models_max_is_decided_from_the_model_files(make_stack) -> None:
    """models_max = "auto": start reads both GGUF headers from the volume, both fit this
    machine's RAM together, so the router may hold both; status agrees with what runs."""
    stack = make_stack()
    stack.config.write_text(
        stack.config.read_text().replace("models_max = 1", 'models_max = "auto"'))
    err = start(stack)
    assert "router models_max: auto = 2: the 2 largest of 2 models need" in err, err
    args = json.loads(stack.podman("inspect", "airpods-llamacpp-server", "--format",
                                   "{{json .Args}}").stdout)
    assert args[args.index("--models-max") + 1] == "2"
    status = json.loads(stack.airpods("status", "llamacpp", "--json").stdout)
    assert status["services"][0]["config_current"] is True
    again = stack.airpods("start", "llamacpp")
    assert again.returncode == 0 and "already running" in again.stderr, again.stderr
    chat(stack, "alpha")
    chat(stack, "beta")
    assert wait_for(lambda: states(stack) == {"alpha": "loaded", "beta": "loaded"}), states(stack)
