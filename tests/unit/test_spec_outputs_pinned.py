"""What `start --dry-run --json`, `export kube` and `export quadlet` print for the shipped
configuration and for one that uses every container option, pinned byte for byte.

Why: these outputs are contracts (docs/json.md) or files users keep; a refactor of how the spec
reaches them must not change one byte. The host is fixed (no detection) and the secrets are
deterministic stand-ins, so the pins hold on any machine. After an intended change, regenerate
with AIRPODS_REGEN_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airpods.gpu import GpuInfo
from airpods.host import HostFacts

GOLDEN = Path(__file__).parent / "golden" / "spec_outputs.json"
USER_FILE = Path("/home/someone/.config/airpods/config.toml")

CPU_HOST = HostFacts(accelerator="cpu", reason="no supported GPU detected", physical_cores=4,
                     logical_cores=8, memory_bytes=16 * 2**30)
ROCM_HOST = HostFacts(
    accelerator="rocm", reason="AMD GPU with ROCm", physical_cores=8, logical_cores=16,
    gpu=GpuInfo("amd", "Radeon", devices=("/dev/kfd", "/dev/dri"), group_add=("44", "109"),
                vram_bytes=24 * 2**30),
    memory_bytes=64 * 2**30, vram_bytes=24 * 2**30, gpu_name="Radeon",
)

# Every option a ContainerSpec carries to Podman: devices and group_add (the ROCm host), cap_add,
# memory, cpus, entrypoint, secret files (the API key), env secrets, config files (presets INI).
EVERYTHING = """
[services.llamacpp]
mode = "router"
[services.llamacpp.resources]
memory = "8g"
cpus = 1.5
[services.llamacpp.router]
models_max = 2
preload = ["fast"]
[services.llamacpp.models.fast]
file = "fast.gguf"
command_args = { ctx_size = 2048 }

[services.tool]
image = "docker.io/library/busybox:1.36"
pod = "airpods-tool"
container = "airpods-tool-server"
cap_add = ["CHOWN", "SETUID"]
entrypoint_override = ["/bin/sh", "-c"]
command_args = { x = "sleep 1000" }
ports = [{ host = 9000, container = 9000 }]
env = { TOOL_API_KEY = "tool-secret-value", PLAIN = "two words" }
[services.tool.resources]
memory = "512m"
cpus = 2.0

[services.open-webui]
via_gateway = false
[services.gateway]
enabled = true
"""


class _Secrets:
    """Generated secrets, deterministic (a pure stand-in for the on-disk store)."""

    pending: dict = {}

    def get(self, service: str, var: str) -> str:
        return f"generated-{service}-{var}".lower()

    def names(self, service: str) -> list[str]:
        return []

    def path(self, service: str, var: str) -> Path:
        return Path("/secrets") / service / var


def _outputs(text: str | None, host: HostFacts) -> dict[str, object]:
    from airpods.cli.output import dry_run_json
    from airpods.config.loader import load_config_text
    from airpods.export.kube import render_kube
    from airpods.export.quadlet import render_quadlet
    from tests.specs import render_all

    loaded = load_config_text(USER_FILE, text, host=host, environ={},
                              secrets=_Secrets())  # type: ignore[arg-type]
    names = list(loaded.config.services)
    specs = render_all(loaded.config, host, names, loaded.image_origins)
    kube = render_kube(specs)
    network = loaded.config.runtime.network
    return {
        "dry_run_json": json.dumps(dry_run_json(specs), indent=2),
        "kube": kube.text(),
        "kube_podman_secrets": [[s.name, s.usage] for s in kube.podman_secrets],
        "quadlet": render_quadlet(specs, network=network).units,
        "quadlet_pods": render_quadlet(specs, network=network, pods=True).units,
    }


def _all() -> dict[str, object]:
    return {
        "default_cpu": _outputs(None, CPU_HOST),
        "everything_rocm": _outputs(EVERYTHING, ROCM_HOST),
    }


def test_outputs_are_byte_identical_to_the_pins(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fixed paths: the outputs name the user file and the data directory (never written here).
    monkeypatch.setenv("HOME", "/home/someone")
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    got = _all()
    if os.environ.get("AIRPODS_REGEN_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        pytest.skip("golden outputs regenerated: review the diff")
    want = json.loads(GOLDEN.read_text())
    for case, outputs in want.items():
        for name, value in outputs.items():
            assert got[case][name] == value, f"{case}: {name} changed"
    assert set(got) == set(want)
