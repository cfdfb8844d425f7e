"""The first-use download follows the served model and `model_source = "auto"` (issue 14):
real config files, real rendering, a bind-mounted volume directory and the loopback hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from airpods.host import HostFacts
from airpods.models.first_use import prepare_models, served_files, source_for
from airpods.resolving import resolve
from airpods.secrets import SecretStore
from tests.hf_server import FakeHub
from tests.tiny_model import write_tiny_gguf

TINY = "qwen2.5-0.5b-instruct-q4_k_m.gguf"
TINY_REPO = "Qwen/Qwen2.5-0.5B-Instruct-GGUF"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"),
              "XDG_CACHE_HOME": str(tmp_path / "cache"), "AIRPODS_ACCELERATOR": "cpu",
              "HF_TOKEN": "hf_test"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with FakeHub() as fake:
        fake.add(TINY_REPO, TINY, write_tiny_gguf(tmp_path / "tiny.gguf"))
        fake.add("acme/Default-GGUF", "default-Q4_K_M.gguf",
                 write_tiny_gguf(tmp_path / "d.gguf", seed=3))
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


def stack(tmp_path: Path, body: str) -> tuple[Path, Path, object]:
    volume = tmp_path / "volume"
    volume.mkdir(exist_ok=True)
    config = tmp_path / "user.toml"
    config.write_text(f"""
[services.open-webui]
enabled = false
[services.llamacpp]
volumes = {{ models = {{ source = "{volume}", target = "/models", mode = "ro" }} }}
{body}
""")
    resolved = resolve(config, environ={"AIRPODS_ACCELERATOR": "cpu"},
                       secrets=SecretStore(root=tmp_path / "secrets"))
    return config, volume, resolved


def first_use(config: Path, resolved, notes: list[str]) -> None:
    prepare_models(resolved, [resolved.specs["llamacpp"]], object(), config_path=config,
                   offline=False, note=notes.append)


def test_source_for_applies_to_default_model_or_the_file_it_names(env) -> None:
    assert source_for("acme/R:Q4_K_M", "a.gguf", "a.gguf") == "acme/R:Q4_K_M"
    assert source_for("acme/R:Q4_K_M", "a.gguf", "other.gguf") is None
    assert source_for("hf://acme/R/sub/b.gguf", "a.gguf", "b.gguf") == "hf://acme/R/sub/b.gguf"
    assert source_for("auto", None, TINY) == f"{TINY_REPO}/{TINY}"
    assert source_for("auto", TINY, "mine.gguf") is None
    assert source_for(None, TINY, TINY) is None


def test_builtin_auto_downloads_the_tier_and_says_so_in_one_line(env, hub, tmp_path) -> None:
    # default_model pinned to the tiny tier's file: the built-in follows the host, and the
    # loopback hub holds only this one (test_default_model_follows_the_host covers the rest)
    config, volume, resolved = stack(tmp_path, f'default_model = "{TINY}"')
    spec = resolved.specs["llamacpp"]
    assert served_files(spec) == [(str(volume), TINY)]
    notes: list[str] = []
    first_use(config, resolved, notes)
    assert (volume / TINY).exists()
    [line] = [n for n in notes if "auto" in n]
    assert "tier tiny" in line and TINY_REPO in line and "\n" not in line


def test_command_args_model_elsewhere_never_downloads_the_default(env, hub, tmp_path) -> None:
    config, volume, resolved = stack(tmp_path, """default_model = "default-Q4_K_M.gguf"
model_source = "acme/Default-GGUF:Q4_K_M"
[services.llamacpp.command_args]
model = "/models/mine.gguf"
""")
    notes: list[str] = []
    first_use(config, resolved, notes)
    assert list(volume.iterdir()) == []
    assert hub.gets("default-Q4_K_M.gguf") == []
    assert any("mine.gguf is not in volume" in n and "default_model" in n for n in notes), notes


def test_router_presets_are_each_fetched_from_their_tier(env, hub, tmp_path) -> None:
    config, volume, resolved = stack(tmp_path, f"""mode = "router"
model_source = "auto"
[services.llamacpp.models.fast]
file = "{TINY}"
[services.llamacpp.models.mine]
file = "mine.gguf"
""")
    assert sorted(n for _, n in served_files(resolved.specs["llamacpp"])) == ["mine.gguf", TINY]
    notes: list[str] = []
    first_use(config, resolved, notes)
    assert sorted(p.name for p in volume.iterdir()) == [TINY]
    assert any("mine.gguf" in n and "no catalogue tier" in n for n in notes), notes


def test_offline_refuses_in_one_line(env, hub, tmp_path) -> None:
    from airpods.errors import UsageError

    config, volume, resolved = stack(tmp_path, f'default_model = "{TINY}"')
    with pytest.raises(UsageError, match="--offline"):
        prepare_models(resolved, [resolved.specs["llamacpp"]], object(), config_path=config,
                       offline=True, note=lambda text: None)
    assert list(volume.iterdir()) == []


def test_default_model_follows_the_host(tmp_path: Path, env) -> None:
    from airpods.config import load_config_text

    big = HostFacts("cuda", "t", 16, 32, memory_bytes=64 << 30, vram_bytes=24 << 30,
                    gpu_name="RTX", auto_model="Qwen2.5-14B-Instruct-Q4_K_M.gguf")
    loaded = load_config_text(tmp_path / "u.toml", "", host=big, environ={},
                              secrets=SecretStore(root=tmp_path / "s"))
    assert loaded.config.services["llamacpp"].default_model == "Qwen2.5-14B-Instruct-Q4_K_M.gguf"
    assert loaded.config.services["llamacpp"].model_source == "auto"
    plain = HostFacts("cpu", "t", 2, 2)  # nothing picked: the long-standing default
    loaded = load_config_text(tmp_path / "u.toml", "", host=plain, environ={},
                              secrets=SecretStore(root=tmp_path / "s"))
    assert loaded.config.services["llamacpp"].default_model == TINY


def test_first_use_with_no_route_to_the_hub_is_one_line(env, tmp_path, monkeypatch) -> None:
    import socket
    import time

    from airpods.errors import AirpodsError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    config, volume, resolved = stack(tmp_path, f'default_model = "{TINY}"')
    began = time.monotonic()
    with pytest.raises(AirpodsError) as err:
        first_use(config, resolved, [])
    assert time.monotonic() - began < 60  # a hang guard: the bench times it
    line = err.value.one_line()
    assert "\n" not in line and endpoint in line and "refused" in line
    assert list(volume.iterdir()) == []
