"""`airpods start --dry-run`: exactly what would run, before and after an edit, on each host kind.

The accelerator cases run the real detection code against a fake root (sysfs/dev/etc) and a fake
`nvidia-smi` on a private PATH; nothing here touches Podman.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from airpods import host as host_module
from airpods.cli import cli
from airpods.kinds.llama_server import IMAGES

GROUPS = "root:x:0:\nvideo:x:44:\nrender:x:109:\n"


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "airpods", *args], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    import os

    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
            "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "AIRPODS_ACCELERATOR": "cpu"}


def test_dry_run_before_and_after_config_set(env: dict[str, str], tmp_path: Path) -> None:
    before = run_cli(["start", "llamacpp", "--dry-run"], env)
    assert before.returncode == 0, before.stderr
    out = before.stdout
    for piece in ("--model /models/qwen2.5-0.5b-instruct-q4_k_m.gguf", "--ctx-size 4096",
                  "--host 0.0.0.0", "--port 8080", "--alias qwen2.5-0.5b-instruct-q4_k_m",
                  "-p 127.0.0.1:8080:8080", "airpods_llamacpp_models:/models:ro",
                  "--api-key-file /run/secrets/llama-api-key",
                  "--secret airpods-llamacpp-llama-api-key,type=mount,"
                  "target=/run/secrets/llama-api-key",
                  "ghcr.io/ggml-org/llama.cpp:server"):
        assert piece in out, piece
    assert "--ctx-size 8192" not in out

    edited = run_cli(["config", "set", "services.llamacpp.command_args.ctx_size", "8192"], env)
    assert edited.returncode == 0, edited.stderr
    after = run_cli(["start", "llamacpp", "--dry-run"], env)
    assert "--ctx-size 8192" in after.stdout and "--ctx-size 4096" not in after.stdout

    # Nothing but the user file was written: no secrets, no Podman objects.
    assert not (tmp_path / "data").exists()


def test_dry_run_json_is_the_same_plan(env: dict[str, str]) -> None:
    result = run_cli(["start", "llamacpp", "--dry-run", "--json"], env)
    assert result.returncode == 0, result.stderr
    [svc] = json.loads(result.stdout)["services"]
    assert svc["command"][:2] == ["--model", "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"]
    assert svc["ports"] == [{"host_ip": "127.0.0.1", "host": 8080, "container": 8080,
                             "protocol": "tcp"}]
    assert svc["env"] == {}  # the key is a mounted secret: podman inspect never shows it
    assert svc["command"][-2:] == ["--api-key-file", "/run/secrets/llama-api-key"]
    assert svc["accelerator"] == "cpu" and svc["devices"] == []
    assert svc["podman"][0].endswith("podman secret create airpods-llamacpp-llama-api-key -")
    assert svc["podman"][2].startswith("podman run -d --name airpods-llamacpp-server")


# -------------------------------------------------------------------- faked accelerators


def write(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_nvidia(bin_dir: Path) -> None:
    write(bin_dir / "nvidia-smi",
          "#!/bin/sh\nprintf '%s\\n' 'NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)


def fake_amd(root: Path) -> None:
    write(root / "dev/kfd")
    write(root / "dev/dri/renderD128")
    nodes = root / "sys/class/kfd/kfd/topology/nodes"
    write(nodes / "0/properties", "simd_count 0\n")
    write(nodes / "1/properties", "simd_count 192\ngfx_target_version 110000\n")
    write(root / "etc/group", GROUPS)


def dry_run_on(root: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
               *args: str) -> dict:
    real = host_module.detect_host
    monkeypatch.setattr(host_module, "detect_host",
                        lambda requested="auto", **kw: real(requested, root=root))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("AIRPODS_ACCELERATOR", raising=False)
    result = CliRunner().invoke(cli, ["start", "llamacpp", "--dry-run", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["services"][0]


@pytest.fixture
def fake_host(tmp_path: Path) -> tuple[Path, Path]:
    root, bin_dir = tmp_path / "root", tmp_path / "bin"
    root.mkdir()
    bin_dir.mkdir()
    return root, bin_dir


def test_no_gpu_uses_cpu_image(fake_host, monkeypatch, tmp_path) -> None:
    svc = dry_run_on(*fake_host, monkeypatch, tmp_path)
    assert svc["image"] == IMAGES["cpu"]
    assert svc["devices"] == [] and "--n-gpu-layers" in svc["command"]
    assert svc["command"][svc["command"].index("--n-gpu-layers") + 1] == "0"
    assert "no supported GPU detected" in svc["image_reason"]


def test_nvidia_with_cdi_uses_cuda_image_and_device(fake_host, monkeypatch, tmp_path) -> None:
    root, bin_dir = fake_host
    fake_nvidia(bin_dir)
    write(root / "etc/cdi/nvidia.yaml", "kind: nvidia.com/gpu\n")
    svc = dry_run_on(root, bin_dir, monkeypatch, tmp_path)
    assert svc["image"] == IMAGES["cuda"]
    assert svc["devices"] == ["nvidia.com/gpu=all"]
    assert svc["command"][svc["command"].index("--n-gpu-layers") + 1] == "all"
    assert "NVIDIA H100" in svc["image_reason"] and "CDI spec" in svc["image_reason"]


def test_nvidia_without_cdi_says_so_and_how_to_fix(fake_host, monkeypatch, tmp_path) -> None:
    root, bin_dir = fake_host
    fake_nvidia(bin_dir)
    svc = dry_run_on(root, bin_dir, monkeypatch, tmp_path)
    assert svc["image"] == IMAGES["cpu"] and svc["devices"] == []
    assert any("will not be used" in n and
               "nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml" in n for n in svc["notes"])


def test_amd_uses_rocm_image_devices_and_numeric_groups(fake_host, monkeypatch, tmp_path) -> None:
    root, bin_dir = fake_host
    fake_amd(root)
    svc = dry_run_on(root, bin_dir, monkeypatch, tmp_path)
    assert svc["image"] == IMAGES["rocm"]
    assert svc["devices"] == ["/dev/kfd", "/dev/dri"]
    assert svc["group_add"] == ["44", "109"]
    assert any("--group-add 44" in line for line in svc["podman"])


def test_cpu_flag_overrides_a_gpu(fake_host, monkeypatch, tmp_path) -> None:
    root, bin_dir = fake_host
    fake_nvidia(bin_dir)
    write(root / "etc/cdi/nvidia.yaml", "kind: nvidia.com/gpu\n")
    cpuinfo = "".join(f"processor\t: {i}\nphysical id\t: 0\ncore id\t: {i // 2}\n\n"
                      for i in range(6))  # 3 cores with 2 threads each
    write(root / "proc/cpuinfo", cpuinfo)
    svc = dry_run_on(root, bin_dir, monkeypatch, tmp_path, "--cpu")
    assert svc["image"] == IMAGES["cpu"] and svc["devices"] == []
    assert svc["command"][svc["command"].index("--threads") + 1] == "3"  # physical cores


def test_gateway_dry_run_shows_its_config_and_names_its_shipped_code(
        env: dict[str, str], tmp_path: Path) -> None:
    """The gateway's config.yaml is printed in full; the Python hooks airpods ships are one line
    each (size and sha256) in the text, and whole in --json."""
    config = tmp_path / "gw.toml"
    config.write_text('[services.gateway]\nenabled = true\n[services.gateway.remotes.r]\n'
                      'base_url = "http://192.0.2.1/v1"\nmodels = ["big"]\n')
    text = run_cli(["--config", str(config), "start", "gateway", "--dry-run"], env)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    modules = [line for line in lines if ".py (read-only" in line]
    assert len(modules) == 2 and all("lines of Python, sha256" in line for line in modules)
    assert not any(line.strip().startswith("def ") for line in lines)  # no source printed
    assert any("\"model_list\"" in line for line in lines)  # config.yaml itself is shown
    data = json.loads(run_cli(["--config", str(config), "start", "gateway", "--dry-run",
                               "--json"], env).stdout)
    [spec] = data["services"]
    sources = [f["content"] for f in spec["files"] if f["target"].endswith(".py")]
    assert len(sources) == 2 and all("def " in source for source in sources)
