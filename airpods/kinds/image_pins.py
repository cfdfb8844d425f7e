"""The images the built-in kinds run, pinned, and what backs each pin.

A pin is only as good as the evidence that upstream published it: `confirmed` is True when a
public source shows that exact tag published (and, with a digest, that digest for it); False
when the tag follows upstream's publishing rule but no source shows this version, so `doctor`
says so and the README lists it. Checked with the search tool on 2026-12-07; sources in `basis`.
README.md ("Images") and docs/ quote these references; tests/unit/test_image_refs.py holds them
equal.
"""

from __future__ import annotations

from airpods.record import record


@record
class Pin:
    ref: str  # what `start` pulls: registry/repo:tag, and @sha256:... where a digest is published
    confirmed: bool
    basis: str  # where the tag (and digest) was seen, or why it is unconfirmed

    @property
    def tag(self) -> str:
        return self.ref.split("@", 1)[0].rsplit(":", 1)[-1]


# llama.cpp: ggml-org's docker workflow pushes server[-<accel>]-b<build> for the build at the
# head of master when it runs (daily and on release), so only some builds have images. b11382
# (2026-10-05) has all four, each tag seen published. CUDA and ROCm (amd64-only images) are
# pinned by digest too, as public projects pin them. CPU and Vulkan are published for amd64 and
# arm64, and the CPU digest public projects pin is the amd64 platform manifest, not the index:
# pinned by it, an arm64 host would pull an image it cannot run, so those two are pinned by tag.
LLAMA_CPP_RELEASE = "b11382"
_LLAMA_REPO = "ghcr.io/ggml-org/llama.cpp"
_LLAMA_DIGESTS: dict[str, tuple[str, str | None]] = {
    "cpu": ("server", None),
    "cuda": ("server-cuda", "ef08b5a98b1170f2b62177be0a4027c88a84043c55afbf190dd18b9e7cdcfebf"),
    "rocm": ("server-rocm", "46583bd112bf2d62881d6aeaae52e59238d61cbf5803296521cdf518548016e6"),
    "vulkan": ("server-vulkan", None),
}
_LLAMA_BASIS = (f"llama.cpp {LLAMA_CPP_RELEASE}: tag (and, for CUDA and ROCm, digest) pinned by "
                "public projects (2026-10-05 to 2026-10-09)")


def _llama_ref(flavour: str, digest: str | None) -> str:
    ref = f"{_LLAMA_REPO}:{flavour}-{LLAMA_CPP_RELEASE}"
    return f"{ref}@sha256:{digest}" if digest else ref


LLAMA_CPP = {accel: Pin(_llama_ref(flavour, digest), True, _LLAMA_BASIS)
             for accel, (flavour, digest) in _LLAMA_DIGESTS.items()}

# LiteLLM: its release workflow (release-docker.yml -> _publish-container.yml) pushes
# ghcr.io/berriai/litellm:<release tag>, and its release notes from 1.99 on say "published as
# ghcr.io/berriai/litellm:v<version>"; `main-v...` tags stopped around 1.83. No source shows
# v1.106.12 itself (some versions were cut and never published), and no digest is published.
LITELLM_VERSION = "1.106.12"
LITELLM = Pin(f"ghcr.io/berriai/litellm:v{LITELLM_VERSION}", False,
              "the release workflow's v<version> tag; v1.106.12 itself not seen published")

# Open WebUI: releases are tagged v<version> on ghcr (public projects pin v0.11.4); v0.12.4,
# the release the tests run, was not seen pinned anywhere, and no digest was found.
OPEN_WEBUI_VERSION = "0.12.4"
OPEN_WEBUI = Pin(f"ghcr.io/open-webui/open-webui:v{OPEN_WEBUI_VERSION}", False,
                 "the v<version> release tag; v0.12.4 itself not seen published")

# Ollama: not pinned (no registry reachable here to check a version); floating tags.
OLLAMA = Pin("docker.io/ollama/ollama:latest", False, "a floating tag: not pinned")
OLLAMA_ROCM = Pin("docker.io/ollama/ollama:rocm", False, "a floating tag: not pinned")

PINS: dict[str, Pin] = {p.ref: p for p in (*LLAMA_CPP.values(), LITELLM, OPEN_WEBUI, OLLAMA,
                                            OLLAMA_ROCM)}
