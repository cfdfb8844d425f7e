"""What `export kube` writes is applied to real clusters: every document validates strictly
against the Kubernetes schemas of the newest minor version the installed kubernetes-validate
ships and the one before (found in the package at test time, not written here), for the shipped
config on CPU, CUDA and ROCm hosts and the everything-config (router presets, devices, secrets,
resources, the gateway, a generic service), with and without the model-download init step."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from airpods.config.loader import load_config_text
from airpods.export.kube import render_kube
from airpods.host import GpuInfo, HostFacts
from tests.specs import render_all
from tests.unit import test_spec_outputs_pinned as pinned

kubernetes_validate = pytest.importorskip("kubernetes_validate")
from kubernetes_validate import utils as kv_utils  # noqa: E402

CUDA_HOST = HostFacts(
    accelerator="cuda", reason="NVIDIA GPU", physical_cores=8, logical_cores=16,
    gpu=GpuInfo("nvidia", "RTX", devices=("nvidia.com/gpu=all",), vram_bytes=24 * 2**30),
    memory_bytes=64 * 2**30, vram_bytes=24 * 2**30, gpu_name="RTX",
)
CASES = {
    "shipped-cpu": (None, pinned.CPU_HOST),
    "shipped-cuda": (None, CUDA_HOST),
    "everything-rocm": (pinned.EVERYTHING, pinned.ROCM_HOST),
    "everything-cuda": (pinned.EVERYTHING, CUDA_HOST),
}


def newest_two_minors() -> list[str]:
    """The two newest Kubernetes minor versions the installed package has schemas for."""
    minors = {kv_utils.major_minor(v) for v in kv_utils.all_versions()}
    ordered = sorted(minors, key=lambda m: tuple(int(part) for part in m.split(".")))
    assert len(ordered) >= 2, ordered
    return [f"{m}.0" for m in ordered[-2:]]


VERSIONS = newest_two_minors()


def documents(text: str | None, host: HostFacts, init: bool) -> list[dict]:
    loaded = load_config_text(Path("/home/someone/.config/airpods/config.toml"), text,
                              host=host, environ={}, secrets=pinned._Secrets())
    specs = render_all(loaded.config, host, list(loaded.config.services), loaded.image_origins)
    sources = {"llamacpp": "hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen.gguf"} if init else None
    text_out = render_kube(specs, model_sources=sources).text()
    return [d for d in yaml.safe_load_all(text_out) if d is not None]


@pytest.fixture(autouse=True)
def fixed_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)


def unique_documents() -> list[tuple[str, dict]]:
    """Every document of every case, each distinct one once (Secrets and claims repeat)."""
    seen: dict[str, tuple[str, dict]] = {}
    for case in sorted(CASES):
        text, host = CASES[case]
        for init in (False, True):
            docs = documents(text, host, init)
            kinds = {d["kind"] for d in docs}
            assert {"Deployment", "Service", "Secret", "PersistentVolumeClaim"} <= kinds, kinds
            for doc in docs:
                seen.setdefault(json.dumps(doc, sort_keys=True), (case, doc))
    return list(seen.values())


@pytest.mark.parametrize("version", VERSIONS)
def test_every_document_validates_strictly(version: str) -> None:
    docs = unique_documents()
    assert len(docs) > 20
    for case, doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except Exception as exc:  # the validator's errors name the field; show which document
            pytest.fail(f"{case}: {doc['kind']} {doc['metadata']['name']} fails {version}: {exc}")


@pytest.mark.parametrize("version", VERSIONS)
def test_the_validator_would_catch_a_bad_field(version: str) -> None:
    [deployment, *_] = [d for d in documents(None, pinned.CPU_HOST, False)
                        if d["kind"] == "Deployment"]
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(Exception, match="imagePullPolicyy"):
        kubernetes_validate.validate(broken, version, strict=True)
