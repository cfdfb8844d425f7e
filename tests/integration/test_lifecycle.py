"""The product's core path on real Podman with a real llama-server and a real (tiny) GGUF model.

Every test drives the real `airpods` CLI in a subprocess against an isolated Podman storage root
and API socket (see conftest.py), exactly as a user would.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.sandbox import free_ports


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Stack:
    config: Path
    env: dict[str, str]
    port: int
    emb_port: int
    podman: Callable[..., subprocess.CompletedProcess]
    # Unique per session: aardvark-dns keeps one config per network name in a host-wide dir,
    # so two test sessions on one host must not share a name.
    network: str = "airpods-it"

    def airpods(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "airpods", "--config", str(self.config), *args],
            env=self.env, capture_output=True, text=True, timeout=timeout,
        )

    def popen(self, *args: str) -> subprocess.Popen:
        # Ctrl-C as a terminal sends it: a suite started in the background (`cmd &` in a
        # script) inherits SIGINT ignored, and an ignored SIGINT rightly stays ignored in
        # airpods, so the tests that press Ctrl-C would wait on it for nothing.
        return subprocess.Popen(
            [sys.executable, "-m", "airpods", "--config", str(self.config), *args],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_sigint_default,
        )

    def container_id(self, name: str) -> str:
        out = self.podman("ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.ID}}")
        return out.stdout.strip()

    def api_key(self, service: str = "llamacpp") -> str:
        out = self.airpods("config", "get", f"services.{service}.env.LLAMA_API_KEY")
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


USER_CONFIG = """\
# integration test config: only what differs from the built-in defaults
[runtime]
network = "{network}"

[services.llamacpp]
image = "{image}"  # an image of one's own applies to every accelerator
default_model = "tiny.gguf"
ports = [{{ host = {port}, container = 8080 }}]
volumes.models.source = "{volume}"

[services.llamacpp.command_args]
threads = 1
ctx_size = 256

# A second llama.cpp instance, added in TOML only: everything else comes from its kind.
[services.llamacpp-emb]
kind = "llama-server"
image = "{image}"
default_model = "tiny.gguf"
ports = [{{ host = {emb_port}, container = 8080 }}]
volumes.models.source = "{volume}"

[services.llamacpp-emb.command_args]
alias = "tiny-emb"
threads = 1
ctx_size = 256
embeddings = true
pooling = "mean"

