"""What the host's GPUs look like, read without side effects: `nvidia-smi` (through injectable
`run` / `which`), CDI specs, the KFD topology, render nodes and the video/render gids. Every path
is relative to an injectable `root`, so tests use a fake tree. airpods.gpu turns these facts into
the accelerator choice.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from airpods.record import record

if TYPE_CHECKING:
    import subprocess

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


@record
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


def _on_path(name: str) -> str | None:
    """shutil.which(name) without importing shutil (and with it bz2 and lzma) on every command:
    the first executable regular file called `name` in PATH's absolute directories (an empty
    or relative entry, which would mean the current directory, is skipped)."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(directory, name)
        if os.path.isabs(directory) and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def probe_nvidia(
    *,
    run: Callable[..., subprocess.CompletedProcess] | None = None,
    which: Callable[[str], str | None] | None = None,
    timeout: float = NVIDIA_SMI_TIMEOUT_S,
) -> tuple[list[NvidiaGpu], str | None]:
    """The GPUs `nvidia-smi` reports, and a note when it is there but does not answer."""
    # subprocess is imported only when nvidia-smi is there: `status` detects the host each call.
    exe = (which or _on_path)("nvidia-smi")
    if not exe:
        return [], None
    import subprocess

    run = run or subprocess.run
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


_MIB = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*MiB\s*$")


def nvidia_vram(gpus: list[NvidiaGpu]) -> int | None:
    """Total memory of the GPUs nvidia-smi listed (its memory.total, "24576 MiB"), in bytes."""
    sizes = [_MIB.match(g.memory) for g in gpus]
    total = sum(float(m.group(1)) for m in sizes if m)
    return int(total * (1 << 20)) or None


def amd_vram(root: Path = Path("/")) -> int | None:
    """Total VRAM of the amdgpu cards (sysfs mem_info_vram_total), in bytes."""
    total = 0
    for path in sorted((root / "sys/class/drm").glob("card*/device/mem_info_vram_total")):
        try:
            total += int(path.read_text().strip())
        except (OSError, ValueError):
            continue
    return total or None
