"""Host facts on fake roots: cores, SELinux, and detect_host end to end."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from airpods import host
from airpods.host import GpuInfo, HostFacts, detect_host, physical_cores, selinux_enforcing

SMI_OK = "NVIDIA GeForce RTX 4090, 550.54.14, 24564 MiB"


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def cpuinfo(sockets: int, cores: int, threads: int, *, ids: bool = True) -> str:
    """x86-style /proc/cpuinfo; hyperthreads share (physical id, core id)."""
    blocks = []
    n = 0
    for s in range(sockets):
        for _t in range(threads):
            for c in range(cores):
                lines = [f"processor\t: {n}", "model name\t: Fake CPU"]
                if ids:
                    lines += [f"physical id\t: {s}", f"core id\t\t: {c}"]
                blocks.append("\n".join(lines))
                n += 1
    return "\n\n".join(blocks) + "\n"


def sysfs_cpus(root: Path, sockets: int, cores: int, threads: int, *, siblings: bool) -> None:
    base = root / "sys/devices/system/cpu"
    total = sockets * cores * threads
    per_socket = cores * threads
    for n in range(total):
        s, rest = divmod(n, per_socket)
        c = rest % cores
        topo = base / f"cpu{n}/topology"
        write(topo / "physical_package_id", f"{s}\n")
        write(topo / "core_id", f"{c}\n")
        if siblings:
            sib = [s * per_socket + t * cores + c for t in range(threads)]
            write(topo / "thread_siblings_list", ",".join(map(str, sib)) + "\n")
    # Not CPUs: must be ignored.
    (base / "cpufreq").mkdir(parents=True, exist_ok=True)
    (base / "cpuidle").mkdir(parents=True, exist_ok=True)
    write(base / "online", f"0-{total - 1}\n")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


# ---------------------------------------------------------------------------- cores


def test_cpuinfo_two_sockets_four_cores_hyperthreaded(root: Path) -> None:
    write(root / "proc/cpuinfo", cpuinfo(2, 4, 2))
    assert physical_cores(root) == 8
    assert host.logical_cores(root) == 16


def test_cpuinfo_without_physical_id_counts_core_ids(root: Path) -> None:
    text = "\n\n".join(f"processor\t: {n}\ncore id\t\t: {n // 2}" for n in range(8)) + "\n"
    write(root / "proc/cpuinfo", text)
    assert physical_cores(root) == 4


def test_cpuinfo_without_ids_falls_back_to_logical_count(root: Path) -> None:
    # ARM / some VMs: no "physical id" nor "core id".
    write(root / "proc/cpuinfo", cpuinfo(1, 6, 1, ids=False))
    assert physical_cores(root) == 6


def test_nothing_readable_falls_back_to_os_cpu_count(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host.os, "cpu_count", lambda: 7)
    assert physical_cores(root) == 7
    assert host.logical_cores(root) == 7
    monkeypatch.setattr(host.os, "cpu_count", lambda: None)
    assert physical_cores(root) == 1


@pytest.mark.parametrize("siblings", [True, False])
def test_sysfs_topology_wins_over_cpuinfo(root: Path, siblings: bool) -> None:
    sysfs_cpus(root, 2, 4, 2, siblings=siblings)
    write(root / "proc/cpuinfo", cpuinfo(1, 1, 1))  # disagrees: must be ignored
    assert physical_cores(root) == 8
    assert host.logical_cores(root) == 16


def test_sysfs_without_smt(root: Path) -> None:
    sysfs_cpus(root, 1, 12, 1, siblings=True)
    assert physical_cores(root) == 12


def test_offline_cpus_are_not_counted(root: Path) -> None:
    sysfs_cpus(root, 1, 4, 1, siblings=True)
    (root / "sys/devices/system/cpu/cpu9").mkdir()  # offline: no topology directory
    assert host.logical_cores(root) == 4


# ---------------------------------------------------------------------------- SELinux


def test_selinux(root: Path) -> None:
    assert selinux_enforcing(root) is False
    write(root / "sys/fs/selinux/enforce", "0")
    assert selinux_enforcing(root) is False
    write(root / "sys/fs/selinux/enforce", "1\n")
    assert selinux_enforcing(root) is True


# ---------------------------------------------------------------------------- detect_host


def fake_run(cmd, **kwargs):
    return subprocess.CompletedProcess(cmd, 0, stdout=SMI_OK + "\n", stderr="")


def test_detect_host_on_a_fake_root_with_nvidia(root: Path) -> None:
    write(root / "proc/cpuinfo", cpuinfo(2, 4, 2))
    write(root / "etc/cdi/nvidia.yaml", "kind: nvidia.com/gpu\ndevices:\n- name: all\n")
    write(root / "sys/fs/selinux/enforce", "1")
    facts = detect_host("auto", root=root, run=fake_run, which=lambda n: f"/usr/bin/{n}")
    assert facts.accelerator == "cuda"
    assert facts.reason.endswith("with CDI spec /etc/cdi/nvidia.yaml")
    assert facts.physical_cores == 8
    assert facts.logical_cores == 16
    assert facts.selinux_enforcing is True
    assert facts.gpu is not None and facts.gpu.devices == ("nvidia.com/gpu=all",)
    assert facts.notes == ()
    ctx = facts.as_context()
    assert ctx["accelerator"] == "cuda" and ctx["physical_cores"] == 8
    assert ctx["gpu"]["vendor"] == "nvidia"


def test_detect_host_memory_vram_and_gpu_name_for_templates(root: Path) -> None:
    write(root / "proc/meminfo", "MemTotal:       32768000 kB\nMemFree: 1 kB\n")
    write(root / "etc/cdi/nvidia.yaml", "kind: nvidia.com/gpu\n")
    facts = detect_host("auto", root=root, run=fake_run, which=lambda n: f"/usr/bin/{n}")
    ctx = facts.as_context()
    assert ctx["memory_bytes"] == 32768000 * 1024
    assert ctx["vram_bytes"] == 24564 << 20
    assert ctx["gpu_name"] == "NVIDIA GeForce RTX 4090 (driver 550.54.14)"


def test_detect_host_unusable_gpu_has_no_vram_or_name(root: Path) -> None:
    write(root / "proc/meminfo", "MemTotal: 1024 kB\n")
    facts = detect_host(root=root, run=fake_run, which=lambda n: f"/usr/bin/{n}")  # no CDI
    assert (facts.memory_bytes, facts.vram_bytes, facts.gpu_name) == (1 << 20, None, None)


def test_detect_host_without_meminfo_says_zero(root: Path) -> None:
    facts = detect_host("cpu", root=root)
    assert facts.memory_bytes == 0 and facts.vram_bytes is None


def test_detect_host_nvidia_without_cdi_explains_itself(root: Path) -> None:
    write(root / "proc/cpuinfo", cpuinfo(1, 4, 2))
    facts = detect_host(root=root, run=fake_run, which=lambda n: f"/usr/bin/{n}")
    assert facts.accelerator == "cpu"
    assert facts.physical_cores == 4
    assert len(facts.notes) == 1
    assert "nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml" in facts.notes[0]
    assert facts.gpu is not None and facts.gpu.problem == facts.notes[0]


def test_detect_host_plain_cpu(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    write(root / "proc/cpuinfo", cpuinfo(1, 2, 1))
    facts = detect_host(root=root)
    assert (facts.accelerator, facts.reason, facts.gpu, facts.notes) == (
        "cpu",
        "no supported GPU detected",
        None,
        (),
    )
    assert facts.physical_cores == 2 and facts.selinux_enforcing is False


def test_detect_host_forced_cpu_runs_nothing(root: Path) -> None:
    def never(*a, **k):
        raise AssertionError("must not run")

    facts = detect_host("cpu", root=root, run=never, which=never)
    assert facts.accelerator == "cpu" and facts.reason == "runtime.accelerator = 'cpu'"


def test_for_service() -> None:
    facts = HostFacts(
        accelerator="cuda",
        reason="r",
        physical_cores=8,
        logical_cores=16,
        gpu=GpuInfo(vendor="nvidia", name="x", devices=("nvidia.com/gpu=all",)),
    )
    assert facts.for_service(True) is facts
    cpu = facts.for_service(False)
    assert cpu.accelerator == "cpu" and cpu.physical_cores == 8
