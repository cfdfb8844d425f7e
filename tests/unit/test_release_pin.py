"""The built-in llama-server images are a pinned llama.cpp release, and doctor names it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airpods.cli.doctor import release_checks
from airpods.kinds.llama_server import IMAGES, LLAMA_CPP_RELEASE
from airpods.resolving import resolve
from airpods.secrets import SecretStore


def test_every_builtin_image_is_pinned_to_one_release() -> None:
    assert LLAMA_CPP_RELEASE.startswith("b") and LLAMA_CPP_RELEASE[1:].isdigit()
    digests = []
    for image in IMAGES.values():  # ...:server-cuda-b11382[@sha256:<64 hex>]
        tag, _, digest = image.partition("@")
        assert tag.endswith(f"-{LLAMA_CPP_RELEASE}"), image
        if digest:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), image
            digests.append(digest)
    assert digests and len(set(digests)) == len(digests)


@pytest.mark.parametrize(("image", "status", "says"), [
    (None, "ok", f"release {LLAMA_CPP_RELEASE}, pinned by airpods"),
    ("ghcr.io/ggml-org/llama.cpp:server-b9999", "ok", "release b9999"),
    ("ghcr.io/ggml-org/llama.cpp:server-b9999@sha256:" + "a" * 64, "ok", "release b9999"),
    ("ghcr.io/ggml-org/llama.cpp:server", "warn", "floating tag"),
])
def test_doctor_names_the_release(tmp_path: Path, monkeypatch, image, status, says) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = tmp_path / "user.toml"
    body = "[services.open-webui]\nenabled = false\n[services.llamacpp]\n"
    config.write_text(body + (f'image = "{image}"\nimages = {{}}\n' if image else ""))
    resolved = resolve(config, environ={"AIRPODS_ACCELERATOR": "cpu"},
                       secrets=SecretStore(root=tmp_path / "secrets"))
    [check] = release_checks(resolved)
    assert check.status == status and says in check.found, check
