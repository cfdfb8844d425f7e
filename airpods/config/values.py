"""Plain value checks the schema uses (no pydantic): image references, memory sizes, numbers
that are not booleans or nan, text without control characters."""

from __future__ import annotations

import math
import re
from typing import Any

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_RE = re.compile(
    r"(?:(?P<registry>[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?)/)?"
    rf"{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[a-f0-9]{64})?"
)
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_MEMORY_RE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>[bkmgBKMG]?)")
_MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def memory_bytes(v: str) -> float:
    """`512m` -> bytes; ValueError unless `v` is a memory size as Podman's --memory takes it."""
    match = _MEMORY_RE.fullmatch(v)
    if match is None:
        raise ValueError(f"{v!r} is not a memory size (examples: 512m, 16g)")
    size = float(match["number"]) * _MEMORY_UNITS[match["unit"].lower()]
    if not math.isfinite(size):
        raise ValueError(f"{v!r} is not a memory size (examples: 512m, 16g)")
    return size


def check_image_ref(ref: str) -> None:
    """Raise ValueError unless `ref` is a well-formed image reference."""
    if not _IMAGE_RE.fullmatch(ref):
        raise ValueError(
            f"{ref!r} is not a valid image reference (example: ghcr.io/ggml-org/llama.cpp:server)"
        )


def not_bool(v: Any) -> Any:
    # pydantic reads `true` as 1 for an int field: `host = true` would publish port 1.
    if isinstance(v, bool):
        raise ValueError(f"must be a number, not a boolean (got {str(v).lower()})")
    return v


def no_control(v: str) -> str:
    if CONTROL_RE.search(v):
        raise ValueError(f"{v!r} contains a control character (a newline or tab?)")
    return v


def finite(v: Any) -> Any:
    not_bool(v)
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"must be a finite number (got {v})")
    return v


def listed_once(items: list[str], what: str = "") -> list[str]:
    """`items` when none is listed twice, else a ValueError naming the first such (sorted)."""
    twice = sorted({item for item in items if items.count(item) > 1})
    if twice:
        raise ValueError(f"{what}{twice[0]!r} is listed twice")
    return items
