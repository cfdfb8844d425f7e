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

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from airpods.errors import UsageError

if TYPE_CHECKING:  # host.py imports this module, never the other way round at run time
    from airpods.host import HostFacts

# The accelerator names, written once: the schema, the loader and detection use these.
ACCELERATORS = ("cpu", "cuda", "rocm", "vulkan")
REQUESTS = ("auto", *ACCELERATORS)


@dataclass(frozen=True)
class GpuInfo:
    vendor: str  # "nvidia" | "amd" | "other" (Vulkan on an unidentified GPU)
    name: str
    devices: tuple[str, ...] = ()  # values for `podman --device`
    group_add: tuple[str, ...] = ()  # numeric gids
    usable: bool = True
    problem: str | None = None  # why it cannot be used, with the command that fixes it

CDI_DIRS = ("etc/cdi", "var/run/cdi")
CDI_SUFFIXES = (".yaml", ".yml", ".json")
CDI_KIND = "nvidia.com/gpu"
NVIDIA_DEVICE = "nvidia.com/gpu=all"
CDI_FIX = "sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"
NVIDIA_SMI_QUERY = (
    "--query-gpu=name,driver_version,memory.total",
    "--format=csv,noheader",
)
NVIDIA_SMI_TIMEOUT_S = 5.0

AMD_DEVICES = ("/dev/kfd", "/dev/dri")
GPU_GROUPS = ("video", "render")
KFD_NODES = "sys/class/kfd/kfd/topology/nodes"

Result = tuple[str, str, GpuInfo | None, list[str]]


# --------------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NvidiaGpu:
    name: str
    driver: str = ""
    memory: str = ""


def _host_path(root: Path, path: Path) -> str:
    """`path` (under `root`) as the user would see it on the host."""
    try:
        return "/" + path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def probe_nvidia(
    *,
    run: Callable[..., subprocess.CompletedProcess] | None = None,
    which: Callable[[str], str | None] | None = None,
    timeout: float = NVIDIA_SMI_TIMEOUT_S,
) -> tuple[list[NvidiaGpu], str | None]:
    """The GPUs `nvidia-smi` reports, and a note when it is there but does not answer."""
    which = which or shutil.which
    run = run or subprocess.run
    exe = which("nvidia-smi")
    if not exe:
        return [], None
    try:
        proc = run(
            [exe, *NVIDIA_SMI_QUERY],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [], f"nvidia-smi did not answer within {timeout:g} s: NVIDIA GPU not used"
    except OSError as exc:
        return [], f"nvidia-smi could not run ({exc}): NVIDIA GPU not used"
    if proc.returncode != 0:
        detail = _first_line(proc.stderr) or _first_line(proc.stdout)
        detail = f": {detail}" if detail else ""
        return [], f"nvidia-smi failed (exit {proc.returncode}{detail}): NVIDIA GPU not used"
    gpus = []
    for line in (proc.stdout or "").splitlines():
        fields = [f.strip() for f in line.split(",")]
        if fields and fields[0]:
            fields += [""] * (3 - len(fields))
            gpus.append(NvidiaGpu(fields[0], fields[1], fields[2]))
    if not gpus:
        return [], "nvidia-smi answered but listed no GPU: NVIDIA GPU not used"
    return gpus, None


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def find_cdi_spec(root: Path = Path("/")) -> str | None:
    """The host path of the first CDI spec that declares `nvidia.com/gpu` devices, if any."""
    for rel in CDI_DIRS:
        directory = root / rel
        try:
            candidates = sorted(p for p in directory.iterdir() if p.suffix in CDI_SUFFIXES)
        except OSError:
            continue
        for path in candidates:
            try:
                text = path.read_text(errors="replace")
            except OSError:
                # Unreadable (permissions): trust the name nvidia-ctk gives it.
                if "nvidia" in path.name:
                    return _host_path(root, path)
                continue
            if CDI_KIND in text:
                return _host_path(root, path)
    return None


def _gfx_name(version: int) -> str:
    """KFD gfx_target_version (major*10000 + minor*100 + stepping) → "gfx1100", "gfx90a"."""
    major, rest = divmod(version, 10000)
    minor, stepping = divmod(rest, 100)
    return f"gfx{major}{minor}{stepping:x}"


def amd_gpu_nodes(root: Path = Path("/")) -> list[str]:
    """Names of the GPU nodes in the KFD topology (CPU nodes have simd_count 0)."""
    names = []
    try:
        nodes = sorted((root / KFD_NODES).iterdir(), key=lambda p: p.name)
    except OSError:
        return []
    for node in nodes:
        try:
            lines = (node / "properties").read_text().splitlines()
        except OSError:
            continue
        props: dict[str, str] = {}
        for line in lines:
            key, _, value = line.strip().partition(" ")
            props[key] = value.strip()
        try:
            if int(props.get("simd_count", "0")) <= 0:
                continue
        except ValueError:
            continue
        version = props.get("gfx_target_version", "")
        if version.isdigit() and int(version):
            name = _gfx_name(int(version))
        else:
            name = _read_text(node / "name")
        names.append(name or "AMD GPU")
    return names


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def render_nodes(root: Path = Path("/")) -> list[str]:
    try:
        return sorted(p.name for p in (root / "dev/dri").glob("renderD*"))
    except OSError:
        return []


def group_gids(root: Path = Path("/"), names: tuple[str, ...] = GPU_GROUPS) -> tuple[str, ...]:
    """Numeric gids (as strings) of the named groups in root/etc/group, in `names` order."""
    found: dict[str, str] = {}
    try:
        lines = (root / "etc/group").read_text().splitlines()
    except OSError:
        return ()
    for line in lines:
        parts = line.split(":")
        if len(parts) >= 3 and parts[0] in names and parts[2].strip().isdigit():
            found.setdefault(parts[0], parts[2].strip())
    return tuple(found[n] for n in names if n in found)


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
        desc = _describe_nvidia(nvidia)
        info = GpuInfo(vendor="nvidia", name=desc, devices=(NVIDIA_DEVICE,))
        return "cuda", f"{desc} with CDI spec {cdi}", info, notes
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


def _forced_cuda(nvidia: list[NvidiaGpu], cdi: str | None, notes: list[str]) -> Result:
    reason = "runtime.accelerator = 'cuda'"
    if nvidia and cdi:
        desc = _describe_nvidia(nvidia)
        info = GpuInfo(vendor="nvidia", name=desc, devices=(NVIDIA_DEVICE,))
        return "cuda", f"{reason}: {desc} with CDI spec {cdi}", info, notes
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
        info = GpuInfo(vendor="amd", name=", ".join(amd_nodes), devices=AMD_DEVICES, group_add=gids)
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
        desc = _describe_nvidia(nvidia)
        info = GpuInfo(vendor="nvidia", name=desc, devices=(NVIDIA_DEVICE,))
        return "vulkan", f"{reason}: {desc} with CDI spec {cdi}", info, notes
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
