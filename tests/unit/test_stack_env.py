"""The whole stack's wiring, rendered: Open WebUI's env, generated secrets, secure defaults."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from airpods.config import load_config
from airpods.host import HostFacts
from airpods.secrets import SecretStore
from tests.specs import render_all

CPU = HostFacts(accelerator="cpu", reason="test", physical_cores=4, logical_cores=8)

SECOND_INSTANCE = """
[services.llamacpp-large]
kind = "llama-server"
image = "ghcr.io/ggml-org/llama.cpp:server"
default_model = "big.gguf"
pod = "airpods-llamacpp-large"
container = "airpods-llamacpp-large-server"
network_aliases = ["llamacpp-large"]
generated_secrets = ["LLAMA_API_KEY"]
ports = [{ host = 8082, container = 9000 }]
volumes = { models = { source = "airpods_llamacpp_models", target = "/models", mode = "ro" } }
health = { path = "/health", expected_status = 200, timeout_s = 900, interval_s = 1.0 }

[services.llamacpp-large.command_args]
model = "/models/{{ default_model }}"
ctx_size = 32768
port = "{{ ports[0].container }}"
"""


@pytest.fixture
def store(tmp_path: Path) -> SecretStore:
    root = tmp_path / "secrets"
    for service, var, value in [
        ("llamacpp", "LLAMA_API_KEY", "key-main"),
        ("llamacpp-large", "LLAMA_API_KEY", "key-large"),
        ("open-webui", "WEBUI_SECRET_KEY", "webui-secret"),
    ]:
        (root / service).mkdir(parents=True, exist_ok=True)
        (root / service / var).write_text(value + "\n")
    return SecretStore(root)


def webui_env(tmp_path: Path, store: SecretStore, user_toml: str) -> dict[str, str]:
    user = tmp_path / "config.toml"
    user.write_text(user_toml)
    loaded = load_config(user, host=CPU, secrets=store)
    [spec] = render_all(loaded.config, loaded.host, ["open-webui"])
    return spec.env


def test_webui_wired_to_llamacpp_only(tmp_path: Path, store: SecretStore) -> None:
    assert webui_env(tmp_path, store, "") == {
        "OPENAI_API_BASE_URLS": "http://llamacpp:8080/v1",
        "OPENAI_API_KEYS": "key-main",
        "OPENAI_API_CONFIGS": '{"0": {"provider": "llama.cpp"}}',
        "ENABLE_OPENAI_API": "True",
        "ENABLE_OLLAMA_API": "False",
        "ENABLE_PERSISTENT_CONFIG": "False",
        "WEBUI_SECRET_KEY": "webui-secret",
    }


def test_webui_wired_to_two_llama_servers(tmp_path: Path, store: SecretStore) -> None:
    assert webui_env(tmp_path, store, SECOND_INSTANCE) == {
        "OPENAI_API_BASE_URLS": "http://llamacpp:8080/v1;http://llamacpp-large:9000/v1",
        "OPENAI_API_KEYS": "key-main;key-large",
        "OPENAI_API_CONFIGS": '{"0": {"provider": "llama.cpp"}, "1": {"provider": "llama.cpp"}}',
        "ENABLE_OPENAI_API": "True",
        "ENABLE_OLLAMA_API": "False",
        "ENABLE_PERSISTENT_CONFIG": "False",
        "WEBUI_SECRET_KEY": "webui-secret",
    }


def test_webui_wired_to_llama_servers_and_ollama(tmp_path: Path, store: SecretStore) -> None:
    env = webui_env(tmp_path, store, SECOND_INSTANCE + "\n[services.ollama]\nenabled = true\n")
    assert env == {
        "OPENAI_API_BASE_URLS": "http://llamacpp:8080/v1;http://llamacpp-large:9000/v1",
        "OPENAI_API_KEYS": "key-main;key-large",
        "OPENAI_API_CONFIGS": '{"0": {"provider": "llama.cpp"}, "1": {"provider": "llama.cpp"}}',
        "ENABLE_OPENAI_API": "True",
        "ENABLE_OLLAMA_API": "True",
        "OLLAMA_BASE_URL": "http://ollama:11434",
        "ENABLE_PERSISTENT_CONFIG": "False",
        "WEBUI_SECRET_KEY": "webui-secret",
    }


def test_disabled_llama_server_is_not_wired(tmp_path: Path, store: SecretStore) -> None:
    env = webui_env(tmp_path, store, SECOND_INSTANCE + "\n[services.llamacpp]\nenabled = false\n")
    assert env["OPENAI_API_BASE_URLS"] == "http://llamacpp-large:9000/v1"
    assert env["OPENAI_API_KEYS"] == "key-large"


def test_user_chosen_key_wins_over_generated(tmp_path: Path, store: SecretStore) -> None:
    env = webui_env(tmp_path, store, '[services.llamacpp.env]\nLLAMA_API_KEY = "mine"\n')
    assert env["OPENAI_API_KEYS"] == "mine"


def test_generated_secret_is_kept_only_after_save(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    loaded = load_config(None, host=CPU, secrets=store, environ={})
    key = loaded.config.services["llamacpp"].env["LLAMA_API_KEY"]
    assert len(key) >= 32
    assert not (tmp_path / "secrets").exists()  # loading alone writes nothing
    store.save()
    path = tmp_path / "secrets" / "llamacpp" / "LLAMA_API_KEY"
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    again = load_config(None, host=CPU, secrets=SecretStore(tmp_path / "secrets"), environ={})
    assert again.config.services["llamacpp"].env["LLAMA_API_KEY"] == key


def test_secure_defaults_in_every_spec(tmp_path: Path, store: SecretStore) -> None:
    user = tmp_path / "config.toml"
    user.write_text("[services.ollama]\nenabled = true\n")
    loaded = load_config(user, host=CPU, secrets=store)
    specs = render_all(loaded.config, loaded.host, loaded.config.enabled_services())
    assert {s.service for s in specs} == {"llamacpp", "open-webui", "ollama"}
    for spec in specs:
        assert spec.cap_drop == ("ALL",)
        assert "no-new-privileges" in spec.security_opt
        assert all(p.host_ip == "127.0.0.1" for p in spec.ports)
        assert not any("reachable from other machines" in n for n in spec.notes)
    llama = next(s for s in specs if s.service == "llamacpp")
    assert [m.mode for m in llama.mounts] == ["ro"]  # the model volume is read-only
    # The key is a mounted Podman secret, not an env value `podman inspect` would show.
    assert "LLAMA_API_KEY" not in llama.env
    [secret] = llama.secret_files
    assert secret.target == "/run/secrets/llama-api-key" and secret.value.strip()


def test_exposed_port_is_warned_about(tmp_path: Path, store: SecretStore) -> None:
    user = tmp_path / "config.toml"
    user.write_text('[services.llamacpp]\nports = [{ host = 8080, container = 8080, '
                    'host_ip = "0.0.0.0" }]\n')
    loaded = load_config(user, host=CPU, secrets=store)
    [spec] = render_all(loaded.config, loaded.host, ["llamacpp"])
    assert any("0.0.0.0" in n and "reachable from other machines" in n for n in spec.notes)


def test_selinux_relabels_bind_mounts_only_and_shared(tmp_path: Path, store: SecretStore) -> None:
    from airpods.cli.output import podman_cli_lines
    from airpods.engine.args import container_kwargs
    from airpods.record import replace

    user = tmp_path / "config.toml"
    user.write_text('[services.llamacpp.volumes.extra]\nsource = "/srv/prompts"\n'
                    'target = "/prompts"\nmode = "ro"\n')
    enforcing = replace(CPU, selinux_enforcing=True)
    loaded = load_config(user, host=enforcing, secrets=store)
    [spec] = render_all(loaded.config, loaded.host, ["llamacpp"])
    relabel = {m.source: m.relabel for m in spec.mounts}
    assert relabel == {"airpods_llamacpp_models": False, "/srv/prompts": True}
    assert container_kwargs(spec)["volumes"]["/srv/prompts"]["mode"] == "ro,z"
    [run] = [line for line in podman_cli_lines(spec) if line.startswith("podman run")]
    assert "/srv/prompts:/prompts:ro,z" in run
