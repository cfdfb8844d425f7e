"""Router presets and kind-less services: what the hostile pass found, each a config error in
one located line (or masked, or a failed doctor check)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airpods import kinds
from tests.unit.test_bad_files import airpods, one_line
from tests.unit.test_router import ROUTER, config_error, spec_of


@pytest.mark.parametrize("key", ["model", "m", "alias", "a", "host", "port", "api_key",
                                 "api-key", "api_key_file"])
def test_a_preset_cannot_set_what_the_router_sets(tmp_path: Path, key: str) -> None:
    text = ROUTER.replace("command_args = { ctx_size = 8192 }",
                          f'command_args = {{ ctx_size = 8192, "{key}" = "x" }}')
    line = config_error(text, tmp_path)
    assert f"services.llamacpp.models.fast.command_args.{key}" in line or (
        f'services.llamacpp.models.fast.command_args."{key}"' in line), line
    assert "the router sets it" in line


@pytest.mark.parametrize(("replace", "expected"), [
    ("command_args = { ctx_size = 8192 }", "command_args = { ctx_size = 0 }"),
    ("command_args = { ctx_size = 8192 }", "command_args = { ctx_size = -5 }"),
    ("command_args = { ctx_size = 8192 }", "command_args = { ctx_size = 99999999999 }"),
    ("command_args = { ctx_size = 8192 }", "command_args = { c = 0 }"),
    ("command_args = { ctx_size = 8192 }", "command_args = { temp = nan }"),
    ("threads = 2", "threads = 2\ntemp = nan"),
    ("threads = 2", "threads = 2\nctx_size = 0"),
    ("threads = 2", "threads = 2\ntop_p = inf"),
    ("threads = 2", 'threads = 2\ntemp = "NaN"'),
])
def test_impossible_numbers_are_config_errors(tmp_path: Path, replace: str, expected: str) -> None:
    line = config_error(ROUTER.replace(replace, expected), tmp_path)
    assert line.startswith("config error:") and "command_args." in line, line


def test_impossible_numbers_in_single_mode_too(tmp_path: Path) -> None:
    line = config_error("[services.llamacpp.command_args]\nctx_size = 0\n", tmp_path)
    assert "services.llamacpp.command_args.ctx_size: ctx_size 0" in line
    line = config_error("[services.llamacpp.command_args]\ntemp = nan\n", tmp_path)
    assert "services.llamacpp.command_args.temp: nan" in line


def test_ids_differing_only_by_case(tmp_path: Path) -> None:
    line = config_error(ROUTER + '[services.llamacpp.models.Fast]\nfile = "f.gguf"\n', tmp_path)
    assert "services.llamacpp.models.Fast: model ids 'fast' and 'Fast' differ only by case" in line


@pytest.mark.parametrize(("text", "where"), [
    ('[services.llamacpp.models.x]\nfile = "x.gguf"\n', "services.llamacpp.models:"),
    ('[services.llamacpp.router]\nmodels_max = 2\n', "services.llamacpp.router:"),
    ('[services.llamacpp]\nmode = "single"\n[services.llamacpp.router]\npreload = ["a"]\n',
     "services.llamacpp.router:"),
])
def test_router_tables_under_single_mode(tmp_path: Path, text: str, where: str) -> None:
    line = config_error(text, tmp_path)
    assert where in line and 'mode = "router"' in line, line


GATEWAY_ON = '[services.gateway]\nenabled = true\n'


@pytest.mark.parametrize(("text", "where", "owner", "kind"), [
    ('[services.ollama.models.x]\nfile = "x.gguf"\n', "services.ollama.models:", "llama-server",
     "ollama"),
    (GATEWAY_ON + '[services.gateway.router]\nmodels_max = 2\n', "services.gateway.router:",
     "llama-server", "gateway"),
    ('[services.open-webui]\nprivate = true\n', "services.open-webui.private:", "llama-server",
     "open-webui"),
    ('[services.llamacpp]\nvia_gateway = true\n', "services.llamacpp.via_gateway:", "open-webui",
     "llama-server"),
    ('[services.llamacpp.remotes.lab]\nbase_url = "http://x/v1"\nmodels = ["m"]\n',
     "services.llamacpp.remotes:", "gateway", "llama-server"),
    ('[services.ollama.clients.laptop]\n', "services.ollama.clients:", "gateway", "ollama"),
    ('[services.open-webui.fallbacks]\nm = []\n', "services.open-webui.fallbacks:", "gateway",
     "open-webui"),
])
def test_another_kinds_key_is_a_config_error(tmp_path: Path, text: str, where: str, owner: str,
                                            kind: str) -> None:
    """A kind's own key on another kind's service did nothing, silently: `private = true` on
    Open WebUI, a gateway's remotes on a llama-server."""
    line = config_error(text, tmp_path)
    assert where in line and f"is a key of {owner} services; this one is kind {kind!r}" in line, (
        line)


def test_preload_without_presets_needs_its_gguf(tmp_path: Path) -> None:
    spec = spec_of('[services.llamacpp]\nmode = "router"\n'
                   '[services.llamacpp.router]\npreload = ["tiny"]\n', tmp_path)
    assert kinds.get("llama-server").required_files(spec) == (
        ("the file of preloaded model 'tiny'", "/models/tiny.gguf"),)


KEYED = ROUTER.replace("threads = 2", 'threads = 2\nhf_token = "leak"').replace(
    "command_args = { ctx_size = 8192 }", 'command_args = { ctx_size = 8192, hf-token = "lk" }')