[services.open-webui]
enabled = false
"""


@pytest.fixture
def stack(podman_env, llama_image, tiny_model, tmp_path) -> Stack:
    volume = f"airpods_it_models_{tmp_path.name[-8:].replace('-', '_')}"
    config = tmp_path / "config.toml"
    port, emb_port = free_ports(2)
    network = f"airpods-it-{podman_env.subnet.split('.')[1]}"
    config.write_text(USER_CONFIG.format(image=llama_image, port=port, emb_port=emb_port,
                                         network=network,
                                         volume=volume))
    env = dict(podman_env.env)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg-data")
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg-cache")
    s = Stack(config, env, port, emb_port, podman_env.podman, network)
    added = s.airpods("models", "add", str(tiny_model))
    assert added.returncode == 0, added.stderr
    yield s
    s.airpods("stop", "--timeout", "1")


def test_start_serves_openai_api_then_is_idempotent(stack: Stack) -> None:
    from openai import OpenAI

    started = stack.airpods("start", "llamacpp")
    assert started.returncode == 0, started.stderr
    assert "ready" in started.stderr + started.stdout
    assert httpx.get(f"{stack.base}/health").status_code == 200

    key = stack.api_key()
    assert len(key) >= 32
    assert httpx.get(f"{stack.base}/v1/models").status_code == 401  # no key, no model
    client = OpenAI(base_url=f"{stack.base}/v1", api_key=key)
    assert [m.id for m in client.models.list().data] == ["tiny"]
    chat = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=8
    )
    assert chat.choices[0].finish_reason in ("length", "stop")
    assert chat.usage.completion_tokens > 0
    completion = client.completions.create(model="tiny", prompt="hello", max_tokens=4)
    assert completion.usage.prompt_tokens > 0

    # The key reaches llama-server as a mounted Podman secret: `podman inspect` never shows it.
    inspected = stack.podman("inspect", "airpods-llamacpp-server").stdout
    assert key not in inspected and "--api-key-file" in inspected
    assert "airpods-llamacpp-llama-api-key" in stack.podman("secret", "ls").stdout

    # The port is published on 127.0.0.1 only.
    ports = stack.podman("port", "airpods-llamacpp-server").stdout
    assert f"127.0.0.1:{stack.port}" in ports and "0.0.0.0" not in ports

    first = stack.container_id("airpods-llamacpp-server")
    again = stack.airpods("start", "llamacpp")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    assert stack.container_id("airpods-llamacpp-server") == first


def test_second_instance_serves_embeddings(stack: Stack) -> None:
    from openai import OpenAI

    started = stack.airpods("start", "llamacpp-emb")
    assert started.returncode == 0, started.stderr
    client = OpenAI(base_url=f"http://127.0.0.1:{stack.emb_port}/v1",
                    api_key=stack.api_key("llamacpp-emb"))
    emb = client.embeddings.create(model="tiny-emb", input=["hello world", "bye"])
    assert len(emb.data) == 2
    assert len(emb.data[0].embedding) == 64  # the tiny model's hidden size


# What the hot paths must not import (bench/README.md: each costs a `status` 5-200 ms):
# podman-py, click, pydantic, httpx, rich, and dataclasses with inspect (airpods.record).
NOT_ON_HOT_PATHS = {"podman", "click", "pydantic", "httpx", "rich", "dataclasses", "inspect"}


def imported_by(stack: Stack, *args: str, code: int = 0) -> set[str]:
    """The top-level packages `airpods ARGS` imports (python -X importtime)."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "airpods", "--config",
                          str(stack.config), *args],
                         env=stack.env, capture_output=True, text=True, timeout=60)
    assert run.returncode == code, run.stderr
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "airpods" in imported and "socket" in imported  # the measurement itself works
    return imported


def test_status_and_start_of_a_running_service_import_nothing_heavy(stack: Stack) -> None:
    assert stack.airpods("start", "llamacpp").returncode == 0
    # The first command after the keys were saved fills the resolved cache; the rest read it.
    assert stack.airpods("status", "llamacpp").returncode == 0
    # (`status` of every service would exit 1: llamacpp-emb is not running.)
    for args in (("status", "llamacpp"), ("status", "llamacpp", "--json"), ("start", "llamacpp")):
        imported = imported_by(stack, *args)
        assert not imported & NOT_ON_HOT_PATHS, (args, sorted(imported & NOT_ON_HOT_PATHS))


# What the configuration loader imports, and a cache hit does not.
LOADER = {"pydantic", "jinja2", "tomlkit"}


def test_status_of_absent_and_stopped_services_reads_the_cache_and_says_the_same(
    stack: Stack,
) -> None:
    slow = {**stack.env, "AIRPODS_NO_CACHE": "1"}

    def same_as_the_loader(state: dict[str, str]) -> None:
        for args in (("status",), ("status", "--json")):
            fast = stack.airpods(*args)
            full = subprocess.run([sys.executable, "-m", "airpods", "--config",
                                   str(stack.config), *args],
                                  env=slow, capture_output=True, text=True, timeout=60)
            assert (fast.returncode, fast.stdout, fast.stderr) == \
                   (full.returncode, full.stdout, full.stderr) == (1, fast.stdout, "")
            imported = imported_by(stack, *args, code=1)
            assert not imported & (LOADER | NOT_ON_HOT_PATHS), (args, imported & LOADER)
        rows = json.loads(stack.airpods("status", "--json").stdout)["services"]
        assert {r["name"]: r["state"] for r in rows} == state

    # Never started: no secret is saved yet, and none is saved by `status`.
    stack.airpods("status")  # writes the entry
    same_as_the_loader({"llamacpp": "absent", "llamacpp-emb": "absent"})
    secrets = Path(stack.env["XDG_DATA_HOME"]) / "airpods" / "secrets"
    assert not (secrets / "llamacpp").exists()

    # A start that reads that entry saves the key its container was given.
    started = stack.airpods("start", "llamacpp")
    assert started.returncode == 0, started.stderr
    models = httpx.get(f"{stack.base}/v1/models",
                       headers={"Authorization": f"Bearer {stack.api_key()}"})
    assert models.status_code == 200

    # Stopped behind airpods' back: Podman keeps the container, exited.
    assert stack.podman("stop", "-t", "1", "airpods-llamacpp-server").returncode == 0
    same_as_the_loader({"llamacpp": "exited", "llamacpp-emb": "absent"})


