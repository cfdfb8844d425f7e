"""The gateway kind: config.yaml rendering, keys as mounted files, and every bad input.

Pure rendering (no Podman, no LiteLLM): the real LiteLLM proxy runs against what is rendered
here in tests/integration/test_gateway_podman.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airpods.config.loader import load_config_text
from airpods.errors import ConfigError
from airpods.host import HostFacts
from airpods.kinds import gateway as g
from airpods.kinds import gateway_config, gateway_routes
from airpods.kinds.render import render_service
from airpods.secrets import SecretStore

REPO = Path(__file__).resolve().parents[2]
HOST = HostFacts(accelerator="cpu", reason="test", physical_cores=4, logical_cores=8)
ON = '[services.gateway]\nenabled = true\n[services.open-webui]\nenabled = false\n'
REMOTE = (
    '[services.gateway.remotes.homelab]\nbase_url = "http://192.168.1.20:11434/v1"\n'
    'api_key_env = "HOMELAB_KEY"\nmodels = ["llama3.1:8b"]\nprice_in = 1.5\nprice_out = 3\n'
)
LOCAL = "qwen2.5-0.5b-instruct-q4_k_m"


def _load(text: str, tmp_path: Path):
    return load_config_text(tmp_path / "config.toml", text, host=HOST, environ={},
                            secrets=SecretStore(tmp_path / "secrets"))


def _gateway(text: str, tmp_path: Path):
    loaded = _load(text, tmp_path)
    cfg = loaded.config
    return render_service("gateway", cfg.services["gateway"], cfg, HOST), loaded


def _config(spec) -> dict:
    [f] = [f for f in spec.config_files if f.target == g.CONFIG_TARGET]
    assert f.value.startswith("# written by airpods")
    return json.loads(f.value.split("\n", 1)[1])


def test_built_in_gateway_is_off_and_pinned(tmp_path: Path) -> None:
    loaded = _load("", tmp_path)
    svc = loaded.config.services["gateway"]
    assert svc.kind == "gateway" and svc.enabled is False
    assert svc.image == "ghcr.io/berriai/litellm:v1.106.12"
    assert [(p.host, p.container, p.host_ip) for p in svc.ports] == [(4000, 4000, "127.0.0.1")]


def test_every_llama_server_model_is_a_gateway_model_without_a_key_in_the_file(
    tmp_path: Path,
) -> None:
    spec, loaded = _gateway(ON + REMOTE, tmp_path)
    config = _config(spec)
    local, remote = config["model_list"]
    assert local["model_name"] == LOCAL
    assert local["litellm_params"]["api_base"] == "http://llamacpp:8080/v1"
    assert local["litellm_params"]["api_key"] == "os.environ/AIRPODS_LOCAL_KEY_0"
    assert local["model_info"] | {} == {
        "id": f"local:llamacpp:{LOCAL}", "airpods_backend": "local",
        "airpods_service": "llamacpp", "airpods_private": False,
        "airpods_connect_s": gateway_config.LOCAL_CONNECT_S,
        "input_cost_per_token": 0.0, "output_cost_per_token": 0.0}
    # A stopped server's old address never answers: local connects are bounded (the guard),
    # within the 2 s a fallback must answer in. A remote keeps LiteLLM's own timeouts.
    assert 1.0 < gateway_config.LOCAL_CONNECT_S < 2.0
    assert "airpods_connect_s" not in remote["model_info"]
    # Local's zero price is in model_info (registered once), never in litellm_params (registered
    # again on every request, which costs LiteLLM a rebuild of its cost-map index each time).
    assert not {"input_cost_per_token", "output_cost_per_token"} & set(local["litellm_params"])
    assert remote["model_name"] == "llama3.1:8b"
    # The user's variable never names the key inside the container: airpods' own name does.
    assert remote["litellm_params"]["api_key"] == "os.environ/AIRPODS_REMOTE_KEY_0"
    assert remote["litellm_params"]["input_cost_per_token"] == pytest.approx(1.5e-6)
    assert remote["litellm_params"]["output_cost_per_token"] == pytest.approx(3e-6)
    assert remote["model_info"]["airpods_remote"] == "homelab"
    assert config["general_settings"]["custom_auth"] == "airpods_guard.user_api_key_auth"
    # Keys reach the container as mounted files only: none in the config, env or argv.
    llama_key = loaded.config.services["llamacpp"].env["LLAMA_API_KEY"]
    master = loaded.config.services["gateway"].env[g.MASTER_VARIABLE]
    files = {f.target: f.value for f in spec.secret_files}
    assert files[g.ENV_PREFIX + "AIRPODS_LOCAL_KEY_0"] == llama_key
    assert files[g.ENV_PREFIX + g.MASTER_VARIABLE] == master
    visible = json.dumps([spec.env, spec.command, spec.entrypoint,
                          [f.value for f in spec.config_files]])
    assert llama_key not in visible and master not in visible
    assert g.MASTER_VARIABLE not in spec.env
    assert spec.env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    # A recreated llama-server has a new address: LiteLLM must not cache the old one (300 s).
    assert spec.env["AIOHTTP_TTL_DNS_CACHE"] == "1"
    assert spec.env[gateway_config.REMOTE_KEYS_ENV] == "homelab=HOMELAB_KEY"
    assert {f.target for f in spec.config_files} >= {
        g.CONFIG_TARGET, "/run/secrets/airpods_guard.py"}


def test_each_keyed_remote_gets_its_own_variable_in_config_order(tmp_path: Path) -> None:
    remotes = "".join(
        f'[services.gateway.remotes.{name}]\nbase_url = "http://{name}:1/v1"\n'
        f'models = ["{name}-m"]\n' + (f'api_key_env = "{var}"\n' if var else "")
        for name, var in (("a", "SHARED_KEY"), ("b", None), ("c", "SHARED_KEY"), ("d", "D_KEY")))
    spec, _ = _gateway(ON + remotes, tmp_path)
    keys = {m["model_name"]: m["litellm_params"]["api_key"] for m in _config(spec)["model_list"]
            if m["model_info"]["airpods_backend"] == "remote"}
    assert keys == {"a-m": "os.environ/AIRPODS_REMOTE_KEY_0", "b-m": gateway_config.REMOTE_NO_KEY,
                    "c-m": "os.environ/AIRPODS_REMOTE_KEY_1",
                    "d-m": "os.environ/AIRPODS_REMOTE_KEY_2"}
    settled = g.with_remote_keys(spec, {"SHARED_KEY": "shared-secret", "D_KEY": "d-secret"})
    files = {f.target.removeprefix(g.ENV_PREFIX): f.value for f in settled.secret_files
             if f.target.startswith(g.ENV_PREFIX + g.REMOTE_KEY_PREFIX)}
    assert files == {"AIRPODS_REMOTE_KEY_0": "shared-secret",
                     "AIRPODS_REMOTE_KEY_1": "shared-secret", "AIRPODS_REMOTE_KEY_2": "d-secret"}


def test_router_presets_each_become_a_model_and_private_is_carried(tmp_path: Path) -> None:
    router = ('[services.llamacpp]\nmode = "router"\n'
              '[services.llamacpp.models.alpha]\nfile = "a.gguf"\n'
              '[services.llamacpp.models.beta]\nfile = "b.gguf"\nprivate = true\n')
    spec, _ = _gateway(ON + router, tmp_path)
    models = {m["model_name"]: m["model_info"]["airpods_private"]
              for m in _config(spec)["model_list"]}
    assert models == {"alpha": False, "beta": True}


def test_fallbacks_and_clients(tmp_path: Path) -> None:
    text = ON + REMOTE + f'[services.gateway.fallbacks]\n"{LOCAL}" = ["llama3.1:8b"]\n' \
        '[services.gateway.clients.laptop]\n[services.gateway.clients.phone]\n'
    spec, loaded = _gateway(text, tmp_path)
    assert _config(spec)["router_settings"]["fallbacks"] == [{LOCAL: ["llama3.1:8b"]}]
    clients = loaded.config.services["gateway"].clients
    keys = json.loads(next(f.value for f in spec.secret_files if f.target == g.KEYS_TARGET))
    assert sorted(keys.values()) == ["laptop", "master", "phone"]
    assert clients["laptop"].key and clients["laptop"].key not in json.dumps(keys)
    # Revoking = removing the table: the keys file, so the config hash, changes.
    spec2, _ = _gateway(text.replace("[services.gateway.clients.phone]\n", ""), tmp_path)
    assert spec2.config_hash != spec.config_hash


def _saved_load(text: str, tmp_path: Path):
    """Load as `start` does: the store saves what the load generated or dropped."""
    store = SecretStore(tmp_path / "secrets")
    loaded = load_config_text(tmp_path / "config.toml", text, host=HOST, environ={},
                              secrets=store)
    store.save()
    return loaded.config


def test_a_revoked_client_key_never_comes_back(tmp_path: Path) -> None:
    """Removing `clients.phone` and saving deletes its kept key: `phone` added again gets a new
    key, never the one that was revoked (it may have leaked)."""
    text = ON + '[services.gateway.clients.laptop]\n[services.gateway.clients.phone]\n'
    first = _saved_load(text, tmp_path).services["gateway"].clients
    kept = tmp_path / "secrets" / "gateway"
    assert sorted(p.name for p in kept.glob("CLIENT_*")) == ["CLIENT_LAPTOP", "CLIENT_PHONE"]
    # Only planning (no save): the file stays, as nothing else is written by a dry run.
    _load(text.replace("[services.gateway.clients.phone]\n", ""), tmp_path)
    assert (kept / "CLIENT_PHONE").exists()
    without = _saved_load(text.replace("[services.gateway.clients.phone]\n", ""), tmp_path)
    assert "phone" not in without.services["gateway"].clients
    assert sorted(p.name for p in kept.glob("CLIENT_*")) == ["CLIENT_LAPTOP"]
    again = _saved_load(text, tmp_path).services["gateway"].clients
    assert again["phone"].key != first["phone"].key
    assert again["laptop"].key == first["laptop"].key


def test_revoking_removes_a_planted_link_not_its_target(tmp_path: Path) -> None:
    _saved_load(ON, tmp_path)
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    (tmp_path / "secrets" / "gateway" / "CLIENT_OLD").symlink_to(target)
    _saved_load(ON, tmp_path)
    assert not (tmp_path / "secrets" / "gateway" / "CLIENT_OLD").is_symlink()
    assert target.read_text() == "keep me\n"


def test_only_a_gateway_drops_client_named_files(tmp_path: Path) -> None:
    """Another kind's generated secret that happens to be named CLIENT_* is its own."""
    text = ('[services.tool]\nimage = "localhost/tool:1"\n'
            'generated_secrets = ["CLIENT_TOKEN"]\n')
    first = _saved_load(text, tmp_path).services["tool"].env["CLIENT_TOKEN"]
    assert _saved_load(text, tmp_path).services["tool"].env["CLIENT_TOKEN"] == first


