"""Capability tiers by hardware (issue 14): the catalogue, the budget, recommend and auto, on
fake /proc and /sys trees and fake nvidia-smi answers (tests/unit/test_host.py's helpers)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from airpods.cli.models_recommend import recommendation
from airpods.config import tiers as tiermod
from airpods.config.tiers import Budget, auto_pick, budget, load_catalogue, pick_fitting_quant
from airpods.errors import ConfigError
from airpods.host import detect_host
from tests.unit.test_host import cpuinfo, write

RECOMMEND_KEYS = {"host", "usable", "ctx", "tiers", "auto"}
RECOMMEND_HOST_KEYS = {"memory_bytes", "vram_bytes", "gpu_name", "accelerator", "physical_cores"}
RECOMMEND_USABLE_KEYS = {"where", "total_bytes", "usable_bytes", "headroom"}
RECOMMEND_TIER_KEYS = {"tier", "repo", "file", "quant", "parameters", "estimate_bytes",
                       "headroom_bytes", "fast_enough", "licence", "commercial_use", "auto"}
GiB = 1 << 30


def fake_host(root: Path, *, ram_gib: float, cores: int, vram_mib: int | None = None):
    write(root / "proc/meminfo", f"MemTotal: {int(ram_gib * (1 << 20))} kB\n")
    write(root / "proc/cpuinfo", cpuinfo(1, cores, 1))
    if vram_mib is None:
        return tiermod.with_auto_model(detect_host("cpu", root=root))
    write(root / "etc/cdi/nvidia.yaml", "kind: nvidia.com/gpu\n")

    def smi(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 0, f"RTX Test, 550.1, {vram_mib} MiB\n", "")

    return tiermod.with_auto_model(
        detect_host("auto", root=root, run=smi, which=lambda n: f"/usr/bin/{n}"))


@pytest.fixture
def no_user_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))


def test_builtin_catalogue_is_data_smallest_first(no_user_catalogue) -> None:
    tiers = load_catalogue()
    names = [t.name for t in tiers]
    assert names[:5] == ["tiny", "small", "medium", "large", "xl"]
    assert all(t.file.endswith(".gguf") and "/" in t.repo for t in tiers)
    sizes = [t.estimate(4096) for t in tiers]
    assert sizes == sorted(sizes)
    # the tiny tier is the model airpods has always started with
    assert tiers[0].source == "Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf"


def test_kv_estimate_matches_the_fit_formula(no_user_catalogue) -> None:
    tiny = load_catalogue()[0]
    # Qwen2.5-0.5B: 24 layers x 2 K/V heads x 64 dims x (K+V) x f16 = 12 KiB a token
    assert tiny.kv_bytes(4096) == 24 * 2 * 64 * 2 * 2 * 4096


def test_user_file_adds_and_replaces_tiers(tmp_path: Path) -> None:
    user = write(tmp_path / "models.toml", """
[tiers.tiny]
repo = "me/Tiny-GGUF"
file = "tiny.gguf"
quant = "Q8_0"
parameters = 1000
size_bytes = 1000
layers = 1
kv_heads = 1
head_dim = 1

