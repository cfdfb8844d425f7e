"""Accelerator detection and the per-service choices that follow from it.

`choose_accelerator` looks at the host once per invocation (called by `host.detect_host` when a
command asks, never at import). Everything is read relative to an injectable `root`, and
`nvidia-smi` is found and run through injectable `which` / `run`, so tests use a fake tree.

- NVIDIA: `nvidia-smi` answers AND a CDI spec for `nvidia.com/gpu` exists under /etc/cdi or
  /var/run/cdi → "cuda", `--device nvidia.com/gpu=all`. A GPU without a CDI spec is not used, and
  the user is told so with the command that fixes it (never a silent CPU run).
- AMD: /dev/kfd + /dev/dri/renderD* + GPU nodes in the KFD topology → "rocm", `--device /dev/kfd
  --device /dev/dri` and numeric `--group-add` of the host's video and render gids.
- Vulkan only when asked for; otherwise the CPU.

`service_accelerator`, `pick_image` and `devices_for` are pure helpers the renderer applies to
each service.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from airpods.errors import UsageError
from airpods.gpu_probe import (
    AMD_DEVICES,
    CDI_DIRS,
    CDI_FIX,
    CDI_KIND,
    GPU_GROUPS,
    KFD_NODES,
    NVIDIA_DEVICE,
    NVIDIA_SMI_TIMEOUT_S,
    NvidiaGpu,
    amd_gpu_nodes,
    amd_vram,
    find_cdi_spec,
    group_gids,
    nvidia_vram,
    probe_nvidia,
    render_nodes,
)
from airpods.record import record

if TYPE_CHECKING:  # host.py imports this module, never the other way round at run time
    import subprocess

    from airpods.host import HostFacts

# The accelerator names, written once: the schema, the loader and detection use these.
ACCELERATORS = ("cpu", "cuda", "rocm", "vulkan")
REQUESTS = ("auto", *ACCELERATORS)


@record
class GpuInfo:
    vendor: str  # "nvidia" | "amd" | "other" (Vulkan on an unidentified GPU)
    name: str
    devices: tuple[str, ...] = ()  # values for `podman --device`
    group_add: tuple[str, ...] = ()  # numeric gids
    usable: bool = True
    problem: str | None = None  # why it cannot be used, with the command that fixes it
    vram_bytes: int | None = None  # total memory of the GPU(s), where the probe says

Result = tuple[str, str, GpuInfo | None, list[str]]

# The probes live in airpods.gpu_probe; these names stay importable from here.
__all__ = [
    "ACCELERATORS", "AMD_DEVICES", "CDI_DIRS", "CDI_FIX", "CDI_KIND", "GPU_GROUPS",
    "KFD_NODES", "NVIDIA_DEVICE", "NVIDIA_SMI_TIMEOUT_S", "REQUESTS",
    "GpuInfo", "ImageChoice", "amd_gpu_nodes", "choose_accelerator", "devices_for",
    "group_gids", "pick_image", "probe_nvidia", "service_accelerator",
]


# --------------------------------------------------------------------------------------------
# The choice
# --------------------------------------------------------------------------------------------


def _describe_nvidia(gpus: list[NvidiaGpu]) -> str:
    names = [g.name for g in gpus]
    if len(set(names)) == 1:
        name = names[0] if len(names) == 1 else f"{len(names)}x {names[0]}"
    else:
        name = " + ".join(names)
    driver = gpus[0].driver
    return f"{name} (driver {driver})" if driver else name


def _no_cdi_problem(desc: str) -> str:
    return f"NVIDIA GPU {desc} found but no CDI spec: the GPU will not be used. Fix: {CDI_FIX}"


def _describe_amd(nodes: list[str]) -> str:
    plural = "s" if len(nodes) != 1 else ""
    return f"AMD GPU via /dev/kfd ({len(nodes)} GPU node{plural})"


def choose_accelerator(
    requested: str = "auto",
    *,
    root: Path = Path("/"),
    run: Callable[..., subprocess.CompletedProcess] | None = None,
    which: Callable[[str], str | None] | None = None,
    timeout: float = NVIDIA_SMI_TIMEOUT_S,
) -> Result:
    """Pick the accelerator GPU-enabled services get: (accelerator, reason, gpu, notes).

    `requested` is runtime.accelerator: "auto" detects (and never picks Vulkan); a forced
    choice is honoured even when detection disagrees, with a warning note saying why it may fail.
    """
    if requested not in REQUESTS:
        raise UsageError(
            f"unknown accelerator {requested!r}",
            hint=f"use one of {', '.join(REQUESTS)}",
        )
    if requested == "cpu":
        return "cpu", "runtime.accelerator = 'cpu'", None, []

    notes: list[str] = []
    nvidia: list[NvidiaGpu] = []
    cdi: str | None = None
    if requested in ("auto", "cuda", "vulkan"):
        nvidia, note = probe_nvidia(run=run, which=which, timeout=timeout)
        if note:
            notes.append(note)
        if nvidia:
            cdi = find_cdi_spec(root)
        elif note is None and _nvidia_driver_loaded(root):
            notes.append("an NVIDIA driver is loaded but nvidia-smi is not on PATH: GPU not used")

    if requested == "cuda":
        return _forced_cuda(nvidia, cdi, notes)
    if requested == "vulkan":
        return _vulkan(root, nvidia, cdi, notes)

    amd_nodes: list[str] = []
    kfd = (root / "dev/kfd").exists()
    renders = render_nodes(root)
    if kfd:
        amd_nodes = amd_gpu_nodes(root)
    amd_ok = kfd and bool(renders) and bool(amd_nodes)

    if requested == "rocm":
        return _forced_rocm(root, kfd, renders, amd_nodes, notes)

    # auto
    if nvidia and cdi:
        return _nvidia_with_cdi("cuda", "", nvidia, cdi, notes)
    nvidia_problem: GpuInfo | None = None
    if nvidia:
        desc = _describe_nvidia(nvidia)
        problem = _no_cdi_problem(desc)
        notes.append(problem)
        nvidia_problem = GpuInfo(vendor="nvidia", name=desc, usable=False, problem=problem)
    if amd_ok:
        desc = _describe_amd(amd_nodes)
        info = GpuInfo(
            vendor="amd",
            name=", ".join(amd_nodes),
            devices=AMD_DEVICES,
            group_add=group_gids(root),
            vram_bytes=amd_vram(root),
        )
        return "rocm", desc, info, notes
    if kfd and not amd_nodes:
        notes.append("/dev/kfd exists but the KFD topology lists no GPU node: AMD GPU not used")
    elif kfd and not renders:
        notes.append("/dev/kfd exists but there is no /dev/dri/renderD* node: AMD GPU not used")
    if nvidia_problem is not None:
        reason = f"{nvidia_problem.name} found but no CDI spec: using the CPU"
        return "cpu", reason, nvidia_problem, notes
    return "cpu", "no supported GPU detected", None, notes


def _nvidia_driver_loaded(root: Path) -> bool:
    try:
        return any((root / "proc/driver/nvidia/gpus").iterdir())
    except OSError:
        return False


def _nvidia_with_cdi(
    accelerator: str, reason: str, nvidia: list[NvidiaGpu], cdi: str, notes: list[str]
) -> Result:
    """NVIDIA GPUs that Podman can add (a CDI spec exists), used for `accelerator`; `reason`:
    why that accelerator, when it was asked for ("" when chosen by detection)."""
    desc = _describe_nvidia(nvidia)
    info = GpuInfo(vendor="nvidia", name=desc, devices=(NVIDIA_DEVICE,),
                   vram_bytes=nvidia_vram(nvidia))
    why = f"{reason}: " if reason else ""
    return accelerator, f"{why}{desc} with CDI spec {cdi}", info, notes


def _forced_cuda(nvidia: list[NvidiaGpu], cdi: str | None, notes: list[str]) -> Result:
    reason = "runtime.accelerator = 'cuda'"
    if nvidia and cdi:
        return _nvidia_with_cdi("cuda", reason, nvidia, cdi, notes)
    if nvidia:
        desc = _describe_nvidia(nvidia)
        problem = (
            f"runtime.accelerator = 'cuda' but NVIDIA GPU {desc} has no CDI spec: "
            f"podman cannot add {NVIDIA_DEVICE}. Fix: {CDI_FIX}"
        )
    else:
        desc = "NVIDIA GPU (not detected)"
        problem = (
            "runtime.accelerator = 'cuda' but no NVIDIA GPU answered nvidia-smi: "
            "CUDA containers will likely fail to start or run on the CPU"
        )
    notes.append(problem)
    info = GpuInfo(
        vendor="nvidia", name=desc, devices=(NVIDIA_DEVICE,), usable=False, problem=problem
    )
    return "cuda", reason, info, notes


def _forced_rocm(
    root: Path, kfd: bool, renders: list[str], amd_nodes: list[str], notes: list[str]
) -> Result:
    reason = "runtime.accelerator = 'rocm'"
    gids = group_gids(root)
    if kfd and renders and amd_nodes:
        desc = _describe_amd(amd_nodes)
        info = GpuInfo(vendor="amd", name=", ".join(amd_nodes), devices=AMD_DEVICES, group_add=gids,
                       vram_bytes=amd_vram(root))
        return "rocm", f"{reason}: {desc}", info, notes
    if not kfd:
        missing = "/dev/kfd does not exist"
    elif not renders:
        missing = "there is no /dev/dri/renderD* node"
    else:
        missing = "the KFD topology lists no GPU node"
    problem = (
        f"runtime.accelerator = 'rocm' but {missing}: "
        "ROCm containers will likely fail to start or run on the CPU"
    )
    notes.append(problem)
    info = GpuInfo(
        vendor="amd",
        name=", ".join(amd_nodes) or "AMD GPU (not detected)",
        devices=AMD_DEVICES,
        group_add=gids,
        usable=False,
        problem=problem,
    )
    return "rocm", reason, info, notes


def _vulkan(root: Path, nvidia: list[NvidiaGpu], cdi: str | None, notes: list[str]) -> Result:
    reason = "runtime.accelerator = 'vulkan'"
    if nvidia and cdi:
        # The CDI spec injects the NVIDIA device nodes and the driver's Vulkan ICD.
        return _nvidia_with_cdi("vulkan", reason, nvidia, cdi, notes)
    if nvidia:
        notes.append(_no_cdi_problem(_describe_nvidia(nvidia)))
    amd_nodes = amd_gpu_nodes(root) if (root / "dev/kfd").exists() else []
    vendor = "amd" if amd_nodes else "other"
    name = ", ".join(amd_nodes) or "GPU via /dev/dri"
    if (root / "dev/dri").exists():
        info = GpuInfo(vendor=vendor, name=name, devices=("/dev/dri",), group_add=group_gids(root))
        return "vulkan", f"{reason}: /dev/dri", info, notes
    problem = (
        "runtime.accelerator = 'vulkan' but /dev/dri does not exist: the container will see no GPU"
    )
    notes.append(problem)
    info = GpuInfo(vendor=vendor, name=name, usable=False, problem=problem)
    return "vulkan", reason, info, notes


# --------------------------------------------------------------------------------------------
# Per-service helpers (pure)
# --------------------------------------------------------------------------------------------


def service_accelerator(
    host: HostFacts, *, gpu_enabled: bool, force_cpu: bool
) -> tuple[str, str]:
    """The accelerator one service gets, and why. (`start --cpu` acts on the host facts.)"""
    if not gpu_enabled:
        return "cpu", "gpu.enabled = false for this service"
    if force_cpu:
        return "cpu", "gpu.force_cpu = true for this service"
    return host.accelerator, host.reason


class ImageChoice(NamedTuple):
    ref: str
    why: str
    key: str  # the setting that chose it: "image" or "images.<accelerator>"


def pick_image(image: str | None, images: dict[str, str], accelerator: str) -> ImageChoice:
    """The image for `accelerator`, why, and which setting chose it.

    images[accelerator] first; else the generic `image` (which may handle the GPU itself, as
    Ollama's does for CUDA); else images["cpu"], on which a GPU goes unused.
    """
    chosen = images.get(accelerator)
    if chosen:
        key = f"images.{accelerator}"
        return ImageChoice(chosen, f"{key} for the {accelerator} accelerator", key)
    if image:
        return ImageChoice(image, f"no images.{accelerator} entry; using image", "image")
    chosen = images.get("cpu")
    if chosen:
        return ImageChoice(chosen, (
            f"no images.{accelerator} entry and no image; using images.cpu "
            "(the GPU is not used by this service)"
        ), "images.cpu")
    raise ValueError(f"no image for accelerator {accelerator!r}: set `image` or `images.cpu`")


def devices_for(host: HostFacts, accelerator: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(`--device` values, `--group-add` gids) for a service running on `accelerator`."""
    if accelerator == "cpu":
        return (), ()
    gpu = host.gpu
    if gpu is not None and host.accelerator == accelerator:
        return gpu.devices, gpu.group_add
    group_add = gpu.group_add if gpu is not None else ()
    if accelerator == "cuda":
        return (NVIDIA_DEVICE,), ()
    if accelerator == "rocm":
        return AMD_DEVICES, group_add
    if accelerator == "vulkan":
        return ("/dev/dri",), group_add
    return (), ()
