"""Accelerator detection on fake roots, with a fake nvidia-smi on a private PATH."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airpods import gpu, gpu_probe
from airpods.errors import UsageError
from airpods.host import GpuInfo, HostFacts

FIX = "nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"
SMI_OK = "NVIDIA GeForce RTX 4090, 550.54.14, 24564 MiB"
GROUPS = "root:x:0:\nvideo:x:44:alice\nplugdev:x:46:\nrender:x:109:alice\nalice:x:1000:\n"
CPU_NODE = "cpu_cores_count 16\nsimd_count 0\ngfx_target_version 0\n"


# ---------------------------------------------------------------------------- fake host tree


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only our fakes, so a real nvidia-smi on this machine is never found."""
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", str(d))
    return d


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def fake_smi(bin_dir: Path, body: str) -> Path:
    script = write(bin_dir / "nvidia-smi", "#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return script


def nvidia_ok(bin_dir: Path, out: str = SMI_OK) -> Path:
    # Only shell builtins: PATH holds nothing but this directory.
    lines = " ".join(f"'{line}'" for line in out.splitlines())
    return fake_smi(bin_dir, f"printf '%s\\n' {lines}")


def cdi_spec(root: Path, rel: str = "etc/cdi/nvidia.yaml") -> Path:
    return write(
        root / rel,
        'cdiVersion: "0.5.0"\nkind: nvidia.com/gpu\ndevices:\n- name: all\n'
        "  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n",
    )


def amd_tree(root: Path, gpu_nodes: int = 2, *, render: bool = True, groups: str = GROUPS):
    write(root / "dev/kfd")
    if render:
        write(root / "dev/dri/renderD128")
        write(root / "dev/dri/card0")
    else:
        (root / "dev/dri").mkdir(parents=True, exist_ok=True)
    nodes = root / gpu.KFD_NODES
    write(nodes / "0/properties", CPU_NODE)
    versions = [110000, 90010]
    for i in range(gpu_nodes):
        v = versions[i % len(versions)]
        write(
            nodes / f"{i + 1}/properties",
            f"cpu_cores_count 0\nsimd_count 192\ngfx_target_version {v}\n",
        )
    write(root / "etc/group", groups)


def choose(requested: str, root: Path, **kw):
    return gpu.choose_accelerator(requested, root=root, **kw)


def never_run(*args, **kwargs):
    raise AssertionError("nvidia-smi must not be run")


# ---------------------------------------------------------------------------- auto: CPU


def test_no_gpu_is_cpu(root: Path, bin_dir: Path) -> None:
    accel, reason, info, notes = choose("auto", root)
    assert (accel, reason, info, notes) == ("cpu", "no supported GPU detected", None, [])


def test_auto_never_picks_vulkan(root: Path, bin_dir: Path) -> None:
    write(root / "dev/dri/renderD128")
    write(root / "dev/dri/card0")
    accel, _, info, _ = choose("auto", root)
    assert accel == "cpu" and info is None


# ---------------------------------------------------------------------------- auto: NVIDIA


def test_nvidia_with_cdi_is_cuda(root: Path, bin_dir: Path) -> None:
    nvidia_ok(bin_dir)
    cdi_spec(root)
    accel, reason, info, notes = choose("auto", root)
    assert accel == "cuda"
    assert reason == "NVIDIA GeForce RTX 4090 (driver 550.54.14) with CDI spec /etc/cdi/nvidia.yaml"
    assert info == GpuInfo(
        vendor="nvidia",
        name="NVIDIA GeForce RTX 4090 (driver 550.54.14)",
        devices=("nvidia.com/gpu=all",),
        vram_bytes=24564 << 20,  # nvidia-smi's memory.total
    )
    assert notes == []


def test_nvidia_cdi_spec_in_var_run_as_json(root: Path, bin_dir: Path) -> None:
    nvidia_ok(bin_dir)
    write(root / "var/run/cdi/nvidia.json", json.dumps({"kind": "nvidia.com/gpu", "devices": []}))
    accel, reason, info, _ = choose("auto", root)
    assert accel == "cuda"
    assert reason.endswith("with CDI spec /var/run/cdi/nvidia.json")
    assert info is not None and info.devices == ("nvidia.com/gpu=all",)


def test_unrelated_cdi_spec_does_not_count(root: Path, bin_dir: Path) -> None:
    nvidia_ok(bin_dir)
    write(root / "etc/cdi/amd.yaml", "kind: amd.com/gpu\n")
    write(root / "etc/cdi/README.txt", "nvidia.com/gpu")  # not a spec file
    accel, _, info, notes = choose("auto", root)
    assert accel == "cpu"
    assert info is not None and not info.usable
    assert any(FIX in n for n in notes)


def test_nvidia_without_cdi_is_cpu_with_the_fix(root: Path, bin_dir: Path) -> None:
    nvidia_ok(bin_dir)
    accel, reason, info, notes = choose("auto", root)
    assert accel == "cpu"
    assert "no CDI spec" in reason
    assert info is not None
    assert info.vendor == "nvidia" and info.usable is False and info.devices == ()
    assert info.problem == (
        "NVIDIA GPU NVIDIA GeForce RTX 4090 (driver 550.54.14) found but no CDI spec: "
        "the GPU will not be used. Fix: sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"
    )
    assert notes == [info.problem]
    assert "\n" not in info.problem and FIX in info.problem


def test_several_nvidia_gpus_are_described_once(root: Path, bin_dir: Path) -> None:
    nvidia_ok(bin_dir, f"{SMI_OK}\n{SMI_OK}\n")
    cdi_spec(root)
    _, reason, info, _ = choose("auto", root)
    assert reason.startswith("2x NVIDIA GeForce RTX 4090 (driver 550.54.14)")
    assert info is not None and info.name.startswith("2x ")


def test_failing_nvidia_smi_is_cpu_with_a_note(root: Path, bin_dir: Path) -> None:
    fake_smi(
        bin_dir,
        'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver." >&2'
        "\nexit 9",
    )
    cdi_spec(root)  # a spec alone is not enough
    accel, reason, info, notes = choose("auto", root)
    assert (accel, reason, info) == ("cpu", "no supported GPU detected", None)
    assert len(notes) == 1
    assert notes[0].startswith("nvidia-smi failed (exit 9: NVIDIA-SMI has failed")


def test_nvidia_smi_listing_nothing_is_cpu(root: Path, bin_dir: Path) -> None:
    fake_smi(bin_dir, "exit 0")
    accel, _, info, notes = choose("auto", root)
    assert accel == "cpu" and info is None
    assert notes and "listed no GPU" in notes[0]


def test_hanging_nvidia_smi_is_cpu(root: Path, bin_dir: Path) -> None:
    sleep = shutil.which("sleep", path="/usr/bin:/bin")
    assert sleep
    fake_smi(bin_dir, f"exec {sleep} 30")
    cdi_spec(root)
    accel, _, info, notes = choose("auto", root, timeout=0.5)
    assert accel == "cpu" and info is None
    assert notes == ["nvidia-smi did not answer within 0.5 s: NVIDIA GPU not used"]


def test_injected_run_and_which(root: Path) -> None:
    calls = []

    def run(cmd, **kwargs):
        calls.append((cmd, kwargs))
        return subprocess.CompletedProcess(cmd, 0, stdout=SMI_OK + "\n", stderr="")

    cdi_spec(root)
    accel, _, _, _ = choose("auto", root, run=run, which=lambda name: f"/opt/{name}")
    assert accel == "cuda"
    ((cmd, kwargs),) = calls
    assert cmd[0] == "/opt/nvidia-smi"
    assert "--format=csv,noheader" in cmd
    assert kwargs["timeout"] == gpu.NVIDIA_SMI_TIMEOUT_S


def test_injected_run_timeout_and_oserror(root: Path) -> None:
    def hang(cmd, **kwargs):
        raise subprocess.TimeoutExpired(cmd, kwargs["timeout"])

    def broken(cmd, **kwargs):
        raise PermissionError("denied")

    which = lambda name: "/opt/nvidia-smi"  # noqa: E731
    assert choose("auto", root, run=hang, which=which)[0] == "cpu"
    accel, _, _, notes = choose("auto", root, run=broken, which=which)
    assert accel == "cpu" and "could not run" in notes[0]


def test_driver_loaded_without_nvidia_smi_is_noted(root: Path, bin_dir: Path) -> None:
    write(root / "proc/driver/nvidia/gpus/0000:01:00.0/information", "Model: x\n")
    accel, _, _, notes = choose("auto", root)
    assert accel == "cpu"
    assert notes and "nvidia-smi is not on PATH" in notes[0]


# ---------------------------------------------------------------------------- auto: AMD


def test_amd_is_rocm_with_devices_and_numeric_gids(root: Path, bin_dir: Path) -> None:
    amd_tree(root)
    accel, reason, info, notes = choose("auto", root)
    assert accel == "rocm"
    assert reason == "AMD GPU via /dev/kfd (2 GPU nodes)"
    assert info == GpuInfo(
        vendor="amd",
        name="gfx1100, gfx90a",
        devices=("/dev/kfd", "/dev/dri"),
        group_add=("44", "109"),
    )
    assert notes == []


def test_amd_vram_is_read_from_sysfs(root: Path, bin_dir: Path) -> None:
    amd_tree(root)
    write(root / "sys/class/drm/card0/device/mem_info_vram_total", f"{16 << 30}\n")
    write(root / "sys/class/drm/card1/device/mem_info_vram_total", "garbage\n")
    _, _, info, _ = choose("auto", root)
    assert info is not None and info.vram_bytes == 16 << 30


def test_amd_one_node_and_only_render_group(root: Path, bin_dir: Path) -> None:
    amd_tree(root, gpu_nodes=1, groups="render:x:992:\n")
    accel, reason, info, _ = choose("auto", root)
    assert accel == "rocm"
    assert reason == "AMD GPU via /dev/kfd (1 GPU node)"
    assert info is not None and info.group_add == ("992",)


def test_amd_with_only_cpu_nodes_is_cpu(root: Path, bin_dir: Path) -> None:
    amd_tree(root, gpu_nodes=0)
    accel, reason, info, notes = choose("auto", root)
    assert (accel, reason, info) == ("cpu", "no supported GPU detected", None)
    assert notes and "no GPU node" in notes[0]


def test_amd_without_render_node_is_cpu(root: Path, bin_dir: Path) -> None:
    amd_tree(root, render=False)
    accel, _, info, notes = choose("auto", root)
    assert accel == "cpu" and info is None
    assert notes and "renderD" in notes[0]


def test_kfd_node_name_used_without_gfx_version(root: Path, bin_dir: Path) -> None:
    amd_tree(root, gpu_nodes=0)
    write(root / gpu.KFD_NODES / "1/properties", "simd_count 64\n")
    write(root / gpu.KFD_NODES / "1/name", "Fiji\n")
    assert gpu.amd_gpu_nodes(root) == ["Fiji"]


@pytest.mark.parametrize(
    ("version", "name"),
    [(110000, "gfx1100"), (90010, "gfx90a"), (90008, "gfx908"), (100300, "gfx1030")],
)
def test_gfx_names(version: int, name: str) -> None:
    assert gpu_probe._gfx_name(version) == name


def test_group_gids(root: Path) -> None:
    assert gpu.group_gids(root) == ()
    write(root / "etc/group", "render:x:109:\nbroken line\nvideo:x:44:\n")
    assert gpu.group_gids(root) == ("44", "109")


def test_nvidia_without_cdi_and_amd_picks_rocm_and_still_warns(root: Path, bin_dir: Path) -> None:
    nvidia_ok(bin_dir)
    amd_tree(root)
    accel, _, info, notes = choose("auto", root)
    assert accel == "rocm" and info is not None and info.vendor == "amd"
    assert len(notes) == 1 and FIX in notes[0]


def test_nvidia_with_cdi_wins_over_amd(root: Path, bin_dir: Path) -> None:
    nvidia_ok(bin_dir)
    cdi_spec(root)
    amd_tree(root)
    assert choose("auto", root)[0] == "cuda"


# ---------------------------------------------------------------------------- forced choices


def test_forced_cpu_with_nvidia_present(root: Path, bin_dir: Path) -> None:
    nvidia_ok(bin_dir)
    cdi_spec(root)
    result = choose("cpu", root, run=never_run)
    assert result == ("cpu", "runtime.accelerator = 'cpu'", None, [])


def test_forced_cuda_with_a_working_gpu(root: Path, bin_dir: Path) -> None:
    nvidia_ok(bin_dir)
    cdi_spec(root)
    accel, reason, info, notes = choose("cuda", root)
    assert accel == "cuda" and notes == []
    assert reason.startswith("runtime.accelerator = 'cuda': NVIDIA GeForce RTX 4090")
    assert info is not None and info.usable and info.devices == ("nvidia.com/gpu=all",)


def test_forced_cuda_without_nvidia_warns(root: Path, bin_dir: Path) -> None:
    accel, reason, info, notes = choose("cuda", root)
    assert (accel, reason) == ("cuda", "runtime.accelerator = 'cuda'")
    assert info is not None and info.devices == ("nvidia.com/gpu=all",) and not info.usable
    assert len(notes) == 1 and "no NVIDIA GPU answered nvidia-smi" in notes[0]


def test_forced_cuda_without_cdi_gives_the_fix(root: Path, bin_dir: Path) -> None:
    nvidia_ok(bin_dir)
    accel, _, info, notes = choose("cuda", root)
    assert accel == "cuda"
    assert info is not None and info.problem == notes[0]
    assert FIX in notes[0]


def test_forced_rocm_with_amd(root: Path, bin_dir: Path) -> None:
    amd_tree(root)
    accel, reason, info, notes = choose("rocm", root, run=never_run)
    assert accel == "rocm" and notes == []
    assert reason == "runtime.accelerator = 'rocm': AMD GPU via /dev/kfd (2 GPU nodes)"
    assert info is not None and info.group_add == ("44", "109")


def test_forced_rocm_without_amd_warns(root: Path, bin_dir: Path) -> None:
    write(root / "etc/group", GROUPS)
    accel, reason, info, notes = choose("rocm", root, run=never_run)
    assert (accel, reason) == ("rocm", "runtime.accelerator = 'rocm'")
    assert info is not None and info.devices == ("/dev/kfd", "/dev/dri")
    assert info.group_add == ("44", "109") and not info.usable
    assert len(notes) == 1 and "/dev/kfd does not exist" in notes[0]


def test_forced_vulkan(root: Path, bin_dir: Path) -> None:
    write(root / "dev/dri/renderD128")
    write(root / "etc/group", GROUPS)
    accel, reason, info, notes = choose("vulkan", root)
    assert (accel, reason, notes) == ("vulkan", "runtime.accelerator = 'vulkan': /dev/dri", [])
    assert info is not None
    assert info.devices == ("/dev/dri",) and info.group_add == ("44", "109")
    assert info.vendor == "other"


def test_forced_vulkan_on_amd_names_the_gpu(root: Path, bin_dir: Path) -> None:
    amd_tree(root, gpu_nodes=1)
    accel, _, info, _ = choose("vulkan", root)
    assert accel == "vulkan"
    assert info is not None and info.vendor == "amd" and info.name == "gfx1100"


def test_forced_vulkan_on_nvidia_uses_cdi(root: Path, bin_dir: Path) -> None:
    nvidia_ok(bin_dir)
    cdi_spec(root)
    write(root / "dev/dri/renderD128")
    accel, _, info, _ = choose("vulkan", root)
    assert accel == "vulkan"
    assert info is not None and info.devices == ("nvidia.com/gpu=all",)


def test_forced_vulkan_without_dri_warns(root: Path, bin_dir: Path) -> None:
    accel, _, info, notes = choose("vulkan", root)
    assert accel == "vulkan"
    assert info is not None and info.devices == () and not info.usable
    assert len(notes) == 1 and "/dev/dri does not exist" in notes[0]


def test_unknown_request_is_a_usage_error(root: Path) -> None:
    with pytest.raises(UsageError, match="unknown accelerator 'metal'"):
        choose("metal", root)


def test_import_does_no_work() -> None:
    code = (
        "import subprocess, shutil\n"
        "def boom(*a, **k): raise SystemExit('work at import')\n"
        "subprocess.run = subprocess.Popen = shutil.which = boom\n"
        "import airpods.gpu, airpods.host\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# ---------------------------------------------------------------------------- per service


def host_facts(accelerator: str = "cuda", gpu_info: GpuInfo | None = None) -> HostFacts:
    if gpu_info is None and accelerator == "cuda":
        gpu_info = GpuInfo(vendor="nvidia", name="RTX", devices=("nvidia.com/gpu=all",))
    return HostFacts(
        accelerator=accelerator,
        reason="NVIDIA RTX with CDI spec /etc/cdi/nvidia.yaml",
        physical_cores=8,
        logical_cores=16,
        gpu=gpu_info,
    )


def test_service_gets_the_host_accelerator() -> None:
    host = host_facts()
    assert gpu.service_accelerator(
        host, gpu_enabled=True, force_cpu=False
    ) == ("cuda", host.reason)


@pytest.mark.parametrize(
    ("enabled", "force", "why"),
    [
        (True, True, "gpu.force_cpu = true for this service"),
        (False, False, "gpu.enabled = false for this service"),
        (False, True, "gpu.enabled = false for this service"),
    ],
)
def test_service_cpu_overrides(enabled: bool, force: bool, why: str) -> None:
    assert gpu.service_accelerator(
        host_facts(), gpu_enabled=enabled, force_cpu=force
    ) == ("cpu", why)


LLAMA = {
    "cpu": "llama:server",
    "cuda": "llama:server-cuda",
    "rocm": "llama:server-rocm",
    "vulkan": "llama:server-vulkan",
}


@pytest.mark.parametrize("accel", ["cpu", "cuda", "rocm", "vulkan"])
def test_pick_image_per_accelerator(accel: str) -> None:
    image, why, key = gpu.pick_image("llama:server", LLAMA, accel)
    assert key == f"images.{accel}"
    assert image == LLAMA[accel]
    assert why == f"images.{accel} for the {accel} accelerator"


def test_pick_image_generic_image_serves_cuda() -> None:
    # Ollama: one image handles CUDA itself; only ROCm has its own.
    images = {"rocm": "ollama:rocm"}
    assert gpu.pick_image("ollama:latest", images, "cuda") == (
        "ollama:latest",
        "no images.cuda entry; using image",
        "image",
    )
    assert gpu.pick_image("ollama:latest", images, "rocm")[0] == "ollama:rocm"
    assert gpu.pick_image("ollama:latest", images, "cpu") == (
        "ollama:latest",
        "no images.cpu entry; using image",
        "image",
    )


def test_pick_image_falls_back_to_cpu_image() -> None:
    image, why, key = gpu.pick_image(None, {"cpu": "x:cpu"}, "rocm")
    assert key == "images.cpu"
    assert image == "x:cpu"
    assert "no images.rocm entry" in why and "GPU is not used" in why


def test_pick_image_with_nothing_raises() -> None:
    with pytest.raises(ValueError, match="no image"):
        gpu.pick_image(None, {"cuda": "x:cuda"}, "cpu")


def test_devices_for() -> None:
    cuda = host_facts()
    assert gpu.devices_for(cuda, "cpu") == ((), ())
    assert gpu.devices_for(cuda, "cuda") == (("nvidia.com/gpu=all",), ())

    amd = GpuInfo(vendor="amd", name="gfx1100", devices=gpu.AMD_DEVICES, group_add=("44", "109"))
    rocm = host_facts("rocm", amd)
    assert gpu.devices_for(rocm, "rocm") == (("/dev/kfd", "/dev/dri"), ("44", "109"))
    assert gpu.devices_for(rocm, "cpu") == ((), ())

    # A vulkan host whose /dev/dri is missing passes no device.
    broken = GpuInfo(vendor="other", name="x", usable=False, problem="no /dev/dri")
    assert gpu.devices_for(host_facts("vulkan", broken), "vulkan") == ((), ())

    # An accelerator the host did not choose gets its standard devices.
    cpu = host_facts("cpu")
    assert gpu.devices_for(cpu, "cuda") == (("nvidia.com/gpu=all",), ())
    assert gpu.devices_for(cpu, "rocm") == (("/dev/kfd", "/dev/dri"), ())
    assert gpu.devices_for(cpu, "vulkan") == (("/dev/dri",), ())


def test_names_callers_use_stay_importable_from_gpu_after_the_split() -> None:
    # doctor reads these as gpu.<name>; they live in airpods.gpu_probe now
    for name in ("GPU_GROUPS", "CDI_FIX", "find_cdi_spec", "group_gids", "probe_nvidia",
                 "AMD_DEVICES", "KFD_NODES", "NVIDIA_SMI_TIMEOUT_S", "amd_gpu_nodes"):
        assert getattr(gpu, name) is getattr(gpu_probe, name), name
