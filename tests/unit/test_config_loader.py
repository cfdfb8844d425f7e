"""Loading and layering: defaults + user file + environment, errors located by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airpods.config.loader import (
    LoadedConfig,
    deep_merge,
    default_config_path,
    find_line,
    key_lines,
    load_config,
    load_config_text,
    user_config_path,
)
from airpods.errors import ConfigError
from airpods.host import HostFacts
from airpods.keys import format_key_path, parse_key_path

CPU = HostFacts(accelerator="cpu", reason="test", physical_cores=4, logical_cores=8)
CUDA = HostFacts(accelerator="cuda", reason="test", physical_cores=4, logical_cores=8)

LARGE = """\
[services.llamacpp-large]
kind = "llama-server"
default_model = "big.gguf"
image = "ghcr.io/ggml-org/llama.cpp:server"
pod = "airpods-llamacpp-large"
container = "airpods-llamacpp-large-server"
network_aliases = ["llamacpp-large"]
ports = [{ host = 8082, container = 8080 }]
volumes = { models = { source = "airpods_llamacpp_models", target = "/models", mode = "ro" } }

[services.llamacpp-large.command_args]
model = "/models/{{ default_model }}"
port = "{{ ports[0].container }}"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str, **kwargs: object) -> LoadedConfig:
    kwargs.setdefault("host", CPU)
    kwargs.setdefault("environ", {})
    return load_config(write(tmp_path, text), **kwargs)  # type: ignore[arg-type]


def error(tmp_path: Path, text: str, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, **kwargs)
    return info.value


def test_defaults_alone_are_valid() -> None:
    loaded = load_config_text(Path("/nonexistent/config.toml"), None, host=CPU, environ={})
    assert loaded.config.enabled_services() == ["llamacpp", "open-webui"]
    assert loaded.files == (default_config_path(),)
    assert default_config_path().is_file()


def test_user_file_overrides_one_key_and_keeps_the_rest(tmp_path: Path) -> None:
    loaded = load(tmp_path, "[services.llamacpp.command_args]\nctx_size = 8192\n")
    args = loaded.config.services["llamacpp"].command_args
    assert args["ctx_size"] == 8192
    assert args["host"] == "0.0.0.0"  # sibling keys from the defaults survive the merge
    raw_args = loaded.raw["services"]["llamacpp"]["command_args"]
    assert raw_args["model"] == "/models/{{ default_model }}"  # raw: before templates
    assert loaded.files[-1] == tmp_path / "config.toml"


def test_arrays_replace_rather_than_merge(tmp_path: Path) -> None:
    loaded = load(tmp_path, '[services.llamacpp]\nnetwork_aliases = ["brain"]\n')
    assert loaded.config.services["llamacpp"].network_aliases == ["brain"]
    url = loaded.config.services["open-webui"].env["OPENAI_API_BASE_URLS"]
    assert url == "http://brain:8080/v1"


def test_user_file_adds_a_whole_service(tmp_path: Path) -> None:
    loaded = load(tmp_path, LARGE)
    large = loaded.config.services["llamacpp-large"]
    # The kind's command_args come first; the file's keys replace theirs in place.
    assert large.command_args == {
        "model": "/models/big.gguf", "alias": "big", "ctx_size": 4096, "host": "0.0.0.0",
        "port": "8080", "n_gpu_layers": "0", "threads": "4",
    }
    assert large.ports[0].host == 8082
    # Open WebUI is wired to every enabled llama-server, the new one included.
    urls = loaded.config.services["open-webui"].env["OPENAI_API_BASE_URLS"]
    assert urls == "http://llamacpp:8080/v1;http://llamacpp-large:8080/v1"


def test_env_override_sets_accelerator_and_detection_sees_the_raw_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def fake_detect(requested: str = "auto", **_: object) -> HostFacts:
        seen.append(requested)
        return CUDA

    monkeypatch.setattr("airpods.host.detect_host", fake_detect)
    loaded = load_config(write(tmp_path, ""), environ={"AIRPODS_ACCELERATOR": "cuda"})
    assert loaded.config.runtime.accelerator == "cuda"
    assert loaded.overrides == ("AIRPODS_ACCELERATOR",)
    assert seen == ["cuda"]
    assert loaded.config.services["llamacpp"].command_args["n_gpu_layers"] == "all"


