"""Will a model fit? Memory estimate (weights + llama.cpp's default f16 K/V cache) and advice.

The estimate: weights = the GGUF file's size (what llama.cpp maps), K/V cache =
layers × ctx × kv_heads × (key dim + value dim) × 2 bytes, which with equal key and value dims is
the familiar 2 × layers × ctx × kv_heads × head_dim × 2. kv_heads is the GGUF's K/V head count,
so grouped-query attention (Qwen2.5-0.5B: 14 query heads, 2 K/V heads) costs 7× less than
counting query heads would. Compute buffers are not counted: estimates are advice, never a gate.

RAM means total RAM less a 20% headroom, not "free" memory: on Linux most of the RAM that looks
used is page cache the kernel gives back (see seed 002). VRAM is read from the GPU (nvidia-smi's
memory.total, amdgpu's sysfs mem_info_vram_total) less 10% for the driver's own use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from airpods.record import record

if TYPE_CHECKING:
    import subprocess

    from airpods.gguf_meta import ModelMeta
    from airpods.host import HostFacts

RAM_HEADROOM = 0.20
VRAM_HEADROOM = 0.10
KV_BYTES = 2  # f16, llama.cpp's default --cache-type-k/-v
# llama-server's default when no --ctx-size is given, and the ctx_size every llama-server of
# airpods renders (kinds/llama_server.py): the one place it is written.
LLAMA_DEFAULT_CTX = 4096
# Bits per weight of common quants (llama.cpp's quantize figures for llama-class models), the
# ladder the advice walks down.
QUANT_BPW = {
    "F32": 32.0, "F16": 16.0, "BF16": 16.0, "Q8_0": 8.5, "Q6_K": 6.56, "Q5_K_M": 5.68,
    "Q5_K_S": 5.52, "Q5_0": 5.5, "Q4_K_M": 4.89, "Q4_K_S": 4.58, "Q4_0": 4.5, "IQ4_XS": 4.25,
    "Q3_K_L": 4.27, "Q3_K_M": 3.91, "Q3_K_S": 3.5, "Q2_K": 2.96,
}
LADDER = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")
MIN_CTX = 512


@record
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes

    def as_dict(self) -> dict[str, int]:
        return {"weights_bytes": self.weights_bytes, "kv_cache_bytes": self.kv_cache_bytes,
                "total_bytes": self.total_bytes}


@record
class Fit:
    ram: bool
    vram: bool | None  # None: no GPU in use, or its memory is unknown
    advice: str

    def as_dict(self) -> dict[str, object]:
        return {"ram": self.ram, "vram": self.vram, "advice": self.advice}


def kv_bytes_per_token(meta: ModelMeta) -> int | None:
    """Bytes of f16 K/V cache per token of context; None when the header lacks the counts."""
    if meta.head_dim_k is None or meta.head_dim_v is None:
        return None
    per_head = (meta.head_dim_k + meta.head_dim_v) * KV_BYTES
    if meta.kv_heads_per_layer:
        return sum(meta.kv_heads_per_layer) * per_head
    if meta.layers is None or meta.kv_heads is None:
        return None
    return meta.layers * meta.kv_heads * per_head


def effective_ctx(ctx_size: int | None, meta: ModelMeta) -> int:
    """The context llama-server allocates: --ctx-size, 0 = the model's own, absent = its
    default (LLAMA_DEFAULT_CTX)."""
    if ctx_size is None:
        return LLAMA_DEFAULT_CTX
    if ctx_size == 0:
        return meta.context_length or LLAMA_DEFAULT_CTX
    return ctx_size


def estimate(meta: ModelMeta, weights_bytes: int, ctx: int) -> MemoryEstimate:
    per_token = kv_bytes_per_token(meta) or 0
    return MemoryEstimate(weights_bytes, per_token * ctx)


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def _smaller_ctx(meta: ModelMeta, weights: int, budget: int, ctx: int) -> int | None:
    per_token = kv_bytes_per_token(meta)
    if not per_token or weights >= budget:
        return None
    fits = (budget - weights) // per_token
    step = 1024 if fits >= 1024 else 256
    best = min(fits // step * step, ctx - 1)
    return best if best >= MIN_CTX else None


def _smaller_quant(
    meta: ModelMeta, weights: int, kv: int, budget: int
) -> tuple[str, int] | None:
    current = QUANT_BPW.get(meta.quantization or "")
    for quant in LADDER:
        bpw = QUANT_BPW[quant]
        if current is not None and bpw >= current:
            continue
        if meta.parameters:
            size = int(meta.parameters * bpw / 8)
        elif current:
            size = int(weights * bpw / current)
        else:
            return None
        if size + kv <= budget:
            return quant, size
    return None


def advise(
    meta: ModelMeta, est: MemoryEstimate, ctx: int, budget: int, where: str
) -> str:
    """One line: fits, or what would (a smaller ctx_size, a smaller quant)."""
    if est.total_bytes <= budget:
        return f"fits in {where}: needs {gb(est.total_bytes)} of {gb(budget)} available"
    ways = []
    small_ctx = _smaller_ctx(meta, est.weights_bytes, budget, ctx)
    if small_ctx is not None:
        ways.append(f"set ctx_size {small_ctx} (now {ctx})")
    quant = _smaller_quant(meta, est.weights_bytes, est.kv_cache_bytes, budget)
    if quant is not None:
        ways.append(f"use a smaller quant such as {quant[0]} (about {gb(quant[1])} of weights)")
    fix = " or ".join(ways) if ways else "pick a smaller model"
    return (f"does not fit in {where}: needs {gb(est.total_bytes)} "
            f"({gb(est.weights_bytes)} weights + {gb(est.kv_cache_bytes)} K/V cache at ctx "
            f"{ctx}), {gb(budget)} available; {fix}")


def fit(
    meta: ModelMeta,
    est: MemoryEstimate,
    ctx: int,
    *,
    ram_total: int,
    vram_total: int | None,
    on_gpu: bool,
    memory_limit: int | None = None,
) -> Fit:
    """Whether `est` fits RAM (total less headroom, capped by a container limit) and VRAM.

    The advice speaks about VRAM when the model goes on a GPU whose memory is known, else RAM.
    """
    ram_budget = int(ram_total * (1 - RAM_HEADROOM))
    where_ram = f"RAM ({gb(ram_total)} less {RAM_HEADROOM:.0%} headroom)"
    if memory_limit is not None and memory_limit < ram_budget:
        ram_budget, where_ram = memory_limit, "the service's memory limit"
    ram_ok = est.total_bytes <= ram_budget
    vram_ok: bool | None = None
    if on_gpu and vram_total:
        vram_budget = int(vram_total * (1 - VRAM_HEADROOM))
        vram_ok = est.total_bytes <= vram_budget
        advice = advise(meta, est, ctx, vram_budget, f"VRAM ({gb(vram_total)})")
    else:
        advice = advise(meta, est, ctx, ram_budget, where_ram)
    return Fit(ram_ok, vram_ok, advice)


# --- what the host has ------------------------------------------------------------------------


def vram_total(
    host: HostFacts,
    *,
    root: Path = Path("/"),
    run: Callable[..., subprocess.CompletedProcess] | None = None,
    which: Callable[[str], str | None] | None = None,
) -> int | None:
    """Total memory of the GPU(s) the host uses, in bytes; None without one or when unknown.

    (HostFacts does not carry it, and is cached: this asks only when a fit is wanted.)
    """
    gpu = host.gpu
    if gpu is None or not gpu.usable or host.accelerator == "cpu":
        return None
    if gpu.vram_bytes:  # read by the accelerator probe already
        return gpu.vram_bytes
    if gpu.vendor == "nvidia":
        from airpods.gpu_probe import nvidia_vram, probe_nvidia

        gpus, _ = probe_nvidia(run=run, which=which)
        return nvidia_vram(gpus)
    if gpu.vendor == "amd":
        from airpods.gpu_probe import amd_vram

        return amd_vram(root)
    return None


def parse_memory_limit(value: str | None) -> int | None:
    """`resources.memory` ("16g", "1.5g", "1073741824") in bytes (None: no limit)."""
    from airpods.values import size_bytes

    return size_bytes(value) if value else None
