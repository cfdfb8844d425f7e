"""Facts about the host that shape what runs: accelerator, cores, SELinux.

Detection reads from an injectable root so tests can use a fake /sys, /dev and /etc tree; it
runs once per invocation, when a command asks, never at import.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GpuInfo:
    vendor: str  # "nvidia" | "amd"
    name: str
    devices: tuple[str, ...] = ()  # values for `podman --device`
    group_add: tuple[str, ...] = ()  # numeric gids
    usable: bool = True
    problem: str | None = None  # why it cannot be used, with the command that fixes it


@dataclass(frozen=True)
class HostFacts:
    accelerator: str  # "cpu" | "cuda" | "rocm" | "vulkan": what GPU-enabled services get
    reason: str
    physical_cores: int
    logical_cores: int
    gpu: GpuInfo | None = None
    selinux_enforcing: bool = False
    notes: tuple[str, ...] = field(default=())

    def for_service(self, use_gpu: bool) -> HostFacts:
        """The facts as one service sees them: a service that may not use the GPU gets the CPU."""
        if use_gpu or self.accelerator == "cpu":
            return self
        return replace(self, accelerator="cpu", reason="the service's gpu settings ask for CPU")

    def as_context(self) -> dict[str, Any]:
        return asdict(self)


def physical_cores(root: Path = Path("/")) -> int:
    """Physical cores (not hyperthreads): llama.cpp runs best with one thread per core."""
    cpuinfo = root / "proc/cpuinfo"
    cores: set[tuple[str, str]] = set()
    try:
        physical_id = core_id = ""
        for line in cpuinfo.read_text().splitlines():
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
        if core_id:
            cores.add((physical_id, core_id))
    except OSError:
        pass
    return len(cores) or os.cpu_count() or 1


def selinux_enforcing(root: Path = Path("/")) -> bool:
    try:
        return (root / "sys/fs/selinux/enforce").read_text().strip() == "1"
    except OSError:
        return False


def detect_host(requested: str = "auto", *, root: Path = Path("/")) -> HostFacts:
    """Detect the host. `requested` is runtime.accelerator ("auto" or a forced choice)."""
    from airpods import gpu

    accelerator, reason, info, notes = gpu.choose_accelerator(requested, root=root)
    return HostFacts(
        accelerator=accelerator,
        reason=reason,
        physical_cores=physical_cores(root),
        logical_cores=os.cpu_count() or 1,
        gpu=info,
        selinux_enforcing=selinux_enforcing(root),
        notes=tuple(notes),
    )