def test_bad_env_override_names_the_variable(tmp_path: Path) -> None:
    err = error(tmp_path, "", environ={"AIRPODS_ACCELERATOR": "tpu"})
    assert err.file == "$AIRPODS_ACCELERATOR"
    assert err.key_path == "runtime.accelerator"


def test_default_user_path_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert user_config_path() == tmp_path / "airpods" / "config.toml"
    (tmp_path / "airpods").mkdir()
    (tmp_path / "airpods" / "config.toml").write_text("[cli]\nfailure_log_lines = 5\n")
    assert load_config(host=CPU, environ={}).config.cli.failure_log_lines == 5


def test_missing_default_user_file_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    loaded = load_config(host=CPU, environ={})
    assert loaded.user_path == tmp_path / "airpods" / "config.toml"
    assert len(loaded.files) == 1


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml", host=CPU, environ={})
    assert info.value.exit_code == 2
    assert "nope.toml" in info.value.one_line()


def test_user_file_error_has_file_line_and_key(tmp_path: Path) -> None:
    text = "# my settings\n\n[services.llamacpp.command_args]\nctx_size = 8192\n\n"
    text += "[services.llamacpp.health]\ntimeout_s = -1\n"
    err = error(tmp_path, text)
    assert err.file == str(tmp_path / "config.toml")
    assert err.line == 7
    assert err.key_path == "services.llamacpp.health.timeout_s"
    assert err.one_line().startswith(f"config error: {tmp_path / 'config.toml'}:7: ")


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    err = error(tmp_path, '[services.llamacpp]\ndefualt_model = "x.gguf"\n')
    assert err.message == "unknown key 'defualt_model'"
    assert err.hint == "did you mean 'default_model'?"
    assert err.line == 2


def test_wrong_type_names_the_value(tmp_path: Path) -> None:
    err = error(tmp_path, "[services.llamacpp]\ndefault_model = 5\n")
    assert err.key_path == "services.llamacpp.default_model"
    assert err.message == "input should be a valid string (got 5)"


def test_origin_blames_the_layer_that_set_the_key() -> None:
    from airpods.config.problems import Layer
    from airpods.config.problems import origin as _origin

    defaults = Layer("d", {"services": {"a": {"image": "x", "ports": [{"host": 1}]}}})
    user = Layer("u", {"services": {"a": {"pod": "p"}, "b": {}}})
    layers = [defaults, user]
    assert _origin(("services", "a", "image"), layers) == 0
    assert _origin(("services", "a", "pod"), layers) == 1
    assert _origin(("services", "a", "ports", 0, "host"), layers) == 0
    assert _origin(("services", "b", "pod"), layers) == 1  # missing key: who wrote the table


def test_toml_syntax_error_has_line(tmp_path: Path) -> None:
    err = error(tmp_path, "[cli]\nmax_concurrent_pulls = 2\nfailure_log_lines = \n")
    assert err.line == 3
    assert "TOML syntax error" in err.message


def test_more_problems_are_counted(tmp_path: Path) -> None:
    err = error(tmp_path, "[cli]\nmax_concurrent_pulls = 0\nfailure_log_lines = -1\n")
    assert err.key_path == "cli.max_concurrent_pulls"
    assert err.hint is not None and "1 more problem" in err.hint


def test_empty_env_values_are_dropped(tmp_path: Path) -> None:
    loaded = load(tmp_path, '[services.open-webui.env]\nENABLE_PERSISTENT_CONFIG = ""\n')
    env = loaded.config.services["open-webui"].env
    assert "ENABLE_PERSISTENT_CONFIG" not in env  # a user file can remove a default variable
    assert "OLLAMA_BASE_URL" not in env  # renders to "" while Ollama is disabled
    loaded = load(tmp_path, "[services.ollama]\nenabled = true\n")
    assert loaded.config.services["open-webui"].env["OLLAMA_BASE_URL"] == "http://ollama:11434"


def test_llama_api_key_reaches_open_webui(tmp_path: Path) -> None:
    loaded = load(tmp_path, '[services.llamacpp.env]\nLLAMA_API_KEY = "s3cret"\n')
    assert loaded.config.services["open-webui"].env["OPENAI_API_KEYS"] == "s3cret"


