"""Open WebUI through the gateway (`via_gateway = true`): its one OpenAI connection is the
gateway, with the key of the gateway's client `open_webui`; bad combinations are config errors.
The real Open WebUI container chats through the real LiteLLM gateway container, in a real
browser, in tests/integration/test_open_webui_podman.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airpods.config import load_config
from airpods.errors import ConfigError
from airpods.host import HostFacts
from airpods.secrets import SecretStore
from tests.specs import render_all

CPU = HostFacts(accelerator="cpu", reason="test", physical_cores=4, logical_cores=8)
GATEWAY = "[services.gateway]\nenabled = true\n[services.gateway.clients.open_webui]\n"
VIA = "[services.open-webui]\nvia_gateway = true\n"


@pytest.fixture
def store(tmp_path: Path) -> SecretStore:
    root = tmp_path / "secrets"
    for service, var, value in [
        ("llamacpp", "LLAMA_API_KEY", "key-main"),
        ("open-webui", "WEBUI_SECRET_KEY", "webui-secret"),
        ("gateway", "CLIENT_OPEN_WEBUI", "key-webui-client"),
        ("gateway", "LITELLM_MASTER_KEY", "key-master"),
    ]:
        (root / service).mkdir(parents=True, exist_ok=True)
        (root / service / var).write_text(value + "\n")
    for path in (root, *root.rglob("*")):  # as airpods keeps them: no note about modes
        path.chmod(0o700 if path.is_dir() else 0o600)
    return SecretStore(root)


def render(tmp_path: Path, store: SecretStore, user_toml: str) -> dict[str, dict[str, str]]:
    user = tmp_path / "config.toml"
    user.write_text(user_toml)
    loaded = load_config(user, host=CPU, secrets=store)
    names = list(loaded.config.services)
    return {s.service: s.env for s in render_all(loaded.config, loaded.host, names)}


def test_via_gateway_is_one_connection_with_the_client_key(tmp_path, store) -> None:
    env = render(tmp_path, store, GATEWAY + VIA)["open-webui"]
    assert env["OPENAI_API_BASE_URLS"] == "http://gateway:4000/v1"
    assert env["OPENAI_API_KEYS"] == "key-webui-client"
    assert json.loads(env["OPENAI_API_CONFIGS"]) == {"0": {"provider": ""}}
    assert env["ENABLE_OPENAI_API"] == "True" and env["ENABLE_PERSISTENT_CONFIG"] == "False"
    assert "key-master" not in json.dumps(env)  # never the gateway's master key


def test_the_gateway_follows_its_alias_and_port(tmp_path, store) -> None:
    moved = GATEWAY.replace("enabled = true\n", 'enabled = true\nnetwork_aliases = ["gw"]\n'
                            "ports = [{ host = 4100, container = 4040 }]\n")
    env = render(tmp_path, store, moved + VIA)["open-webui"]
    assert env["OPENAI_API_BASE_URLS"] == "http://gw:4040/v1"


def test_without_via_gateway_nothing_changes(tmp_path, store) -> None:
    """An enabled gateway alone leaves Open WebUI wired to each llama-server."""
    env = render(tmp_path, store, GATEWAY)["open-webui"]
    assert env["OPENAI_API_BASE_URLS"] == "http://llamacpp:8080/v1"
    assert env["OPENAI_API_KEYS"] == "key-main"
    assert json.loads(env["OPENAI_API_CONFIGS"]) == {"0": {"provider": "llama.cpp"}}


@pytest.mark.parametrize(("toml", "where", "says"), [
    (VIA, "services.open-webui.via_gateway", "no enabled gateway to go through"),
    ("[services.gateway]\nenabled = true\n" + VIA, "services.gateway.clients",
     "client 'open_webui', which is not declared"),
    (GATEWAY.replace("enabled = true", "enabled = false") + VIA,
     "services.open-webui.via_gateway", "no enabled gateway"),
    ('[services.open-webui]\nvia_gateway = "maybe"\n', "services.open-webui.via_gateway",
     "valid boolean"),
])
def test_bad_combinations_are_config_errors(tmp_path, store, toml, where, says) -> None:
    with pytest.raises(ConfigError) as info:
        render(tmp_path, store, toml)
    line = info.value.one_line()
    assert where in line and says in line, line


def test_a_disabled_open_webui_may_keep_the_option(tmp_path, store) -> None:
    envs = render(tmp_path, store, "[services.open-webui]\nenabled = false\nvia_gateway = true\n")
    assert "open-webui" in envs  # rendered (it exists), no error: it does not run
