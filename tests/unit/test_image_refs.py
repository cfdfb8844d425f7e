"""The image references airpods names are one list (issue 21, part 5): every image a built-in
kind gives a service is a pin in airpods/kinds/image_pins.py, every pin is used, and every
image reference with a tag in README.md, config/airpods.toml and docs/ is one of those pins,
written in full (a pinned digest left out is a mismatch)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airpods.kinds import registry
from airpods.kinds.image_pins import PINS

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", ROOT / "config" / "airpods.toml",
             *sorted((ROOT / "docs").rglob("*.md"))]
# registry/repository:tag[@sha256:digest]; a placeholder such as `:v<version>` is not a tag.
REFERENCE = re.compile(r"(?:ghcr\.io|docker\.io|quay\.io)/[a-z0-9._/-]+:[A-Za-z0-9._-]+"
                       r"(?:@sha256:[0-9a-f]{64})?(?![<A-Za-z0-9._@-])")


def builtin_images() -> set[str]:
    images = set()
    for name in registry.names():
        defaults = registry.get(name).defaults("svc")
        images |= {defaults["image"]} if defaults.get("image") else set()
        images |= set((defaults.get("images") or {}).values())
    return images


def test_every_builtin_image_is_a_pin_and_every_pin_is_used() -> None:
    images = builtin_images()
    assert images, "the kinds give no image"
    assert images <= set(PINS), sorted(images - set(PINS))
    assert set(PINS) <= images, sorted(set(PINS) - images)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documents_name_only_the_pinned_references(document: Path) -> None:
    text = document.read_text()
    named = {m.group(0) for m in REFERENCE.finditer(text)}
    stray = sorted(named - set(PINS))
    assert not stray, f"{document.name} names images that are not airpods' pins: {stray}"


def test_readme_lists_every_pin_and_says_which_are_unconfirmed() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Images: what `start` pulls"):]
    section = section[:section.index("\n### ", 1)]
    for pin in PINS.values():
        assert pin.ref.split(":")[0] in section, pin.ref
        if pin.ref in section and "floating" not in pin.basis:
            row = next(line for line in section.splitlines() if pin.ref in line)
            assert ("confirmed" if pin.confirmed else "**unconfirmed**") in row, row


def test_the_reference_pattern_catches_a_stale_or_digestless_mention() -> None:
    cpu = next(ref for ref in PINS if ":server-b" in ref)
    for text, found in [
        ("image ghcr.io/berriai/litellm:main-v1.106.12 here",
         "ghcr.io/berriai/litellm:main-v1.106.12"),
        (f"`{cpu.split('@')[0]}`", cpu.split("@")[0]),
        (f"`{cpu}`", cpu),
        ("tags `ghcr.io/berriai/litellm:v<version>`", None),
    ]:
        got = [m.group(0) for m in REFERENCE.finditer(text)]
        assert got == ([found] if found else []), (text, got)