def test_a_literal_client_key_is_a_config_error(tmp_path: Path) -> None:
    text = ON + '[services.gateway.clients.laptop]\nkey = "a"\n'
    with pytest.raises(ConfigError) as caught:
        _load(text, tmp_path)
    line = caught.value.one_line()
    assert caught.value.key_path == "services.gateway.clients.laptop.key", line
    assert "a client key does not belong in the config file" in line
    assert "CLIENT_LAPTOP" in line and "\n" not in line
    result = _cli(tmp_path, text, "start", "gateway")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "secrets").exists()


def test_config_yaml_is_in_the_hash(tmp_path: Path) -> None:
    spec, _ = _gateway(ON + REMOTE, tmp_path)
    other, _ = _gateway(ON + REMOTE.replace("price_out = 3", "price_out = 4"), tmp_path)
    assert spec.config_hash != other.config_hash


def test_usage_callback_listed_only_when_shipped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(gateway_config, "shipped_modules",
                        lambda: {"airpods_guard": "x", "airpods_usage": "y"})
    spec, _ = _gateway(ON, tmp_path)
    assert _config(spec)["litellm_settings"]["callbacks"] == [
        "airpods_guard.guard", "airpods_usage.usage_logger"]
    monkeypatch.setattr(gateway_config, "shipped_modules", lambda: {"airpods_guard": "x"})
    spec, _ = _gateway(ON, tmp_path)
    assert _config(spec)["litellm_settings"]["callbacks"] == ["airpods_guard.guard"]