def test_config_edit_recreates_only_the_changed_service(stack: Stack) -> None:
    assert stack.airpods("start", "llamacpp", "llamacpp-emb").returncode == 0
    main_id = stack.container_id("airpods-llamacpp-server")
    emb_id = stack.container_id("airpods-llamacpp-emb-server")

    edited = stack.airpods("config", "set", "services.llamacpp.command_args.ctx_size", "512")
    assert edited.returncode == 0, edited.stderr
    assert "# integration test config" in stack.config.read_text()  # comments survive
    restarted = stack.airpods("start", "llamacpp", "llamacpp-emb")
    assert restarted.returncode == 0, restarted.stderr

    assert stack.container_id("airpods-llamacpp-server") != main_id
    assert stack.container_id("airpods-llamacpp-emb-server") == emb_id
    props = httpx.get(f"{stack.base}/props",
                      headers={"Authorization": f"Bearer {stack.api_key()}"}).json()
    n_ctx = props.get("default_generation_settings", {}).get("n_ctx") or props.get("n_ctx")
    assert n_ctx == 512


def test_status_json_and_logs(stack: Stack) -> None:
    absent = stack.airpods("logs", "llamacpp")
    assert absent.returncode == 1 and absent.stdout == ""
    assert absent.stderr.strip() == (
        "airpods: llamacpp has no container (start it: airpods start llamacpp)")
    assert stack.airpods("start", "llamacpp").returncode == 0
    status = stack.airpods("status", "llamacpp", "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["host"] == {"accelerator": "cpu", "reason": "no supported GPU detected",
                            "notes": []}
    rows = data["services"]
    assert [r["name"] for r in rows] == ["llamacpp"]
    row = rows[0]
    assert row["state"] == "running" and row["health"] == "ready" and row["healthy"] is True
    assert row["url"] == f"http://127.0.0.1:{stack.port}"
    assert row["model"] == "tiny" and row["config_current"] is True
    assert row["uptime_s"] is not None and row["uptime_s"] >= 0
    assert set(row) == {"name", "kind", "enabled", "state", "health", "healthy", "url", "image",
                        "accelerator", "uptime_s", "model", "config_current", "detail",
                        "memory"}
    assert set(row["memory"]) == {"estimate_bytes", "fits"} and row["memory"]["fits"] is True

    not_running = stack.airpods("status", "llamacpp-emb", "--json")
    assert not_running.returncode == 1
    assert json.loads(not_running.stdout)["services"][0]["state"] == "absent"

    logs = stack.airpods("logs", "llamacpp", "-n", "50")
    assert logs.returncode == 0
    assert "listening on http://0.0.0.0:8080" in logs.stdout
    recent = stack.airpods("logs", "llamacpp", "--since", "10m")
    assert recent.returncode == 0 and "listening on http://0.0.0.0:8080" in recent.stdout
    future = stack.airpods("logs", "llamacpp", "--since", str(int(time.time()) + 3600))
    assert future.returncode == 0 and future.stdout.strip() == ""