@pytest.mark.parametrize(
    ("text", "key_path"),
    [
        # Two enabled services on one host port.
        (
            "[services.open-webui]\nports = [{ host = 8080, container = 8080 }]\n",
            "services.open-webui.ports[0].host",
        ),
        # A wildcard address takes the port on every address; the user's end is reported.
        (
            "[services.llamacpp-ui]\nenabled = true\n"
            'ports = [{ host = 3000, container = 8080, host_ip = "0.0.0.0" }]\n',
            "services.llamacpp-ui.ports[0].host",
        ),
        (
            '[services.llamacpp-ui]\ncontainer = "airpods-llamacpp-server"\n',
            "services.llamacpp-ui.container",
        ),
        ('[services.ollama]\npod = "airpods-open-webui"\n', "services.ollama.pod"),
        ('[services.open-webui]\ndepends_on = ["nope"]\n', "services.open-webui.depends_on[0]"),
        ('[services.llamacpp]\ndepends_on = ["open-webui"]\n', "services.llamacpp.depends_on"),
    ],
)
def test_cross_service_checks(tmp_path: Path, text: str, key_path: str) -> None:
    err = error(tmp_path, text)
    assert err.key_path == key_path
    assert err.file == str(tmp_path / "config.toml")
    assert err.line is not None


UI_PORT = "[services.llamacpp-ui]\nenabled = true\nports = [{ host = 8080, container = 8080, "


@pytest.mark.parametrize(
    ("service", "text", "clashing"),
    [
        # A disabled service's port publishes nothing, so it clashes with nothing.
        ("ollama", "[services.ollama]\nports = [{ host = 8080, container = 11434 }]\n",
         "[services.ollama]\nenabled = true\nports = [{ host = 8080, container = 11434 }]\n"),
        # Same port number, different address or protocol.
        ("llamacpp-ui", UI_PORT + 'host_ip = "127.0.0.2" }]\n',
         UI_PORT + 'host_ip = "127.0.0.1" }]\n'),
        ("llamacpp-ui", UI_PORT + 'protocol = "udp" }]\n', UI_PORT + 'protocol = "tcp" }]\n'),
    ],
)
def test_ports_that_do_not_clash(tmp_path: Path, service: str, text: str, clashing: str) -> None:
    ports = load(tmp_path, text).config.services[service].ports
    assert [p.host for p in ports] == [8080]  # kept as written, beside llamacpp's 8080
    # The same file one difference away does clash: the case above is not passing by accident.
    err = error(tmp_path, clashing)
    assert err.key_path == f"services.{service}.ports[0].host"
    assert "already published by services.llamacpp.ports[0]" in err.one_line()


def test_deep_merge_does_not_share_or_mutate() -> None:
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    merged = deep_merge(base, {"a": {"b": 2}, "e": {"f": 1}})
    assert merged == {"a": {"b": 2, "c": [1]}, "d": 1, "e": {"f": 1}}
    merged["a"]["c"].append(2)
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}


def test_key_lines_scan() -> None:
    text = (
        "top = 1\n"
        "[services.llamacpp]\n"
        "ports = [\n"
        "  { host = 1, container = 2 },\n"
        "]\n"
        'doc = """\n'
        "fake = 1\n"
        '"""\n'
        '[services."my svc".env]\n'
        "A = 1\n"
        "[[x.items]]\n"
        "v = 1\n"
        "[[x.items]]\n"
        "v = 2\n"
    )
    lines = key_lines(text)
    assert lines[("top",)] == 1
    assert lines[("services", "llamacpp", "ports")] == 3
    assert ("services", "llamacpp", "fake") not in lines
    assert lines[("services", "my svc", "env", "A")] == 10
    assert lines[("x", "items", 1, "v")] == 14
    assert find_line(text, ("services", "llamacpp", "ports", 0, "host")) == 3
    assert find_line(text, ("services", "llamacpp", "missing")) == 2
    assert find_line(text, ("nowhere",)) is None


@given(
    st.lists(
        st.one_of(
            st.text(min_size=1, max_size=8),
            st.integers(min_value=0, max_value=99),
        ),
        min_size=1,
        max_size=5,
    ).filter(lambda parts: isinstance(parts[0], str))
)
def test_key_paths_round_trip(parts: list[str | int]) -> None:
    path = tuple(parts)
    assert parse_key_path(format_key_path(path)) == path