def test_remote_keys_come_from_the_environment_at_start(tmp_path: Path, monkeypatch) -> None:
    spec, _ = _gateway(ON + REMOTE, tmp_path)
    kind = g.Gateway()
    problems = kind.start_problems(spec, {})
    assert len(problems) == 1 and "HOMELAB_KEY" in problems[0]
    assert kind.start_problems(spec, {"HOMELAB_KEY": "k"}) == []
    monkeypatch.setenv("HOMELAB_KEY", "remote-secret")
    monkeypatch.setattr(g, "usage_host_dir", lambda s: tmp_path / "usage")
    mounts = [m for m in spec.mounts if m.target == g.USAGE_DIR]
    assert mounts and mounts[0].mode == "rw"
    settled = kind.settle(spec.__class__(**{**spec.__dict__, "mounts": ()}), lambda p: None,
                          None)  # type: ignore[arg-type]
    files = {f.target: f.value for f in settled.secret_files}
    assert files[g.ENV_PREFIX + "AIRPODS_REMOTE_KEY_0"] == "remote-secret"
    assert g.ENV_PREFIX + "HOMELAB_KEY" not in files
    assert settled.deferred == ()


# --- bad input: one line, exit 2, nothing started ---------------------------------------------

BAD = [
    ("no-base-url", ON + '[services.gateway.remotes.r]\nmodels = ["m"]\n',
     "services.gateway.remotes.r.base_url", "required key is missing"),
    ("ftp-base-url", ON + '[services.gateway.remotes.r]\nbase_url = "ftp://x/v1"\n'
     'models = ["m"]\n', "services.gateway.remotes.r.base_url", "not an http(s) URL"),
    ("newline-in-base-url", ON + '[services.gateway.remotes.r]\n'
     'base_url = "http://x/v1\\nmodel_list: []"\nmodels = ["m"]\n',
     "services.gateway.remotes.r.base_url", "space or control character"),
    ("space-in-base-url", ON + '[services.gateway.remotes.r]\nbase_url = "http://lab x/v1"\n'
     'models = ["m"]\n', "services.gateway.remotes.r.base_url", "space or control character"),
    ("port-out-of-range", ON + '[services.gateway.remotes.r]\nbase_url = "http://x:99999/v1"\n'
     'models = ["m"]\n', "services.gateway.remotes.r.base_url", "no valid port"),
    ("port-zero", ON + '[services.gateway.remotes.r]\nbase_url = "http://x:0/v1"\n'
     'models = ["m"]\n', "services.gateway.remotes.r.base_url", "no valid port"),
    ("query-in-base-url", ON + '[services.gateway.remotes.r]\nbase_url = "http://x/v1?a=1"\n'
     'models = ["m"]\n', "services.gateway.remotes.r.base_url", "query or fragment"),
    ("literal-key", ON + '[services.gateway.remotes.r]\nbase_url = "http://x/v1"\n'
     'api_key = "sk-abc"\nmodels = ["m"]\n', "services.gateway.remotes.r", "literal key"),
    ("key-in-api-key-env", ON + '[services.gateway.remotes.r]\nbase_url = "http://x/v1"\n'
     'api_key_env = "sk-abcdef123"\nmodels = ["m"]\n', "services.gateway.remotes.r.api_key_env",
     "never the key itself"),
    *[(f"reserved-key-variable-{var}", ON + '[services.gateway.remotes.r]\n'
       f'base_url = "http://x/v1"\napi_key_env = "{var}"\nmodels = ["m"]\n',
       "services.gateway.remotes.r.api_key_env", "is reserved")
      for var in ("LITELLM_MASTER_KEY", "AIRPODS_LOCAL_KEY_0", "AIRPODS_REMOTE_KEY_1",
                  "CLIENT_LAPTOP", "LLAMA_API_KEY", "WEBUI_SECRET_KEY", "PATH", "LD_PRELOAD",
                  "PYTHONPATH", "Path")],
    ("generated-secret-as-key-variable", ON + '[services.llamacpp]\n'
     'generated_secrets = ["MY_OWN_SECRET"]\n[services.gateway.remotes.r]\n'
     'base_url = "http://x/v1"\napi_key_env = "MY_OWN_SECRET"\nmodels = ["m"]\n',
     "services.gateway.remotes.r.api_key_env", "a key airpods generates"),
    *[(f"loose-type-{key}-{value}", ON + '[services.gateway.remotes.r]\n'
       f'base_url = "http://x/v1"\nmodels = ["m"]\n{key} = {value}\n',
       f"services.gateway.remotes.r.{key}", "valid number")
      for key, value in (("price_in", '"0.5"'), ("price_in", "true"), ("price_out", '"1"'),
                         ("timeout_s", '"30"'))],
    ("loose-private", ON + '[services.llamacpp]\nprivate = "yes"\n', "services.llamacpp.private",
     "valid boolean"),
    ("deep-fallbacks", ON + '[services.gateway.remotes.r]\nbase_url = "http://x/v1"\n'
     + "models = [" + ", ".join(f'"m{i}"' for i in range(2001)) + "]\n"
     + "[services.gateway.fallbacks]\n" + "".join(f'm{i} = ["m{i + 1}"]\n' for i in range(2000)),
     "services.gateway.fallbacks.m0", "more than 8 models deep"),
    ("fallback-unknown", ON + f'[services.gateway.fallbacks]\n"{LOCAL}" = ["nope"]\n',
     f'services.gateway.fallbacks."{LOCAL}"[0]', "unknown model 'nope'"),
    ("fallback-cycle", ON + REMOTE + '[services.gateway.remotes.r2]\nbase_url = "http://y/v1"\n'
     'models = ["m2"]\n[services.gateway.fallbacks]\n"llama3.1:8b" = ["m2"]\n'
     'm2 = ["llama3.1:8b"]\n', 'services.gateway.fallbacks."llama3.1:8b"', "fallback cycle"),
    ("private-with-fallbacks", ON + REMOTE + '[services.llamacpp]\nprivate = true\n'
     f'[services.gateway.fallbacks]\n"{LOCAL}" = ["llama3.1:8b"]\n',
     f'services.gateway.fallbacks."{LOCAL}"', "is private"),
    ("duplicate-model", ON + '[services.gateway.remotes.r]\nbase_url = "http://x/v1"\n'
     f'models = ["{LOCAL}"]\n', "services.gateway.remotes.r.models[0]", "also served by"),
    ("unsafe-client", ON + '[services.gateway.clients."../evil"]\n',
     'services.gateway.clients."../evil"', "not a safe client name"),
]


