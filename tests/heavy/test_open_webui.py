"""Heavy tier: a REAL Open WebUI (PyPI ``open-webui``) relays to a REAL llama-server.

No Podman here: both run as host processes, so this checks the *configuration* airpods renders
for the open-webui service, not the containers. Steps:

1. a venv with ``open-webui==OPEN_WEBUI_VERSION`` in a cache dir outside the repo (built once,
   ~4-5 min and ~1.9 GB; reused afterwards). It holds every pinned requirement of the wheel
   EXCEPT ``accelerate`` and ``sentence-transformers``, the two that hard-require torch (from
   PyPI, several GB of CUDA wheels). Open WebUI then runs with ``USE_SLIM_DOCKER=True``, which
   skips the local embedding model (RAG only; chat does not need it).
2. the host llama-server binary (``containers/llama-server/build.sh --binary-only``: cached, or
   compiled once, ~7 min) serving a tiny random-weight GGUF as ``tiny`` with an API key;
3. the env airpods renders for open-webui (``airpods start open-webui --dry-run --json`` with a
   user config in a temp XDG tree; masked secrets read back with ``airpods config get``), with
   ONLY the backend URL swapped from the container alias (http://llamacpp:8080/v1) to the host
   port, plus host-run knobs (data dir, port, offline);
4. the first account signed up becomes admin; ``/api/models`` must list ``tiny`` and
   ``/api/chat/completions`` must come back with llama-server's answer.

Runs only with ``AIRPODS_HEAVY=1``. Knobs: ``AIRPODS_OWUI_VENV=/path`` uses (or builds) that
venv instead of the cache one; ``AIRPODS_LLAMA_PREBUILT=/path/llama-server`` is passed to
build.sh as ``--prebuilt``; ``AIRPODS_CACHE_DIR`` moves the cache root (as for build.sh).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.sandbox import free_port, write_tiny_model  # noqa: E402

OPEN_WEBUI_VERSION = "0.12.4"
# Requirements of the wheel left out of the venv: both hard-require torch.
TORCH_REQUIREMENTS = {"accelerate", "sentence-transformers"}
BUILD_SH = REPO_ROOT / "containers" / "llama-server" / "build.sh"
INSTALL_TIMEOUT_S = 20 * 60
HEALTH_TIMEOUT_S = 120

pytestmark = [
    pytest.mark.heavy,
    pytest.mark.skipif(
        os.environ.get("AIRPODS_HEAVY", "").strip().lower() not in ("1", "true", "yes"),
        reason="heavy tier: set AIRPODS_HEAVY=1 (real Open WebUI; first run installs ~1.9 GB)",
    ),
]


# --------------------------------------------------------------------------- the venv


def _cache_root() -> Path:
    if os.environ.get("AIRPODS_CACHE_DIR"):
        return Path(os.environ["AIRPODS_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "airpods"


def _venv_dir() -> Path:
    if os.environ.get("AIRPODS_OWUI_VENV"):
        return Path(os.environ["AIRPODS_OWUI_VENV"])
    tag = f"{OPEN_WEBUI_VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
    return _cache_root() / "open-webui" / tag / "venv"


_REQS_SCRIPT = """
import re, sys
from importlib.metadata import requires
skip = set(sys.argv[1].split(","))
for req in requires("open-webui") or []:
    if ";" in req:  # extras ('all', 'postgres', ...) only
        continue
    name = re.split(r"[\\[=<>!~ ]", req, maxsplit=1)[0].lower().replace("_", "-")
    if name not in skip:
        print(req)
