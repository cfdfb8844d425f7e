"""Memory estimate and fit, table-tested against figures computed by hand."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from airpods.fit import (
    estimate,
    fit,
    kv_bytes_per_token,
    parse_memory_limit,
    vram_total,
)
from airpods.gguf_meta import ModelMeta
from airpods.host import GpuInfo, HostFacts, ram_total

GiB = 1 << 30


def meta(layers, heads, kv_heads, head_dim, quant="Q4_K_M", params=None, ctx=32768,
         per_layer=()) -> ModelMeta:
    return ModelMeta(architecture="llama", quantization=quant, parameters=params,
                     context_length=ctx, layers=layers, heads=heads, kv_heads=kv_heads,
                     head_dim_k=head_dim, head_dim_v=head_dim, kv_heads_per_layer=per_layer)


# (model, ctx, hand-computed 2 × layers × ctx × kv_heads × head_dim × 2)
KV_TABLE = [
    # Qwen2.5-0.5B: 24 layers, 14 heads, 2 K/V heads (GQA), head dim 64
    (meta(24, 14, 2, 64), 4096, 2 * 24 * 4096 * 2 * 64 * 2),  # 50_331_648 = 48 MiB
    # Llama-3-8B: 32 layers, 32 heads, 8 K/V heads, head dim 128
    (meta(32, 32, 8, 128), 8192, 1 * GiB),
    # the same without GQA would be four times as much
    (meta(32, 32, 32, 128), 8192, 4 * GiB),
    # Qwen2.5-7B: 28 layers, 4 K/V heads, head dim 128, full 32k context
    (meta(28, 28, 4, 128), 32768, 1_879_048_192),
    # tiny: 2 layers, 4 heads (no GQA), head dim 16
    (meta(2, 4, 4, 16), 256, 2 * 2 * 256 * 4 * 16 * 2),  # 65_536
    # per-layer K/V heads 1+2+4 = 7, head dim 16: 2 × 7 × ctx × 16 × 2
    (meta(3, 8, 4, 16, per_layer=(1, 2, 4)), 1000, 2 * 7 * 1000 * 16 * 2),
]


@pytest.mark.parametrize("model,ctx,expected", KV_TABLE)
def test_kv_cache_table(model: ModelMeta, ctx: int, expected: int) -> None:
    est = estimate(model, 1_000_000, ctx)
    assert est.kv_cache_bytes == expected
    assert est.total_bytes == 1_000_000 + expected
    assert est.as_dict() == {"weights_bytes": 1_000_000, "kv_cache_bytes": expected,
                             "total_bytes": 1_000_000 + expected}


def test_unknown_head_counts_give_no_kv() -> None:
    m = ModelMeta(None, None, None, None, None, None, None, None, None)
    assert kv_bytes_per_token(m) is None
    assert estimate(m, 123, 4096).total_bytes == 123


def test_fits_in_ram_with_headroom() -> None:
    m = meta(24, 14, 2, 64)
    est = estimate(m, 491_400_000, 4096)  # Qwen2.5-0.5B Q4_K_M: 491.4 MB + 48 MiB
    result = fit(m, est, 4096, ram_total=8 * GiB, vram_total=None, on_gpu=False)
    assert result.ram is True and result.vram is None
    assert result.advice.startswith("fits in RAM")
    # 0.6 GB of RAM less 20% = 480 MB: does not fit, and 491 MB of weights leave no ctx.
    tight = fit(m, est, 4096, ram_total=600_000_000, vram_total=None, on_gpu=False)
    assert tight.ram is False
    assert "does not fit in RAM" in tight.advice


def test_advice_names_a_smaller_ctx() -> None:
    # Llama-3-8B Q4_K_M (4.92 GB) at ctx 32768: K/V 4 GiB; 8 GiB RAM less 20% = 6_871_947_673.
    m = meta(32, 32, 8, 128, params=8_030_000_000)
    est = estimate(m, 4_920_000_000, 32768)
    assert est.kv_cache_bytes == 4 * GiB
    result = fit(m, est, 32768, ram_total=8 * GiB, vram_total=None, on_gpu=False)
    assert result.ram is False
    # (6_871_947_673 - 4_920_000_000) // 131_072 bytes a token = 14_892 → 14 × 1024 = 14336
    assert "set ctx_size 14336 (now 32768)" in result.advice
    # Q3_K_M: 8.03e9 × 3.91 / 8 = 3.92 GB + 4.29 GB K/V > 6.87 GB: no quant helps at this ctx
    assert "quant" not in result.advice


def test_advice_names_a_smaller_quant() -> None:
    # 8.03 B params in F16 (16.06 GB) at ctx 4096 (512 MiB K/V), 16 GiB RAM → 13.74 GB budget.
    m = meta(32, 32, 8, 128, quant="F16", params=8_030_000_000)
    est = estimate(m, 16_060_000_000, 4096)
    result = fit(m, est, 4096, ram_total=16 * GiB, vram_total=None, on_gpu=False)
    assert result.ram is False
    # Q8_0: 8.03e9 × 8.5 / 8 = 8.53 GB + 0.54 GB fits: the first rung below F16.
    assert "a smaller quant such as Q8_0 (about 8.5 GB of weights)" in result.advice
    assert "ctx_size" not in result.advice  # the weights alone exceed the budget


def test_vram_decides_the_advice_on_a_gpu() -> None:
    m = meta(32, 32, 8, 128, params=8_030_000_000)
    est = estimate(m, 4_920_000_000, 8192)  # 4.92 GB + 1 GiB = 5.99 GB
    on_8g = fit(m, est, 8192, ram_total=64 * GiB, vram_total=8 * GiB, on_gpu=True)
    assert (on_8g.ram, on_8g.vram) == (True, True)  # 8 GiB less 10% = 7.73 GB
    on_6g = fit(m, est, 8192, ram_total=64 * GiB, vram_total=6 * GiB, on_gpu=True)
    assert (on_6g.ram, on_6g.vram) == (True, False)  # 5.80 GB budget
    assert "does not fit in VRAM" in on_6g.advice
    # (5_798_205_849 - 4_920_000_000) // 131_072 = 6700 → 6 × 1024
    assert "set ctx_size 6144" in on_6g.advice
    cpu = fit(m, est, 8192, ram_total=64 * GiB, vram_total=6 * GiB, on_gpu=False)
    assert cpu.vram is None


def test_memory_limit_caps_the_ram_budget() -> None:
    m = meta(24, 14, 2, 64)
    est = estimate(m, 491_400_000, 4096)
    result = fit(m, est, 4096, ram_total=64 * GiB, vram_total=None, on_gpu=False,
                 memory_limit=parse_memory_limit("512m"))
    assert result.ram is False and "memory limit" in result.advice
    assert parse_memory_limit("16g") == 16 * GiB
    assert parse_memory_limit("1.5G") == int(1.5 * GiB)
    assert parse_memory_limit(None) is None


def test_ram_total_from_meminfo(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/meminfo").write_text("MemTotal:       24570380 kB\nMemFree: 1 kB\n")
    assert ram_total(tmp_path) == 24570380 * 1024
    assert ram_total(tmp_path / "nowhere") is None


def _host(vendor: str | None, accelerator: str = "cuda") -> HostFacts:
    gpu = GpuInfo(vendor, "x") if vendor else None
    return HostFacts(accelerator, "", 2, 4, gpu=gpu)


def test_vram_from_nvidia_smi_and_sysfs(tmp_path: Path) -> None:
    def run(argv, **_):
        return subprocess.CompletedProcess(
            argv, 0, "NVIDIA H100 80GB HBM3, 550.54, 81559 MiB\nNVIDIA L4, 550.54, 23034 MiB\n",
            "")

    assert vram_total(_host("nvidia"), run=run, which=lambda _: "/usr/bin/nvidia-smi") == (
        (81559 + 23034) << 20)
    card = tmp_path / "sys/class/drm/card0/device"
    card.mkdir(parents=True)
    (card / "mem_info_vram_total").write_text("17163091968\n")
    assert vram_total(_host("amd", "rocm"), root=tmp_path) == 17163091968
    assert vram_total(_host(None, "cpu")) is None
    assert vram_total(_host("nvidia", "cpu"), run=run, which=lambda _: "x") is None