@pytest.mark.parametrize(("case", "text", "key_path", "expect"), BAD, ids=[b[0] for b in BAD])
def test_bad_gateway_config_is_one_line_and_starts_nothing(
    case: str, text: str, key_path: str, expect: str, tmp_path: Path
) -> None:
    assert_refused(text, key_path, expect, tmp_path)


def assert_refused(text: str, key_path: str, expect: str, tmp_path: Path) -> None:
    """A ConfigError at `key_path` saying `expect`; `start gateway`: one line, exit 2, nothing
    made."""
    with pytest.raises(ConfigError) as caught:
        _load(text, tmp_path)
    assert caught.value.key_path == key_path, caught.value.one_line()
    assert expect in caught.value.one_line()
    result = _cli(tmp_path, text, "start", "gateway")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert key_path in result.stderr and expect in result.stderr
    assert not (tmp_path / "xdg-data" / "airpods" / "gateway").exists()


@pytest.mark.parametrize(("url", "expect"), [
    ("http://admin:hunter2-pass@lab:99999/v1", "no valid port"),
    ("http://admin:hunter2-pass@lab/v1\\n", "control character"),
    ("http://admin:hunter2-pass@lab x/v1", "control character"),
    ("ftp://admin:hunter2-pass@lab/v1", "not an http(s) URL"),
    ("http://lab/v1?api_key=hunter2-pass", "query or fragment"),
    ("http://lab:0/v1?x=1&token=hunter2-pass", "no valid port"),
])
def test_a_password_in_base_url_is_never_printed(url: str, expect: str, tmp_path: Path) -> None:
    text = ON + f'[services.gateway.remotes.r]\nbase_url = "{url}"\nmodels = ["m"]\n'
    for args in (("config", "validate"), ("start", "gateway")):
        result = _cli(tmp_path, text, *args)
        assert result.returncode == 2, result.stderr
        assert expect in result.stderr and "****" in result.stderr, result.stderr
        assert "hunter2" not in result.stderr + result.stdout, result.stderr


