"""Facts about the host that shape what runs: accelerator, cores, memory, VRAM, SELinux.

Detection reads from an injectable root so tests can use a fake /sys, /dev and /etc tree; it
runs once per invocation, when a command asks, never at import.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airpods import gpu
from airpods.gpu import GpuInfo
from airpods.record import asdict, field, record, replace

__all__ = ["GpuInfo", "HostFacts", "detect_host"]


@record
class HostFacts:
    accelerator: str  # "cpu" | "cuda" | "rocm" | "vulkan": what GPU-enabled services get
    reason: str
    physical_cores: int
    logical_cores: int
    gpu: GpuInfo | None = None
    selinux_enforcing: bool = False
    notes: tuple[str, ...] = field(default=())
    memory_bytes: int = 0  # MemTotal; 0 when /proc/meminfo does not say
    vram_bytes: int | None = None  # the usable GPU's total memory; None without one or unknown
    gpu_name: str | None = None  # the usable GPU's name; None on the CPU
    # The file of the capability tier `model_source = "auto"` picks here ("" when none fits or
    # the catalogue cannot be read), set by the loader (config.tiers.with_auto_model). A host fact,
    # so the resolved cache sees a change of pick.
    auto_model: str = ""

    def for_service(self, use_gpu: bool) -> HostFacts:
        """The facts as one service sees them: a service that may not use the GPU gets the CPU."""
        if use_gpu or self.accelerator == "cpu":
            return self
        return replace(self, accelerator="cpu", reason="the service's gpu settings ask for CPU")

    def as_context(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_dirs(root: Path) -> list[Path]:
    """root/sys/devices/system/cpu/cpuN for the online CPUs (offline ones have no topology)."""
    base = root / "sys/devices/system/cpu"
    try:
        return [
            d for d in base.glob("cpu[0-9]*") if d.name[3:].isdigit() and (d / "topology").is_dir()
        ]
    except OSError:
        return []


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _sysfs_cores(root: Path) -> int:
    """Distinct physical cores from sysfs topology: sibling lists, else package/core ids."""
    siblings: set[str] = set()
    ids: set[tuple[str, ...]] = set()
    for cpu in _cpu_dirs(root):
        topo = cpu / "topology"
        sib = _read(topo / "core_cpus_list") or _read(topo / "thread_siblings_list")
        if sib:
            siblings.add(sib)
        core = _read(topo / "core_id")
        if core is not None:
            ids.add(
                (
                    _read(topo / "physical_package_id") or "",
                    _read(topo / "die_id") or "",
                    _read(topo / "cluster_id") or "",
                    core,
                )
            )
    return len(siblings) or len(ids)


def _cpuinfo_cores(root: Path) -> int:
    """Distinct (physical id, core id) pairs in /proc/cpuinfo; 0 when it has no core ids."""
    cores: set[tuple[str, str]] = set()
    try:
        text = (root / "proc/cpuinfo").read_text()
    except OSError:
        return 0
    physical_id = core_id = ""
    for line in [*text.splitlines(), ""]:
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "physical id":
            physical_id = value
        elif key == "core id":
            core_id = value
        elif not line.strip():
            if core_id:
                cores.add((physical_id, core_id))
            physical_id = core_id = ""
    return len(cores)


def logical_cores(root: Path = Path("/")) -> int:
    """Online logical CPUs (hyperthreads included)."""
    count = len(_cpu_dirs(root))
    if not count:
        try:
            text = (root / "proc/cpuinfo").read_text()
            count = sum(
                1 for line in text.splitlines() if line.split(":")[0].strip() == "processor"
            )
        except OSError:
            count = 0
    return count or os.cpu_count() or 1


def physical_cores(root: Path = Path("/")) -> int:
    """Physical cores (not hyperthreads): llama.cpp runs best with one thread per core.

    sysfs topology first, then /proc/cpuinfo's physical/core ids; where neither says (some VMs,
    ARM without core ids), the logical CPU count.
    """
    return _sysfs_cores(root) or _cpuinfo_cores(root) or logical_cores(root)


def ram_total(root: Path = Path("/")) -> int | None:
    """MemTotal from /proc/meminfo, in bytes."""
    try:
        text = (root / "proc/meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def selinux_enforcing(root: Path = Path("/")) -> bool:
    try:
        return (root / "sys/fs/selinux/enforce").read_text().strip() == "1"
    except OSError:
        return False


def detect_host(
    requested: str = "auto",
    *,
    root: Path = Path("/"),
    run: Callable[..., Any] | None = None,
    which: Callable[[str], str | None] | None = None,
) -> HostFacts:
    """Detect the host. `requested` is runtime.accelerator ("auto" or a forced choice).

    `run` / `which` replace subprocess.run / shutil.which for the nvidia-smi probe (tests).
    `auto_model` is left empty: it is a function of these facts and the model catalogue, which
    the loader adds (airpods.config.tiers.with_auto_model); the resolved-services cache checks the
    catalogue on its own (reading it costs a cache hit more than the rest of the detection).
    """
    accelerator, reason, info, notes = gpu.choose_accelerator(
        requested, root=root, run=run, which=which
    )
    usable = info if info is not None and info.usable and accelerator != "cpu" else None
    facts = HostFacts(
        accelerator=accelerator,
        reason=reason,
        physical_cores=physical_cores(root),
        logical_cores=logical_cores(root),
        gpu=info,
        selinux_enforcing=selinux_enforcing(root),
        notes=tuple(notes),
        memory_bytes=ram_total(root) or 0,
        vram_bytes=usable.vram_bytes if usable else None,
        gpu_name=usable.name if usable else None,
    )
    return facts
