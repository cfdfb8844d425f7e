"""Service kinds (airpods.kinds): a new instance is short TOML, a user's image is honoured, and
no module outside airpods/kinds compares kind names."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from airpods import kinds
from airpods.config.loader import load_config
from airpods.host import HostFacts
from airpods.kinds.llama_server import IMAGES
from airpods.secrets import SecretStore
from tests.specs import render_all

CPU = HostFacts(accelerator="cpu", reason="test", physical_cores=4, logical_cores=8)
CUDA = HostFacts(accelerator="cuda", reason="test gpu", physical_cores=4, logical_cores=8)
PACKAGE = Path(kinds.__file__).parents[1]

FAST = """\
[services.fast]
kind = "llama-server"
default_model = "qwen2.5-0.5b-instruct-q4_k_m.gguf"
ports = [{ host = 8082, container = 8080 }]
[services.fast.command_args]
alias = "fast"
ctx_size = 2048
"""


def load(tmp_path: Path, text: str, host: HostFacts = CPU):
    user = tmp_path / "config.toml"
    user.write_text(text)
    return load_config(user, host=host, secrets=SecretStore(tmp_path / "secrets"))


def test_the_issues_short_second_instance_gets_everything_from_its_kind(tmp_path: Path) -> None:
    loaded = load(tmp_path, FAST)
    fast, llama = render_all(loaded.config, loaded.host, ["fast", "llamacpp"])
    assert (fast.pod, fast.container, fast.network_aliases) == (
        "airpods-fast", "airpods-fast-server", ("fast",))
    assert fast.command == (
        "--model", "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf", "--alias", "fast",
        "--ctx-size", "2048", "--host", "0.0.0.0", "--port", "8080", "--n-gpu-layers", "0",
        "--threads", "4", "--api-key-file", "/run/secrets/llama-api-key")
    assert [(m.source, m.target, m.mode) for m in fast.mounts] == [
        ("airpods_llamacpp_models", "/models", "ro")]
    assert fast.health is not None and fast.health.url == "http://127.0.0.1:8082/health"
    assert fast.image == IMAGES["cpu"]
    # Its own key, not llamacpp's, and Open WebUI is wired to both.
    llama_kind = kinds.get("llama-server")
    assert llama_kind.api_key(fast) and llama_kind.api_key(fast) != llama_kind.api_key(llama)
    webui = loaded.config.services["open-webui"].env
    assert webui["OPENAI_API_BASE_URLS"] == "http://llamacpp:8080/v1;http://fast:8080/v1"
    assert webui["OPENAI_API_KEYS"].split(";") == [
        llama_kind.api_key(llama), llama_kind.api_key(fast)]


def test_on_a_gpu_host_the_kind_gives_the_gpu_image(tmp_path: Path) -> None:
    loaded = load(tmp_path, FAST, CUDA)
    [fast] = render_all(loaded.config, loaded.host, ["fast"])
    assert fast.image == IMAGES["cuda"]
    assert "--n-gpu-layers" in fast.command and "all" in fast.command


def test_an_instance_without_its_own_port_clashes_clearly(tmp_path: Path) -> None:
    from airpods.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        load(tmp_path, '[services.second]\nkind = "llama-server"\ndefault_model = "x.gguf"\n')
    assert "host port 8080/tcp is already published" in caught.value.one_line()
    assert caught.value.key_path == "services.second.ports[0].host"


def dry_run(tmp_path: Path, user_text: str, accelerator: str) -> dict:
    user = tmp_path / "user.toml"
    user.write_text(user_text)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "c"),
           "XDG_DATA_HOME": str(tmp_path / "d"), "XDG_CACHE_HOME": str(tmp_path / "k"),
           "AIRPODS_ACCELERATOR": accelerator}
    out = subprocess.run(
        [sys.executable, "-m", "airpods", "--config", str(user), "start", "llamacpp",
         "--dry-run", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    [svc] = json.loads(out.stdout)["services"]
    return svc


@pytest.mark.parametrize("accelerator", ["cpu", "cuda", "rocm"])
def test_a_users_image_wins_over_the_built_in_images_on_every_accelerator(
    tmp_path: Path, accelerator: str
) -> None:
    svc = dry_run(tmp_path, '[services.llamacpp]\nimage = "localhost/mine:1"\n', accelerator)
    assert svc["image"] == "localhost/mine:1"
    assert f"set in {tmp_path / 'user.toml'}, for every accelerator" in svc["image_reason"]


def test_a_users_images_table_still_picks_per_accelerator(tmp_path: Path) -> None:
    text = ('[services.llamacpp]\nimage = "localhost/mine:1"\n'
            'images = { cuda = "localhost/mine:cuda" }\n')
    assert dry_run(tmp_path, text, "cuda")["image"] == "localhost/mine:cuda"
    assert dry_run(tmp_path, text, "cpu")["image"] == "localhost/mine:1"
    built_in = dry_run(tmp_path, "", "cuda")
    assert built_in["image"] == IMAGES["cuda"]
    assert "set in the built-in kind defaults" in built_in["image_reason"]


def test_no_kind_name_is_compared_outside_airpods_kinds() -> None:
    names = "|".join(re.escape(n) for n in kinds.names())
    compared = re.compile(
        rf"""(==|!=|\bin)\s*[({{\[]?\s*["']({names})["']|["']({names})["']\s*(==|!=)"""
    )
    offenders = []
    for module in PACKAGE.rglob("*.py"):
        if "kinds" in module.relative_to(PACKAGE).parts:
            continue
        for number, line in enumerate(module.read_text().splitlines(), start=1):
            if compared.search(line):
                offenders.append(f"{module.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert offenders == []


def test_gpu_does_not_import_host_at_run_time() -> None:
    code = "import sys, airpods.gpu; print('airpods.host' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "False", out.stderr


def test_every_kind_has_sound_defaults() -> None:
    from airpods.config.kind_checks import config_model, foreign_keys, key_owners

    for name in kinds.names():
        defaults = kinds.get(name).defaults("x")
        if name == kinds.DEFAULT_KIND:
            defaults = {**defaults, "image": "localhost/x:1"}  # a generic service brings its own
        cfg = config_model().model_validate({"services": {"x": {**defaults, "kind": name}}})
        assert foreign_keys("x", cfg.services["x"], key_owners()) == [], name