[tiers.huge]
repo = "me/Huge-GGUF"
file = "huge-Q2_K.gguf"
quant = "Q2_K"
parameters = 400_000_000_000
size_bytes = 150_000_000_000
layers = 100
kv_heads = 8
head_dim = 128
cpu_min_cores = 64
""")
    tiers = {t.name: t for t in load_catalogue(user)}
    assert tiers["tiny"].repo == "me/Tiny-GGUF" and tiers["tiny"].cpu_min_cores == 1
    assert "huge" in tiers and "small" in tiers


@pytest.mark.parametrize(("body", "where", "what"), [
    ("[tiers.x]\nrepo = 'a/b'\n", "tiers.x", "missing file"),
    ("[tiers.x]\nrepo = 'a/b'\nfile = 'x.gguf'\nquant = 'Q4'\nparameters = -1\n"
     "size_bytes = 1\nlayers = 1\nkv_heads = 1\nhead_dim = 1\n", "tiers.x.parameters",
     "positive integer"),
    ("[tiers.x]\nrepos = 'a/b'\n", "tiers.x.repos", "unknown key 'repos'"),
    ("[tiers.x]\nrepo = 'a/b'\nfile = '../x.gguf'\nquant = 'Q4'\nparameters = 1\n"
     "size_bytes = 1\nlayers = 1\nkv_heads = 1\nhead_dim = 1\n", "tiers.x.file", "not a GGUF"),
    ("[models]\n", None, "unknown table 'models'"),
    ("[tiers.x\n", None, "not valid TOML"),
])
def test_bad_user_catalogue_is_one_line_with_file_and_key(tmp_path: Path, body: str,
                                                         where: str | None, what: str) -> None:
    user = write(tmp_path / "models.toml", body)
    with pytest.raises(ConfigError) as err:
        load_catalogue(user)
    line = err.value.one_line()
    assert str(user) in line and what in line and "\n" not in line
    if where:
        assert err.value.key_path == where


def test_budget_is_vram_on_a_gpu_and_ram_otherwise(tmp_path: Path) -> None:
    gpu = fake_host(tmp_path / "g", ram_gib=64, cores=16, vram_mib=24576)
    assert gpu.vram_bytes == 24 * GiB and gpu.gpu_name
    room = budget(gpu)
    assert (room.where, room.usable_bytes) == ("VRAM", int(24 * GiB * 0.9))
    assert budget(gpu, on_gpu=False).where == "RAM"
    cpu = fake_host(tmp_path / "c", ram_gib=23.5, cores=2)
    assert budget(cpu) == Budget(int(23.5 * GiB), int(23.5 * GiB * 0.8), "RAM", 0.2)


def test_recommend_on_a_small_cpu_box_lists_what_fits_and_auto_is_tiny(
        tmp_path: Path, no_user_catalogue) -> None:
    host = fake_host(tmp_path, ram_gib=23.5, cores=2)
    doc = recommendation(host, 4096)
    assert set(doc) == RECOMMEND_KEYS and set(doc["host"]) == RECOMMEND_HOST_KEYS
    assert set(doc["usable"]) == RECOMMEND_USABLE_KEYS
    assert all(set(t) == RECOMMEND_TIER_KEYS for t in doc["tiers"])
    names = [t["tier"] for t in doc["tiers"]]
    assert names == ["tiny", "small", "medium", "large", "xl"]  # xxl (32B) needs ~21 GB
    assert doc["auto"] == "tiny"  # 2 cores: the bigger ones fit but crawl
    for t in doc["tiers"]:
        assert t["headroom_bytes"] == doc["usable"]["usable_bytes"] - t["estimate_bytes"] > 0
    json.dumps(doc)


def test_recommend_on_a_gpu_picks_the_largest_that_fits_vram(tmp_path: Path,
                                                            no_user_catalogue) -> None:
    host = fake_host(tmp_path, ram_gib=32, cores=4, vram_mib=12288)  # 12 GB card
    doc = recommendation(host, 4096)
    assert doc["usable"]["where"] == "VRAM"
    assert doc["auto"] == "xl"  # 14B Q4_K_M + K/V ~ 9.8 GB of 11.1 GB usable
    assert all(t["fast_enough"] for t in doc["tiers"])
    assert recommendation(host, 32768)["auto"] == "large"  # a longer context costs a tier


def test_a_tiny_machine_gets_nothing(tmp_path: Path, no_user_catalogue) -> None:
    host = fake_host(tmp_path, ram_gib=0.5, cores=1)
    assert recommendation(host, 4096)["tiers"] == []
    assert auto_pick(host, 4096, load_catalogue()) is None


def test_pick_fitting_quant_takes_the_largest_that_fits_and_says_why() -> None:
    room = Budget(16 * GiB, int(16 * GiB * 0.8), "RAM", 0.2)
    quants = {"Q8_0": ("m-Q8_0.gguf", 15 * GiB), "Q6_K": ("m-Q6_K.gguf", 11 * GiB),
              "Q4_K_M": ("m-Q4_K_M.gguf", 8 * GiB)}
    got = pick_fitting_quant("o/r", quants, room)
    assert got.path == "m-Q6_K.gguf"
    assert "picked Q6_K" in got.why and "Q8_0 would not fit" in got.why
    tight = Budget(4 * GiB, int(4 * GiB * 0.8), "RAM", 0.2)
    none = pick_fitting_quant("o/r", quants, tight)
    assert none.path is None and "no quant fits" in none.why and "Q4_K_M" in none.why


def test_tier_for_file(no_user_catalogue) -> None:
    tiers = load_catalogue()
    assert tiermod.tier_for_file("qwen2.5-1.5b-instruct-q4_k_m.gguf", tiers).name == "small"
    assert tiermod.tier_for_file("other.gguf", tiers) is None


def test_tool_calling_warning_below_about_3b() -> None:
    assert "too small to call tools" in tiermod.tool_calling_warning(1_540_000_000)
    assert tiermod.tool_calling_warning(3_090_000_000) is None  # Qwen2.5-3B
    assert tiermod.tool_calling_warning(None) is None  # unknown: no claim


def test_models_info_warns_on_stderr_and_keeps_json_clean(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from airpods.cli import cli
    from tests.fake_podman import use_fake_podman
    from tests.tiny_model import write_tiny_gguf

    for key, sub in (("XDG_CONFIG_HOME", "cfg"), ("XDG_DATA_HOME", "data"),
                     ("XDG_CACHE_HOME", "cache")):
        monkeypatch.setenv(key, str(tmp_path / sub))
    monkeypatch.setenv("AIRPODS_ACCELERATOR", "cpu")
    volume = tmp_path / "volume"
    volume.mkdir()
    write_tiny_gguf(volume / "m.gguf")
    use_fake_podman(monkeypatch, volume_dir=volume)
    result = CliRunner().invoke(cli, ["models", "info", "m.gguf", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "m.gguf"
    assert "too small to call tools reliably" in result.stderr
