"""Accelerator detection. Placeholder until issue 4: always the CPU."""

from __future__ import annotations

from pathlib import Path

from airpods.host import GpuInfo


def choose_accelerator(
    requested: str, *, root: Path = Path("/")
) -> tuple[str, str, GpuInfo | None, list[str]]:
    if requested not in ("auto", "cpu"):
        return requested, f"runtime.accelerator = {requested!r}", None, []
    return "cpu", "no supported GPU detected", None, []