def test_missing_model_fails_fast_with_log(stack: Stack) -> None:
    stack.airpods("config", "set", "services.llamacpp.default_model", "does-not-exist.gguf")
    t0 = time.monotonic()
    failed = stack.airpods("start", "llamacpp")
    elapsed = time.monotonic() - t0
    assert failed.returncode == 1
    assert "did not become ready" in failed.stderr and "exited with code" in failed.stderr
    assert "does-not-exist.gguf" in failed.stderr  # the log excerpt names the model
    assert "Traceback" not in failed.stderr
    assert elapsed < 60, elapsed  # far below the 900 s health timeout


def test_crash_while_waiting_is_noticed_within_two_seconds(stack: Stack) -> None:
    # The container runs 3 s and dies: airpods must notice at once, not wait out the timeout.
    stack.airpods("config", "set", "services.llamacpp.entrypoint_override",
                  '["/bin/sh", "-c", "sleep 3; echo dying; exit 3"]')
    proc = stack.popen("start", "llamacpp")
    died_at: list[float] = []

    def watch() -> None:
        while proc.poll() is None:
            state = stack.podman("inspect", "--format", "{{.State.Status}}",
                                 "airpods-llamacpp-server").stdout.strip()
            if state == "exited" and not died_at:
                died_at.append(time.monotonic())
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    _, stderr = proc.communicate(timeout=120)
    done = time.monotonic()
    watcher.join()
    assert proc.returncode == 1
    assert "exited with code 3" in stderr and "dying" in stderr
    assert died_at, "the container never showed as exited"
    assert done - died_at[0] < 2.0, done - died_at[0]


def test_stop_keeps_volume_and_model_then_starts_again(stack: Stack) -> None:
    assert stack.airpods("start", "llamacpp").returncode == 0
    stopped = stack.airpods("stop", "llamacpp")
    assert stopped.returncode == 0, stopped.stderr
    assert stack.container_id("airpods-llamacpp-server") == ""
    # The key's Podman secret goes with the service; the kept key file does not.
    assert "airpods-llamacpp-llama-api-key" not in stack.podman("secret", "ls").stdout
    listed = stack.airpods("models", "list", "--json")
    assert [m["name"] for m in json.loads(listed.stdout)["models"]] == ["tiny.gguf"]
    again = stack.airpods("start", "llamacpp")
    assert again.returncode == 0, again.stderr
    assert httpx.get(f"{stack.base}/health").status_code == 200


