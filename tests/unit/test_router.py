"""Router mode, the pure parts: the TOML -> router argv + preset INI, validation, /models parsing.

The behaviour of the real router (loading, eviction, preload, failures) is asserted in
tests/integration/test_router_podman.py against the real llama-server.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from airpods import kinds
from airpods.config.loader import load_config_text
from airpods.engine.readiness import FAILED, LOADING, READY, _probe
from airpods.errors import ConfigError
from airpods.host import HostFacts
from airpods.kinds import llama_router as LR
from airpods.kinds.render import render_service
from airpods.record import replace
from airpods.secrets import SecretStore, secret_values
from airpods.spec import ContainerSpec

HOST = HostFacts("cpu", "no supported GPU detected", 4, 8)
ROUTER = """
[services.llamacpp]
mode = "router"
[services.llamacpp.command_args]
threads = 2
api_key = "sk-router-test-key-0123456789"
[services.llamacpp.router]
models_max = 2
idle_unload_s = 900
preload = ["fast"]
[services.llamacpp.models.fast]
file = "qwen2.5-0.5b-instruct-q4_k_m.gguf"
command_args = { ctx_size = 8192 }
[services.llamacpp.models.coder]
file = "sub/coder.gguf"
command_args = { ctx_size = 32768, n_gpu_layers = "all", jinja = true, mlock = false, c = 7 }
"""


def spec_of(text: str, tmp_path: Path, service: str = "llamacpp") -> ContainerSpec:
    loaded = load_config_text(tmp_path / "user.toml", text, host=HOST, environ={},
                              secrets=SecretStore(root=tmp_path / "secrets"))
    return render_service(service, loaded.config.services[service], loaded.config, HOST)


def config_error(text: str, tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config_text(tmp_path / "user.toml", text, host=HOST, environ={},
                         secrets=SecretStore(root=tmp_path / "secrets"))
    return info.value.one_line()


# --- rendering ----------------------------------------------------------------------------------


def test_router_argv_has_no_model_and_only_router_flags(tmp_path: Path) -> None:
    spec = spec_of(ROUTER, tmp_path)
    assert spec.command == (
        "--host", "0.0.0.0", "--port", "8080",
        "--models-preset", "/run/secrets/models-preset.ini", "--models-max", "2",
        "--sleep-idle-seconds", "900", "--api-key-file", "/run/secrets/llama-api-key",
    )
    # The key still moved into its secret file, the INI into its own (not secret) file.
    assert [f.target for f in spec.secret_files] == ["/run/secrets/llama-api-key"]
    assert [(f.name, f.target) for f in spec.config_files] == [
        ("airpods-llamacpp-models-preset", "/run/secrets/models-preset.ini")]
    assert spec.labels["io.airpods.secrets"] == (
        "airpods-llamacpp-llama-api-key,airpods-llamacpp-models-preset")


def test_preset_ini_follows_the_flag_rules(tmp_path: Path) -> None:
    ini = spec_of(ROUTER, tmp_path).config_files[0].value
    assert ini == (
        "; written by airpods from its config: edit the TOML, not this file\n"
        "[*]\n"
        "ctx-size = 4096\n"  # the service's own command_args, minus model/alias/host/port/key
        "n-gpu-layers = 0\n"
        "threads = 2\n"
        "\n"
        "[fast]\n"
        "model = /models/qwen2.5-0.5b-instruct-q4_k_m.gguf\n"
        "ctx-size = 8192\n"
        "load-on-startup = true\n"
        "\n"
        "[coder]\n"
        "model = /models/sub/coder.gguf\n"
        "ctx-size = 32768\n"
        "n-gpu-layers = all\n"
        "jinja = true\n"  # true: the flag; false (mlock): omitted
        "c = 7\n"  # a one-letter key is the short flag's name
    )
    assert "sk-router" not in ini and "alias" not in ini and "port" not in ini


def test_the_ini_is_not_secret_but_a_copied_key_in_it_would_be_masked(tmp_path: Path) -> None:
    spec = spec_of(ROUTER, tmp_path)
    values = secret_values(spec)
    assert "sk-router-test-key-0123456789" in values
    assert not any("gguf" in v or "ctx-size" in v for v in values)


def test_without_presets_every_gguf_of_the_volume_is_served(tmp_path: Path) -> None:
    spec = spec_of('[services.llamacpp]\nmode = "router"\n'
                   '[services.llamacpp.router]\npreload = ["tiny"]\n', tmp_path)
    assert spec.command[spec.command.index("--models-dir") + 1] == "/models"
    assert spec.config_files[0].value.endswith("\n[tiny]\nload-on-startup = true\n")
    assert LR.preload_ids(spec) == ("tiny",)
    kind = kinds.get("llama-server")
    # The router names the files it finds by their stem: a preloaded id needs its GGUF there.
    assert kind.required_files(spec) == (("the file of preloaded model 'tiny'",
                                          "/models/tiny.gguf"),)
    assert kind.model_path(spec) is None and kind.model_id(spec) is None


AUTO = """
[services.llamacpp]
mode = "router"
[services.llamacpp.command_args]
ctx_size = 256
[services.llamacpp.models.alpha]
file = "alpha.gguf"
[services.llamacpp.models.beta]
file = "beta.gguf"
command_args = { ctx_size = 1024 }
"""


def test_auto_models_max_waits_for_the_model_files_and_says_so(tmp_path: Path) -> None:
    spec = spec_of('[services.llamacpp]\nmode = "router"\n', tmp_path)
    assert spec.command[spec.command.index("--models-max") + 1] == "1"
    assert spec.deferred == ("models_max",)
    assert ("llamacpp: router models_max: auto: decided at start from the model files' memory "
            "estimate (1 until then)") in spec.notes
    assert "--sleep-idle-seconds" not in spec.command  # idle_unload_s = 0: never


def _volume(tmp_path: Path) -> tuple[Path, kinds.HostPath]:
    from tests.tiny_model import write_tiny_gguf

    volume = tmp_path / "volume"
    volume.mkdir()
    write_tiny_gguf(volume / "alpha.gguf")
    write_tiny_gguf(volume / "beta.gguf")

    def host_path(path: str) -> Path | None:
        if path == "/models" or path.startswith("/models/"):
            return volume / path.removeprefix("/models").lstrip("/")
        return None

    return volume, host_path


def _need(path: Path, ctx: int) -> int:
    from airpods.fit import estimate
    from airpods.gguf_meta import read_meta

    return estimate(read_meta(path), path.stat().st_size, ctx).total_bytes


@pytest.mark.parametrize("text", [AUTO, '[services.llamacpp]\nmode = "router"\n'
                                  '[services.llamacpp.command_args]\nctx_size = 256\n'],
                         ids=["presets", "models-dir"])
def test_auto_models_max_takes_the_largest_models_that_fit_together(
    tmp_path: Path, text: str
) -> None:
    spec = spec_of(text, tmp_path)
    volume, host_path = _volume(tmp_path)
    presets = "alpha" in LR.preset_files(spec)
    needs = sorted([_need(volume / "alpha.gguf", 256),
                    _need(volume / "beta.gguf", 1024 if presets else 256)], reverse=True)
    llama = kinds.get("llama-server")

    def settled(ram: int | None) -> ContainerSpec:
        return llama.settle(spec, host_path, kinds.Memory(ram_total=ram))

    def models_max(s: ContainerSpec) -> str:
        return s.command[s.command.index("--models-max") + 1]

    both = settled(int(sum(needs) / 0.8) + 1)  # RAM less the 20 % headroom holds both
    assert models_max(both) == "2" and both.deferred == ()
    assert any("auto = 2: the 2 largest of 2 models need" in n for n in both.notes)
    one = settled(int(needs[0] / 0.8) + 1)  # only the largest
    assert models_max(one) == "1" and any("auto = 1: the 1 largest" in n for n in one.notes)
    none = settled(int(needs[1] / 0.8))  # not even the smallest: at least 1 all the same
    assert models_max(none) == "1"
    unknown = settled(None)
    assert models_max(unknown) == "1"
    assert any("the memory size is unknown" in n for n in unknown.notes)
    # Sealed again: the hash follows what runs, and the same files give the same hash.
    assert both.config_hash != one.config_hash == none.config_hash
    assert settled(int(sum(needs) / 0.8) + 1).config_hash == both.config_hash
    assert both.labels["io.airpods.config-hash"] == both.config_hash


def test_auto_models_max_counts_preloads_at_least(tmp_path: Path) -> None:
    spec = spec_of(AUTO + '[services.llamacpp.router]\npreload = ["alpha", "beta"]\n', tmp_path)
    assert spec.command[spec.command.index("--models-max") + 1] == "2"  # the placeholder
    _, host_path = _volume(tmp_path)
    settled = kinds.get("llama-server").settle(spec, host_path, kinds.Memory(ram_total=1))
    assert settled.command[settled.command.index("--models-max") + 1] == "2"


def test_single_mode_renders_as_before(tmp_path: Path) -> None:
    key = '[services.llamacpp.env]\nLLAMA_API_KEY = "sk-fixed-for-the-hash"\n'
    spec = spec_of(key, tmp_path)
    assert spec.config_files == () and "--model" in spec.command
    same = spec_of(key + '[services.llamacpp]\nmode = "single"\n', tmp_path)
    assert same.command == spec.command and same.config_hash == spec.config_hash


def test_an_edited_preset_changes_the_config_hash(tmp_path: Path) -> None:
    before = spec_of(ROUTER, tmp_path)
    after = spec_of(ROUTER.replace("ctx_size = 8192", "ctx_size = 4096"), tmp_path)
    assert before.command == after.command
    assert before.config_hash != after.config_hash


def test_readiness_waits_for_preloads_and_status_reads_the_files(tmp_path: Path) -> None:
    spec = spec_of(ROUTER, tmp_path)
    kind = kinds.get("llama-server")
    check = kind.ready_check(spec)
    assert (check.path, check.model_ids, check.api_key) == (
        "/models", ("fast",), "sk-router-test-key-0123456789")
    assert kind.required_files(spec) == (
        ("the file of model 'fast'", "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"),
        ("the file of model 'coder'", "/models/sub/coder.gguf"))
    assert kind.model_path(spec) == "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"
    router = kind.router(spec)
    assert router.base_url == "http://127.0.0.1:8080" and router.directory == "/models"


def test_the_cache_round_trip_keeps_the_preset(tmp_path: Path) -> None:
    from airpods.serial import from_plain, to_plain
    from airpods.spec import ContainerSpec

    spec = spec_of(ROUTER, tmp_path)
    assert from_plain(ContainerSpec, json.loads(json.dumps(to_plain(spec)))) == spec


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ('[services.llamacpp.router]\nmodels_max = 0\n',
     "services.llamacpp.router.models_max: must be a whole number of at least 1, or \"auto\""),
    ('[services.llamacpp.router]\nmodels_max = "many"\n', "router.models_max: must be"),
    ('[services.llamacpp.router]\nmodels_max = true\n', "router.models_max: must be"),
    ('[services.llamacpp.router]\nidle_unload_s = -1\n', "router.idle_unload_s"),
    ('[services.llamacpp]\nmode = "swarm"\n', "services.llamacpp.mode"),
    ('[services.llamacpp.models."bad id"]\nfile = "x.gguf"\n', "not a valid model id"),
    ('[services.llamacpp.models.x]\nfile = "/etc/passwd"\n', "models.x.file"),
    ('[services.llamacpp.models.x]\nfile = "../x.gguf"\n', "relative to the model volume"),
    ('[services.llamacpp.models.x]\ncommand_args = {}\n', "models.x.file: required key"),
    ('[services.llamacpp]\nmode = "router"\n[services.llamacpp.router]\npreload = ["a", "a"]\n',
     "'a' is listed twice"),
])
def test_bad_router_keys_are_one_located_line(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in config_error(text, tmp_path)


def test_preload_must_name_a_preset(tmp_path: Path) -> None:
    line = config_error(ROUTER.replace('preload = ["fast"]', 'preload = ["fast", "fats"]'),
                        tmp_path)
    assert ":10: services.llamacpp.router.preload[1]: unknown model 'fats'" in line
    assert "fast, coder" in line


def test_preload_cannot_exceed_models_max(tmp_path: Path) -> None:
    line = config_error(ROUTER.replace('preload = ["fast"]', 'preload = ["fast", "coder"]')
                        .replace("models_max = 2", "models_max = 1"), tmp_path)
    assert "router.preload: 2 models to preload but models_max = 1" in line


def test_a_list_cannot_go_into_the_ini(tmp_path: Path) -> None:
    line = config_error(ROUTER.replace("jinja = true", 'lora = ["a.gguf", "b.gguf"]'), tmp_path)
    assert "services.llamacpp.models.coder.command_args.lora: a list cannot go into the" in line
    line = config_error(ROUTER.replace("threads = 2", 'threads = 2\nchat_template = "x ; y"'),
                        tmp_path)
    assert "command_args.chat_template: ' #' or ' ;' would start a comment" in line


def test_router_mode_needs_a_kind_that_has_it(tmp_path: Path) -> None:
    line = config_error('[services.ollama]\nenabled = true\nmode = "router"\n', tmp_path)
    assert "services.ollama.mode: kind 'ollama' has no 'router' mode" in line
    assert "llama-server" in line


# --- /models and readiness ----------------------------------------------------------------------


PAYLOAD = {"data": [
    {"id": "fast", "status": {"value": "loaded", "args": ["/app/llama-server", "--model",
                                                          "/models/a.gguf", "--ctx-size", "8"]}},
    {"id": "coder", "status": {"value": "unloaded", "args": ["--model", "/models/sub/c.gguf"]}},
    {"id": "bad", "status": {"value": "unloaded", "args": [], "failed": True, "exit_code": 1}},
    {"id": "zzz", "status": {"value": "sleeping", "args": []}},
    {"id": "up", "status": {"value": "loading", "args": []}},
    {"not": "a model"},
]}


def test_parse_models_maps_the_routers_states() -> None:
    models = LR.parse_models(PAYLOAD, "/models")
    assert [(m.id, m.state, m.file) for m in models] == [
        ("fast", "loaded", "a.gguf"), ("coder", "unloaded", "sub/c.gguf"),
        ("bad", "failed", ""), ("zzz", "unloaded", ""), ("up", "loading", "")]
    assert LR.load_states(PAYLOAD)["zzz"] == ("loaded", "")  # it loaded, then slept
    assert LR.load_states(PAYLOAD)["bad"] == ("failed", "exit code 1")


def probe_with(spec: ContainerSpec, payload: dict, model_ids: tuple[str, ...]) -> tuple[str, str]:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        assert request.headers["authorization"] == "Bearer sk-router-test-key-0123456789"
        return httpx.Response(200, json=payload)

    check = replace(kinds.get("llama-server").ready_check(spec), model_ids=model_ids)
    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        return _probe(spec, client, 1.0, check)


def test_router_readiness_is_ready_loading_or_failed(tmp_path: Path) -> None:
    spec = spec_of(ROUTER, tmp_path)
    assert probe_with(spec, PAYLOAD, ("fast",)) == (READY, "model 'fast' loaded")
    assert probe_with(spec, PAYLOAD, ("fast", "up")) == (
        LOADING, "waiting for 'up' (loading) in /models")
    assert probe_with(spec, PAYLOAD, ("fast", "bad")) == (
        FAILED, "model 'bad' failed to load (exit code 1)")
    assert probe_with(spec, PAYLOAD, ()) == (READY, "5 models listed")


def test_a_failed_preload_ends_the_wait_at_once(tmp_path: Path) -> None:
    from airpods.engine.readiness import ContainerState, wait_ready

    spec = spec_of(ROUTER, tmp_path)
    failed = {"data": [{"id": "fast", "status": {"value": "unloaded", "failed": True,
                                                 "exit_code": 1}}]}
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        return httpx.Response(200, json=failed)

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        result = wait_ready(spec, container_state=lambda: ContainerState(running=True),
                            client=client, sleep=lambda s: None)
    assert (result.ready, result.state) == (False, "failed")
    assert result.detail == "model 'fast' failed to load (exit code 1)"
    assert calls == ["/health", "/models"]  # the first answer that says so ends it