"""


def _run(argv: list[str], log, **kw) -> None:
    log.write(f"$ {' '.join(map(str, argv))}\n")
    log.flush()
    subprocess.run(argv, check=True, stdout=log, stderr=subprocess.STDOUT, **kw)


def ensure_open_webui_venv() -> Path:
    """The venv with Open WebUI (no torch), built under a lock if it is not complete yet."""
    venv = _venv_dir()
    marker = venv / ".airpods-complete"
    if marker.exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        py = venv / "bin" / "python"
        log_path = venv.parent / "install.log"
        t0 = time.monotonic()
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        with open(log_path, "w") as log:
            try:
                _run([sys.executable, "-m", "venv", str(venv)], log)
                pip = [str(py), "-m", "pip", "install", "--no-input"]
                # The wheel alone (its metadata lists the pinned requirements) ...
                _run([*pip, "--no-deps", f"open-webui=={OPEN_WEBUI_VERSION}"], log, env=env)
                reqs = subprocess.run(
                    [str(py), "-c", _REQS_SCRIPT, ",".join(sorted(TORCH_REQUIREMENTS))],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                req_file = venv / "owui-requirements.txt"
                req_file.write_text(reqs)
                # ... then everything it pins but the torch users, with their own deps.
                _run([*pip, "-r", str(req_file)], log, env=env, timeout=INSTALL_TIMEOUT_S)
                has_torch = "import importlib.util as u; print(bool(u.find_spec('torch')))"
                torch = subprocess.run(
                    [str(py), "-c", has_torch],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.strip()
                if torch != "False":
                    raise RuntimeError("torch got into the Open WebUI venv after all")
            except Exception as exc:
                shutil.rmtree(venv, ignore_errors=True)
                tail = log_path.read_text()[-4000:] if log_path.exists() else ""
                raise RuntimeError(
                    f"installing open-webui failed ({exc}); log tail:\n{tail}"
                ) from exc
            log.write(f"installed in {time.monotonic() - t0:.0f}s\n")
        marker.write_text(f"open-webui=={OPEN_WEBUI_VERSION}\n")
    return venv


# --------------------------------------------------------------------------- processes


@contextlib.contextmanager
def _process(argv: list[str], log_path: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _wait_http(url: str, proc: subprocess.Popen, log_path: Path, timeout: float, **kw) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"{url}: process exited {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2, **kw).status_code == 200:
                return time.monotonic() - t0
        time.sleep(0.5)
    pytest.fail(f"{url}: no 200 within {timeout}s:\n{log_path.read_text()[-3000:]}")


def _llama_server_binary() -> Path:
    argv = ["bash", str(BUILD_SH), "--binary-only"]
    if os.environ.get("AIRPODS_LLAMA_PREBUILT"):
        argv += ["--prebuilt", os.environ["AIRPODS_LLAMA_PREBUILT"]]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=45 * 60)
    if res.returncode != 0:
        pytest.fail(f"build.sh --binary-only failed:\n{res.stderr[-3000:]}")
    return Path(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- airpods' env


def _airpods(args: list[str], env: dict[str, str]) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "airpods", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, f"airpods {' '.join(args)}: {res.stdout}\n{res.stderr}"
    return res.stdout


def rendered_open_webui_env(
    tmp: Path, llama_key: str, secret_key: str, extra_toml: str = ""
) -> tuple[dict[str, str], dict[str, dict]]:
    """The env `airpods start open-webui --dry-run --json` renders, secrets unmasked, and every
    service's dry-run entry."""
    xdg = {
        k: str(tmp / "xdg" / k.lower())
        for k in (
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "XDG_STATE_HOME",
            "XDG_CACHE_HOME",
            "XDG_RUNTIME_DIR",
        )
    }
    for d in xdg.values():
        Path(d).mkdir(parents=True, exist_ok=True, mode=0o700)
    cfg = Path(xdg["XDG_CONFIG_HOME"]) / "airpods" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(
        "[services.llamacpp]\n"
        'default_model = "tiny.gguf"\n'
        + extra_toml
        + "[services.llamacpp.env]\n"
        f'LLAMA_API_KEY = "{llama_key}"\n'
        "[services.open-webui.env]\n"
        f'WEBUI_SECRET_KEY = "{secret_key}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRPODS_", "XDG_"))}
    env.update(xdg)
    plan = json.loads(_airpods(["start", "--dry-run", "--json"], env))
    services = {s["service"]: s for s in plan["services"]}
    svc = services["open-webui"]
    rendered = dict(svc["env"])
    for name, value in rendered.items():
        if value == "****":
            rendered[name] = _airpods(
                ["config", "get", f"services.open-webui.env.{name}"], env
            ).strip()
    return rendered, services


# --------------------------------------------------------------------------- the test


def test_open_webui_lists_and_relays_to_llama_server(tmp_path: Path) -> None:
    venv = ensure_open_webui_venv()
    binary = _llama_server_binary()
    model = write_tiny_model(tmp_path / "models")
    llama_key = "llama-" + secrets.token_urlsafe(16)
    secret_key = secrets.token_urlsafe(32)

    rendered, _ = rendered_open_webui_env(tmp_path, llama_key, secret_key)
    # What airpods wires: one llama-server by its network alias, its key, and the rest.
    assert rendered["OPENAI_API_BASE_URLS"] == "http://llamacpp:8080/v1"
    assert rendered["OPENAI_API_KEYS"] == llama_key
    assert rendered["WEBUI_SECRET_KEY"] == secret_key
    assert rendered["ENABLE_OPENAI_API"] == "True"
    assert rendered["ENABLE_OLLAMA_API"] == "False"
    assert rendered["ENABLE_PERSISTENT_CONFIG"] == "False"

    llama_port = free_port()
    llama_argv = [
        str(binary), "--model", str(model), "--alias", "tiny", "--host", "127.0.0.1",
        "--port", str(llama_port), "--api-key", llama_key, "--threads", "1", "-c", "512",
    ]
    _chat_through_open_webui(venv, tmp_path, rendered, secret_key, llama_argv, llama_port,
                             ["tiny"])


def _chat_through_open_webui(
    venv: Path, tmp_path: Path, rendered: dict[str, str], secret_key: str,
    llama_argv: list[str], llama_port: int, model_ids: list[str],
    then: Callable[[httpx.Client], None] | None = None,
    backend_url: str | None = None,
) -> None:
    """Run llama-server and Open WebUI with the rendered env; each model must be listed and
    answer a chat relayed by Open WebUI; then `then(client)`, the admin's client.
    `backend_url`: what Open WebUI connects to (default: the llama-server itself)."""
    webui_port = free_port()
    while webui_port == llama_port:
        webui_port = free_port()
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    llama_log = tmp_path / "llama-server.log"
    home = tmp_path / "home"
    home.mkdir()
    webui_env = {
        **base,
        **rendered,
        # The one change: the host port instead of the container alias.
        "OPENAI_API_BASE_URLS": backend_url or f"http://127.0.0.1:{llama_port}/v1",
        # Host-run knobs (the image sets its own): data dir, no network, no torch.
        "HOME": str(home),
        "DATA_DIR": str(tmp_path / "webui-data"),
        "OFFLINE_MODE": "True",
        "HF_HUB_OFFLINE": "1",
        "USE_SLIM_DOCKER": "True",
        "VECTOR_DB": "chroma",
        "ENABLE_VERSION_UPDATE_CHECK": "False",
        "ANONYMIZED_TELEMETRY": "False",
        "SCARF_NO_ANALYTICS": "true",
        "DO_NOT_TRACK": "true",
    }
    webui_log = tmp_path / "open-webui.log"
    webui_argv = [
        str(venv / "bin" / "open-webui"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(webui_port),
    ]
    llama_url = f"http://127.0.0.1:{llama_port}"
    webui_url = f"http://127.0.0.1:{webui_port}"

    with _process(llama_argv, llama_log, base) as llama:
        _wait_http(f"{llama_url}/health", llama, llama_log, 60)
        with _process(webui_argv, webui_log, webui_env) as webui:
            took = _wait_http(f"{webui_url}/health", webui, webui_log, HEALTH_TIMEOUT_S)
            print(f"Open WebUI /health 200 after {took:.1f}s")
            with httpx.Client(base_url=webui_url, timeout=60) as client:
                assert client.get("/api/models").status_code == 401  # auth is on, as rendered
                # The first account becomes the admin.
                r = client.post(
                    "/api/v1/auths/signup",
                    json={
                        "name": "Test",
                        "email": "admin@example.com",
                        "password": "pw-" + secret_key,
                    },
                )
                assert r.status_code == 200, r.text
                assert r.json()["role"] == "admin"
                client.headers["Authorization"] = f"Bearer {r.json()['token']}"

                r = client.get("/api/models")
                assert r.status_code == 200, r.text
                models = {m["id"]: m for m in r.json()["data"]}
                for model_id in model_ids:
                    assert model_id in models, (
                        f"{list(models)}\n{webui_log.read_text()[-3000:]}")
                    assert models[model_id].get("owned_by") == "openai"
                for model_id in model_ids:
                    _chat(client, model_id)
                if then is not None:
                    then(client)


def _chat(client: httpx.Client, model_id: str) -> None:
    """A chat relayed by Open WebUI: the answer must come from llama-server itself."""
    r = client.post(
        "/api/chat/completions",
        json={
            "model": model_id,
            "messages": [{"role": "user", "content": "Say hi"}],
            "max_tokens": 8,
            "stream": False,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("length", "stop")
    assert body["model"] == model_id
    # llama-server's own fields: the answer really came from it.
    assert "timings" in body and body["usage"]["completion_tokens"] > 0


def test_open_webui_lists_and_chats_with_every_model_of_a_router(tmp_path: Path) -> None:
    """Router mode: the argv airpods renders (`mode = "router"`, no presets: every GGUF in the
    volume), run on the host with the volume's path swapped in; Open WebUI lists both models
    and chats with each, the router loading (and, with models_max = 1, evicting) them."""
    venv = ensure_open_webui_venv()
    binary = _llama_server_binary()
    models_dir = tmp_path / "models"
    write_tiny_model(models_dir, "alpha.gguf")
    write_tiny_model(models_dir, "beta.gguf")
    llama_key = "llama-" + secrets.token_urlsafe(16)
    secret_key = secrets.token_urlsafe(32)
    router = 'mode = "router"\n[services.llamacpp.router]\nmodels_max = 1\n'
    rendered, services = rendered_open_webui_env(tmp_path, llama_key, secret_key, router)
    assert rendered["OPENAI_API_BASE_URLS"] == "http://llamacpp:8080/v1"  # no wiring change
    assert rendered["OPENAI_API_KEYS"] == llama_key

    argv = list(services["llamacpp"]["command"])
    assert "--models-dir" in argv and "--model" not in argv, argv
    assert argv[argv.index("--models-max") + 1] == "1"
    key_file = tmp_path / "llama-api-key"
    key_file.write_text(llama_key + "\n")
    llama_port = free_port()
    swap = {"/models": str(models_dir), "/run/secrets/llama-api-key": str(key_file),
            "0.0.0.0": "127.0.0.1", "8080": str(llama_port)}
    for index, file in enumerate(services["llamacpp"].get("files", [])):  # the preset INI
        host_file = tmp_path / f"file-{index}"
        host_file.write_text(file["content"])
        swap[file["target"]] = str(host_file)
    llama_argv = [str(binary), *(swap.get(a, a) for a in argv)]
    # Each connection is marked "llama.cpp", so Open WebUI shows load states and can unload.
    assert json.loads(rendered["OPENAI_API_CONFIGS"]) == {"0": {"provider": "llama.cpp"}}

    def router_states() -> dict[str, str]:
        resp = httpx.get(f"http://127.0.0.1:{llama_port}/models", timeout=10,
                         headers={"Authorization": f"Bearer {llama_key}"})
        return {m["id"]: m["status"]["value"] for m in resp.json()["data"]}

    def load_state_and_eject(client: httpx.Client) -> None:
        # models_max = 1: the last model chatted with (beta) is loaded, alpha was evicted.
        models = {m["id"]: m for m in client.get("/api/models?refresh=true").json()["data"]}
        assert (models["alpha"].get("loaded"), models["beta"].get("loaded")) == (False, True), {
            i: m.get("loaded") for i, m in models.items()}
        ejected = client.post("/api/models/unload", json={"model": "beta"})
        assert ejected.status_code == 200, ejected.text
        deadline = time.monotonic() + 20
        while router_states()["beta"] != "unloaded" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert router_states() == {"alpha": "unloaded", "beta": "unloaded"}

    _chat_through_open_webui(venv, tmp_path, rendered, secret_key, llama_argv, llama_port,
                             ["alpha", "beta"], then=load_state_and_eject)


def test_open_webui_through_the_gateway_lists_and_chats_local_and_remote(tmp_path: Path) -> None:
    """`via_gateway = true`: Open WebUI's one connection is the gateway airpods renders (run by
    the pinned LiteLLM proxy as a host process, tests/gateway_host.py), with the key of the
    gateway client `open_webui`. It lists the local model and the remote's (a loopback
    stand-in) and chats with both through the gateway; the usage records name the client."""
    from airpods.config import load_config
    from airpods.host import HostFacts
    from airpods.kinds.render import render_service
    from airpods.secrets import SecretStore
    from tests.gateway_host import run_gateway
    from tests.remote_standin import StandinRemote

    venv = ensure_open_webui_venv()
    binary = _llama_server_binary()
    model = write_tiny_model(tmp_path / "models")
    llama_key = "llama-" + secrets.token_urlsafe(16)
    secret_key = secrets.token_urlsafe(32)
    host = HostFacts(accelerator="cpu", reason="test", physical_cores=1, logical_cores=1)
    with StandinRemote(["standin-model"], api_key="standin-key") as remote:
        config = tmp_path / "config.toml"
        config.write_text(
            '[services.llamacpp]\ndefault_model = "tiny.gguf"\n'
            f'[services.llamacpp.env]\nLLAMA_API_KEY = "{llama_key}"\n'
            "[services.gateway]\nenabled = true\n"
            f'[services.gateway.remotes.standin]\nbase_url = "{remote.base_url}"\n'
            'api_key_env = "STANDIN_KEY"\nmodels = ["standin-model"]\nprice_in = 1\n'
            "[services.gateway.clients.open_webui]\n"
            "[services.open-webui]\nvia_gateway = true\n"
            f'[services.open-webui.env]\nWEBUI_SECRET_KEY = "{secret_key}"\n')
        loaded = load_config(config, host=host, secrets=SecretStore(tmp_path / "secrets"))
        cfg = loaded.config
        webui_spec = render_service("open-webui", cfg.services["open-webui"], cfg, host)
        gateway_spec = render_service("gateway", cfg.services["gateway"], cfg, host)
        client_key = str(cfg.services["gateway"].clients["open_webui"].key)
        rendered = dict(webui_spec.env)
        # What airpods wires: the gateway alone, by its network alias, with the client's key.
        assert rendered["OPENAI_API_BASE_URLS"] == "http://gateway:4000/v1"
        assert rendered["OPENAI_API_KEYS"] == client_key and llama_key not in str(rendered)

        llama_port = free_port()
        llama_argv = [
            str(binary), "--model", str(model), "--alias", "tiny", "--host", "127.0.0.1",
            "--port", str(llama_port), "--api-key", llama_key, "--threads", "1", "-c", "512",
        ]
        usage_file = tmp_path / "usage.jsonl"
        urls = {"http://llamacpp:8080/v1": f"http://127.0.0.1:{llama_port}/v1"}
        extra = {"STANDIN_KEY": "standin-key", "AIRPODS_USAGE_FILE": str(usage_file)}

        def through_the_gateway(client: httpx.Client) -> None:
            models = {m["id"] for m in client.get("/api/models?refresh=true").json()["data"]}
            assert {"tiny", "standin-model"} <= models, models
            for model_id in ("tiny", "standin-model"):
                r = client.post("/api/chat/completions", json={
                    "model": model_id, "messages": [{"role": "user", "content": "Say hi"}],
                    "max_tokens": 8, "stream": False})
                assert r.status_code == 200, r.text
                body = r.json()
                assert body["choices"][0]["message"]["role"] == "assistant"
                assert body["usage"]["completion_tokens"] > 0
            assert remote.count == 1  # the remote's model went to the remote, once
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (
                    not usage_file.exists() or len(usage_file.read_text().splitlines()) < 2):
                time.sleep(0.2)
            records = [json.loads(x) for x in usage_file.read_text().splitlines()]
            assert {(r["model"], r["backend"], r["client"]) for r in records} >= {
                ("tiny", "local", "open_webui"), ("standin-model", "remote", "open_webui")}

        with run_gateway(gateway_spec, tmp_path / "gateway", urls, extra_env=extra) as gw:
            _chat_through_open_webui(venv, tmp_path, rendered, secret_key, llama_argv,
                                     llama_port, [], then=through_the_gateway,
                                     backend_url=f"{gw.url}/v1")