def test_concurrent_starts_both_succeed_with_one_container(stack: Stack) -> None:
    first, second = stack.popen("start", "llamacpp"), stack.popen("start", "llamacpp")
    out1, out2 = first.communicate(timeout=180), second.communicate(timeout=180)
    assert first.returncode == 0, out1[1]
    assert second.returncode == 0, out2[1]
    rows = stack.podman("ps", "-a", "--filter", "label=io.airpods.service=llamacpp",
                        "--format", "{{.Names}} {{.IsInfra}}").stdout.splitlines()
    assert [r for r in rows if r.endswith("false")] == ["airpods-llamacpp-server false"]
    assert stack.podman("pod", "ps", "-q").stdout.count("\n") == 1
    # Both runs gave the server the same API key, and it is the one on disk.
    key = stack.api_key()
    assert httpx.get(f"{stack.base}/v1/models",
                     headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_pre_fetch_present_image_and_unpullable_image(stack: Stack) -> None:
    present = stack.airpods("start", "--pre-fetch", "llamacpp")
    assert present.returncode == 0, present.stderr
    assert stack.container_id("airpods-llamacpp-server") == ""  # started nothing

    stack.airpods("config", "set", "services.llamacpp.images.cpu", "localhost/airpods/nope:1")
    missing = stack.airpods("start", "--pre-fetch", "llamacpp", timeout=120)
    assert missing.returncode == 1
    lines = [ln for ln in missing.stderr.splitlines() if ln.startswith("airpods:")]
    assert len(lines) == 1 and "cannot pull localhost/airpods/nope:1" in lines[0]
    assert "Traceback" not in missing.stderr


def test_port_taken_by_another_program_changes_nothing(stack: Stack) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", stack.port))
        holder.listen()
        refused = stack.airpods("start", "llamacpp")
    assert refused.returncode == 1
    assert f"port {stack.port} on 127.0.0.1 is already in use" in refused.stderr
    assert "services.llamacpp.ports[0].host" in refused.stderr
    assert stack.podman("pod", "exists", "airpods-llamacpp").returncode != 0


CLIENT_SCRIPT = """
ip=$(nslookup "$1" | awk '/^Address/ {a=$NF} END {print a}')
echo "resolved $1 -> $ip"
wget -q -O - ${3:+--header "Authorization: Bearer $3"} "http://$ip:$2/v1/models"
"""


def test_services_reach_each_other_by_alias_with_their_keys(stack: Stack, llama_image) -> None:
    """A client container on the airpods network, as Open WebUI would be, calls both servers."""
    assert stack.airpods("start", "llamacpp", "llamacpp-emb").returncode == 0
    keys = {"llamacpp": stack.api_key(), "llamacpp-emb": stack.api_key("llamacpp-emb")}
    assert keys["llamacpp"] != keys["llamacpp-emb"]

    def call(alias: str, key: str) -> subprocess.CompletedProcess:
        return stack.podman(
            "run", "--rm", "--network", stack.network, "--entrypoint", "/bin/sh", llama_image,
            "-c", CLIENT_SCRIPT, "client", alias, "8080", key, timeout=60,
        )

    for alias, model in (("llamacpp", "tiny"), ("llamacpp-emb", "tiny-emb")):
        ok = call(alias, keys[alias])
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert f'"id":"{model}"' in ok.stdout.replace(" ", "")
        refused = call(alias, "")
        assert refused.returncode != 0 and "401" in refused.stdout + refused.stderr
        wrong = call(alias, keys["llamacpp" if alias != "llamacpp" else "llamacpp-emb"])
        assert wrong.returncode != 0

    for container, port in (("airpods-llamacpp-server", stack.port),
                            ("airpods-llamacpp-emb-server", stack.emb_port)):
        published = stack.podman("port", container).stdout.split()
        assert published[-1] == f"127.0.0.1:{port}", published


def test_ctrl_c_while_waiting_then_start_converges(stack: Stack) -> None:
    # A server that never becomes healthy: airpods waits until the user presses Ctrl-C.
    stack.airpods("config", "set", "services.llamacpp.entrypoint_override",
                  '["/bin/sh", "-c", "sleep 600"]')
    proc = stack.popen("start", "llamacpp")
    deadline = time.monotonic() + 60
    while stack.container_id("airpods-llamacpp-server") == "" and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr

    # Fix the config: the next start recreates the container and reaches ready.
    unset = stack.airpods("config", "set", "services.llamacpp.entrypoint_override", "[]")
    assert unset.returncode == 0, unset.stderr
    again = stack.airpods("start", "llamacpp")
    assert again.returncode == 0, again.stderr
    assert "configuration changed" in again.stderr


def test_logs_follow_until_ctrl_c(stack: Stack) -> None:
    assert stack.airpods("start", "llamacpp").returncode == 0
    proc = stack.popen("logs", "llamacpp", "-f")
    line = proc.stdout.readline()
    assert line.strip()
    httpx.get(f"{stack.base}/health")  # more log lines arrive while following
    time.sleep(0.5)
    assert proc.poll() is None  # still following
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert proc.returncode in (0, 130)


def test_remove_volumes_never_deletes_models_unless_named(stack: Stack) -> None:
    assert stack.airpods("start", "llamacpp").returncode == 0
    volume = next(line.split('"')[1] for line in stack.config.read_text().splitlines()
                  if line.startswith("volumes.models.source ="))
    everything = stack.airpods("stop", "--remove-volumes", "--yes")
    assert everything.returncode == 0, everything.stderr
    assert stack.podman("volume", "exists", volume).returncode == 0  # models kept
    listed = json.loads(stack.airpods("models", "list", "--json").stdout)
    assert [m["name"] for m in listed["models"]] == ["tiny.gguf"]

    # Named, but another configured service mounts the same volume: kept, and said so.
    named = stack.airpods("stop", "llamacpp", "--remove-volumes", "--yes")
    assert named.returncode == 0, named.stderr
    assert f"keeping volume {volume}: llamacpp-emb also use it" in named.stderr
    assert stack.podman("volume", "exists", volume).returncode == 0


def test_start_with_unpullable_image_changes_nothing(stack: Stack) -> None:
    for key, value in (("services.llamacpp.images.cpu", "localhost/airpods/nope:1"),
                       ("runtime.network", "airpods-it-untouched"),
                       ("services.llamacpp.volumes.models.source", "airpods_it_untouched")):
        assert stack.airpods("config", "set", key, value).returncode == 0
    failed = stack.airpods("start", "llamacpp")
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith(
        "airpods: llamacpp: image localhost/airpods/nope:1 is not here and cannot be pulled")
    assert stack.podman("network", "exists", "airpods-it-untouched").returncode != 0
    assert stack.podman("volume", "exists", "airpods_it_untouched").returncode != 0
    assert stack.podman("pod", "exists", "airpods-llamacpp").returncode != 0


def test_remove_volumes_never_deletes_a_volume_airpods_did_not_create(stack: Stack) -> None:
    assert stack.podman("volume", "create", "someone_elses_data").returncode == 0
    assert stack.airpods("config", "set", "services.llamacpp-emb.volumes.models.source",
                         "someone_elses_data").returncode == 0
    stopped = stack.airpods("stop", "llamacpp-emb", "--remove-volumes", "--yes")
    assert stopped.returncode == 0, stopped.stderr
    assert "keeping volume someone_elses_data: airpods did not create it" in stopped.stderr
    assert stack.podman("volume", "exists", "someone_elses_data").returncode == 0


def test_stop_records_the_tokens_a_server_served(stack: Stack) -> None:
    """With `metrics = true`, `stop` reads llama-server's counters into the usage database."""
    from openai import OpenAI

    from airpods.models.usage import UsageDB

    text = stack.config.read_text().replace(
        "[services.llamacpp.command_args]\n", "[services.llamacpp.command_args]\nmetrics = true\n")
    stack.config.write_text(text)
    started = stack.airpods("start", "llamacpp")
    assert started.returncode == 0, started.stderr
    client = OpenAI(base_url=f"{stack.base}/v1", api_key=stack.api_key())
    chat = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    stopped = stack.airpods("stop", "llamacpp")
    assert stopped.returncode == 0, stopped.stderr
    volume = next(line.split('"')[1] for line in text.splitlines()
                  if line.startswith("volumes.models.source ="))
    db = UsageDB(Path(stack.env["XDG_DATA_HOME"]) / "airpods" / "usage.sqlite3")
    prompt, completion = db.tokens(volume, "tiny.gguf")
    assert prompt >= chat.usage.prompt_tokens and completion >= chat.usage.completion_tokens > 0


def test_a_decimal_memory_limit_starts_with_those_bytes(stack: Stack) -> None:
    """Issue 23: `memory = "1.5g"` passed validation, then start crashed with a ValueError
    (the Podman request read sizes its own way). One parser now: Podman gets 1.5 GiB."""
    edited = stack.airpods("config", "set", "services.llamacpp.resources.memory", '"1.5g"')
    assert edited.returncode == 0, edited.stderr
    started = stack.airpods("start", "llamacpp")
    assert started.returncode == 0, started.stderr
    limit = stack.podman("inspect", "airpods-llamacpp-server", "--format",
                         "{{.HostConfig.Memory}}")
    assert limit.stdout.strip() == str(3 << 29)  # 1.5 GiB