def test_key_like_preset_values_are_masked_in_dry_run(tmp_path: Path) -> None:
    config = tmp_path / "user.toml"
    config.write_text(KEYED)
    text = airpods(tmp_path, "start", "llamacpp", "--dry-run", config=config,
                   AIRPODS_ACCELERATOR="cpu")
    assert text.returncode == 0, text.stderr
    assert "hf-token = ****" in text.stdout
    assert "leak" not in text.stdout and "= lk" not in text.stdout
    as_json = airpods(tmp_path, "start", "llamacpp", "--dry-run", "--json", config=config,
                      AIRPODS_ACCELERATOR="cpu")
    data = json.loads(as_json.stdout)
    [content] = [f["content"] for f in data["services"][0]["files"]]
    assert "hf-token = ****" in content and "leak" not in as_json.stdout
    assert "= lk" not in as_json.stdout


def test_the_ini_really_carries_the_value(tmp_path: Path) -> None:
    """Masking is for printing only: the router still gets the token."""
    ini = spec_of(KEYED, tmp_path).config_files[0].value
    assert "hf-token = leak" in ini and "hf-token = lk" in ini


SECOND = """
[services.large]
image = "ghcr.io/ggml-org/llama.cpp:server"
default_model = "qwen2.5-7b-instruct-q4_k_m.gguf"
pod = "airpods-large"
container = "airpods-large-server"
network_aliases = ["large"]
generated_secrets = ["LLAMA_API_KEY"]
ports = [{ host = 8082, container = 8080 }]
volumes = { models = { source = "airpods_llamacpp_models", target = "/models", mode = "ro" } }

[services.large.command_args]
model = "/models/{{ default_model }}"
alias = "large"
ctx_size = 32768
host = "0.0.0.0"
port = 8080
"""


def test_a_kindless_llama_server_is_refused_naming_the_kind(tmp_path: Path) -> None:
    config = tmp_path / "user.toml"
    config.write_text(SECOND)
    line = one_line(airpods(tmp_path, "config", "validate", config=config))
    assert "services.large" in line and 'kind = "llama-server"' in line
    assert f"{config}:2:" in line  # where the table starts


@pytest.mark.parametrize("variant", [
    SECOND.replace('image = "ghcr.io/ggml-org/llama.cpp:server"',
                   'image = "localhost/my-llama:1"'),  # a custom image: the .gguf says it
    SECOND.replace('model = "/models/{{ default_model }}"\n', "")
          .replace('default_model = "qwen2.5-7b-instruct-q4_k_m.gguf"\n', ""),  # the image does
])
def test_either_sign_is_enough(tmp_path: Path, variant: str) -> None:
    assert 'kind = "llama-server"' in config_error(variant, tmp_path)


def test_with_the_kind_it_joins_open_webui_and_generic_stays_allowed(tmp_path: Path) -> None:
    from airpods.config.loader import load_config_text
    from airpods.secrets import SecretStore
    from tests.unit.test_router import HOST

    def load(text: str):
        return load_config_text(tmp_path / "user.toml", text, host=HOST, environ={},
                                secrets=SecretStore(root=tmp_path / "secrets"))

    fixed = load(SECOND.replace("[services.large]\n", '[services.large]\nkind = "llama-server"\n')
                 + "[services.open-webui]\nenabled = true\n")
    assert fixed.config.services["large"].kind == "llama-server"
    urls = json.dumps(fixed.config.services["open-webui"].env)
    assert "http://large:8080/v1" in urls
    plain = load(SECOND.replace("[services.large]\n", '[services.large]\nkind = "generic"\n'))
    assert plain.config.services["large"].kind == "generic"


def test_doctor_fails_for_a_missing_preset_file(tmp_path: Path) -> None:
    from airpods.cli.doctor import FAIL, OK, _required_file_checks

    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "qwen2.5-0.5b-instruct-q4_k_m.gguf").write_bytes(b"GGUF")
    text = ROUTER + f'[services.llamacpp.volumes.models]\nsource = "{vol}"\ntarget = "/models"\n'
    spec = spec_of(text, tmp_path)
    required = kinds.get("llama-server").required_files(spec)
    checks = _required_file_checks(None, spec, required)  # type: ignore[arg-type]
    assert [c.status for c in checks] == [OK, FAIL]
    assert "sub/coder.gguf not in volume" in checks[1].found and "start refuses" in \
        checks[1].found


@pytest.mark.parametrize("presets", [True, False], ids=["presets", "models-dir"])
def test_a_cached_router_must_keep_its_model_mount_read_only(tmp_path: Path, presets) -> None:
    """The cache's safety check knows a router's models (every preset, or its whole models
    dir), not only a single server's --model."""
    from airpods.cache import safety_problems
    from airpods.record import replace

    text = ROUTER if presets else '[services.llamacpp]\nmode = "router"\n'
    spec = spec_of(text, tmp_path)
    assert safety_problems(spec) == []
    writable = tuple(replace(m, mode="rw") for m in spec.mounts)
    assert safety_problems(replace(spec, mounts=writable)) == [
        "the model mount /models is writable"]


def test_unknown_key_offers_only_the_kinds_own_keys(tmp_path: Path) -> None:
    line = config_error('[services.open-webui]\nprivat = true\n', tmp_path)
    assert "services.open-webui.privat: unknown key 'privat'" in line, line
    assert "via_gateway" in line and "private" not in line.replace("'privat'", "")
    assert not {"remotes", "router"} & set(line.split("known keys: ")[1].rstrip(")").split(", "))
    assert "did you mean 'private'?" in config_error('[services.llamacpp]\nprivat = true\n',
                                                     tmp_path)
