"""Holes a hostile pass found in the gateway, closed and checked on the real LiteLLM proxy (PyPI,
pinned, run as a host process with what airpods renders: tests/gateway_host.py) in front of a
loopback stand-in remote that records what it receives (tests/remote_standin.py).

No container is needed: the private local model's llama-server is never started (its URL is a
closed loopback port), which is the case the private lane must answer with 503.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airpods.config import load_config
from airpods.host import HostFacts
from airpods.kinds import gateway as g
from airpods.kinds.render import render_service
from airpods.secrets import SecretStore
from tests.gateway_host import HostGateway, free_port, run_gateway
from tests.remote_standin import StandinRemote

REPO = Path(__file__).resolve().parents[2]
HOST = HostFacts(accelerator="cpu", reason="test", physical_cores=1, logical_cores=1)
USER_KEY = "the-users-own-remote-key"
# One private local model (its server never started) and one remote, in dotted keys.
CONFIG = """\
[services]
open-webui.enabled = false
llamacpp.default_model = "tiny.gguf"
llamacpp.private = true
llamacpp.command_args.alias = "secret-model"
gateway.enabled = true
gateway.remotes.homelab.base_url = "{remote}"
gateway.remotes.homelab.api_key_env = "STANDIN_KEY"
gateway.remotes.homelab.models = ["big-model"]
gateway.remotes.homelab.timeout_s = 5
"""


@pytest.fixture(scope="module")
def remote() -> Iterator[StandinRemote]:
    with StandinRemote(["big-model"], api_key=USER_KEY) as standin:
        yield standin


@pytest.fixture(scope="module")
def setup(remote: StandinRemote, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("gwholes")
    config = tmp / "config.toml"
    config.write_text(CONFIG.format(remote=remote.base_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRPODS_", "STANDIN"))}
    env |= {"XDG_CONFIG_HOME": str(tmp / "xdg"), "XDG_DATA_HOME": str(tmp / "xdg-data"),
            "XDG_CACHE_HOME": str(tmp / "xdg-cache"), "AIRPODS_NO_CACHE": "1",
            "CONTAINER_HOST": f"unix://{tmp}/no-podman.sock"}
    return {"tmp": tmp, "config": config, "env": env}


def _loaded(setup: dict):  # noqa: ANN202
    return load_config(setup["config"], host=HOST,
                       secrets=SecretStore(Path(setup["env"]["XDG_DATA_HOME"]) / "airpods" /
                                           "secrets"))


def _spec(setup: dict, api_key_env: str | None = None):  # noqa: ANN202
    """The gateway's spec as `start` renders it; with `api_key_env`, the remote names that
    variable as if validation had let it through (the container must still be safe)."""
    cfg = _loaded(setup).config
    if api_key_env is not None:
        gw = cfg.services["gateway"]
        homelab = gw.remotes["homelab"].model_copy(update={"api_key_env": api_key_env})
        gw = gw.model_copy(update={"remotes": {"homelab": homelab}})
        cfg = cfg.model_copy(update={"services": {**cfg.services, "gateway": gw}})
    return render_service("gateway", cfg.services["gateway"], cfg, HOST)


def _urls() -> dict[str, str]:
    # Nothing listens there: the private model's local server is down.
    return {"http://llamacpp:8080/v1": f"http://127.0.0.1:{free_port()}/v1"}


def _cli(setup: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "airpods", "--config", str(setup["config"]),
                           *args], env=setup["env"], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def _usage_file(setup: dict) -> Path:
    # Where `start` mounts the gateway's usage directory, so `airpods usage` reads it.
    return Path(setup["env"]["XDG_DATA_HOME"]) / "airpods" / "gateway" / "gateway" / "usage.jsonl"


@pytest.fixture(scope="module")
def gw(setup: dict) -> Iterator[HostGateway]:
    spec = _spec(setup)
    usage = _usage_file(setup)
    usage.parent.mkdir(parents=True, exist_ok=True)
    extra = {"STANDIN_KEY": USER_KEY, "AIRPODS_USAGE_FILE": str(usage)}
    with run_gateway(spec, setup["tmp"] / "main", _urls(), extra) as gateway:
        yield gateway


# --- High: a remote never gets airpods' own keys ----------------------------------------------


@pytest.mark.parametrize("var", ["LITELLM_MASTER_KEY", "AIRPODS_LOCAL_KEY_0"])
def test_remote_naming_an_internal_variable_is_refused_and_never_gets_that_key(
    setup: dict, remote: StandinRemote, var: str
) -> None:
    text = setup["config"].read_text().replace('"STANDIN_KEY"', f'"{var}"')
    bad = setup["tmp"] / f"bad-{var}.toml"
    bad.write_text(text)
    out = subprocess.run([sys.executable, "-m", "airpods", "--config", str(bad), "config",
                          "validate"], env=setup["env"], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1 and "remotes.homelab.api_key_env" in out.stderr
    assert "reserved" in out.stderr and "Traceback" not in out.stderr

    # Had validation let it through, the container still holds the user's value, never
    # airpods' own key under that name: the remote receives the user's key.
    spec = _spec(setup, api_key_env=var)
    own = {f.value for f in spec.secret_files if f.target.startswith(g.ENV_PREFIX)}
    # What `start` does with the user's environment; the proxy's own environment gets nothing
    # else (a variable passed to it directly would hide the bug).
    spec = g.with_remote_keys(spec, {var: USER_KEY})
    before = len(remote.headers)
    with run_gateway(spec, setup["tmp"] / f"as-{var}", _urls()) as gateway, \
            gateway.client() as client:
        resp = client.post("/v1/chat/completions", json={
            "model": "big-model", "messages": [{"role": "user", "content": "hi"}]})
    sent = [next((v for k, v in h.items() if k.lower() == "authorization"), "")
            for h in remote.headers[before:]]
    assert sent, "the remote received nothing"
    assert all(h == f"Bearer {USER_KEY}" for h in sent), sent
    assert not any(key in h for h in sent for key in own)
    assert resp.status_code == 200, resp.text


# --- Low: the private lane's 503 on every endpoint; request fields that pick a backend --------


PRIVATE_BODIES = {
    "/v1/chat/completions": {"model": "secret-model", "max_tokens": 4,
                             "messages": [{"role": "user", "content": "hi"}]},
    "/v1/completions": {"model": "secret-model", "prompt": "hi", "max_tokens": 4},
    "/v1/messages": {"model": "secret-model", "max_tokens": 4,
                     "messages": [{"role": "user", "content": "hi"}]},
}


@pytest.mark.parametrize("path", list(PRIVATE_BODIES))
def test_private_model_down_is_503_on_every_endpoint(
    gw: HostGateway, remote: StandinRemote, path: str
) -> None:
    before = remote.count
    with gw.client() as client:
        for _ in range(3):  # the second and later find the local deployment cooling down
            resp = client.post(path, json=PRIVATE_BODIES[path])
            assert resp.status_code == 503, resp.text
            assert "private" in resp.text
    assert remote.count == before


@pytest.mark.parametrize("field", ["api_base", "base_url", "user_config"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_a_request_may_not_pick_its_backend(
    gw: HostGateway, remote: StandinRemote, field: str, path: str
) -> None:
    value = ({"model_list": [{"model_name": "x", "litellm_params": {
        "model": "openai/x", "api_base": "http://127.0.0.1:9/v1"}}]}
        if field == "user_config" else "http://127.0.0.1:9/v1")
    body = {"model": "big-model", "prompt": "hi", "max_tokens": 4,
            "messages": [{"role": "user", "content": "hi"}], field: value}
    before = remote.count
    with gw.client() as client:
        resp = client.post(path, json=body)
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["error"]["message"] and "not allowed" in resp.text
    assert remote.count == before


# --- Medium: what a client wrote reaches the terminal escaped ---------------------------------

HOSTILE = "\x1b]0;pwn\x07\r\nFAKE ROW"


def test_a_hostile_model_name_is_recorded_exactly_and_shown_escaped(
    setup: dict, gw: HostGateway
) -> None:
    usage = _usage_file(setup)
    with gw.client() as client:
        resp = client.post("/v1/chat/completions", json={
            "model": HOSTILE, "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code >= 400
    deadline = time.monotonic() + 20
    while HOSTILE not in _models(usage) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert HOSTILE in _models(usage), usage.read_text() if usage.exists() else "no records"
    shown = _cli(setup, "usage")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout + shown.stderr
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out, repr(out)
    assert "FAKE ROW" in out and "\\x1b]0;pwn\\x07\\r\\nFAKE ROW" in out, out
    assert not any(line.startswith("FAKE ROW") for line in out.splitlines()), out
    exact = json.loads(_cli(setup, "usage", "--json").stdout)
    assert HOSTILE in {row["key"] for row in exact["rows"]}  # --json stays exact


def _models(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {json.loads(line).get("model") for line in path.read_text().splitlines()
            if line.strip()}