def test_unset_key_variable_refuses_start_and_warns_in_validate(tmp_path: Path) -> None:
    result = _cli(tmp_path, ON + REMOTE, "start", "gateway")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "HOMELAB_KEY" in result.stderr, result.stderr
    assert "not set" in result.stderr
    result = _cli(tmp_path, ON + REMOTE, "config", "validate")
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "HOMELAB_KEY" in result.stderr


def _cli(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess:
    config = tmp_path / "config.toml"
    config.write_text(text)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRPODS_", "HOMELAB", "CONTAINER_HOST"))}
    env |= {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
            "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"), "AIRPODS_NO_CACHE": "1",
            # Nothing may be started: a socket that is not there would fail loudly.
            "CONTAINER_HOST": f"unix://{tmp_path}/no-podman.sock"}
    return subprocess.run([sys.executable, "-m", "airpods", "--config", str(config), *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=60)


def test_routes_now() -> None:
    table = [
        {"model": "a", "backend": "local", "where": "llamacpp", "private": False,
         "fallbacks": ["big"]},
        {"model": "p", "backend": "local", "where": "secret", "private": True, "fallbacks": []},
        {"model": "big", "backend": "remote", "where": "homelab", "private": False,
         "fallbacks": []},
    ]
    up = gateway_routes.routes_now("gw", table, {"llamacpp": True, "secret": True})
    assert [(r["route"], r["via"]) for r in up] == [
        ("local", "llamacpp"), ("local", "secret"), ("remote", "homelab")]
    down = gateway_routes.routes_now("gw", table, {})
    assert [(r["route"], r["via"]) for r in down] == [
        ("fallback", "big"), ("unavailable", None), ("remote", "homelab")]


def test_lan_is_opt_in_and_warned(tmp_path: Path) -> None:
    spec, _ = _gateway(ON, tmp_path)
    assert [p.host_ip for p in spec.ports] == ["127.0.0.1"]
    assert not any("reachable from other machines" in n for n in spec.notes)
    lan, _ = _gateway(ON.replace("enabled = true\n", 'enabled = true\nports = [{ host = 4000, '
                                 'container = 4000, host_ip = "0.0.0.0" }]\n', 1), tmp_path)
    [note] = [n for n in lan.notes if "reachable from other machines" in n]
    assert note.startswith("gateway: port 4000 is published on 0.0.0.0")
    # The llama-servers behind it stay on loopback.
    llama = render_service("llamacpp", _load(ON, tmp_path).config.services["llamacpp"],
                           _load(ON, tmp_path).config, HOST)
    assert [p.host_ip for p in llama.ports] == ["127.0.0.1"]
