"""Plain values (no pydantic; a leaf: it imports nothing of airpods): the one parser of sizes
and the one of durations, and the checks the schema uses: image references, numbers that are
not booleans or nan, text without control characters."""

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
# A size as Podman's --memory reads it (go-units' RAMInBytes): a number, a decimal one too, then
# an optional unit k, m, g, t or p (powers of 1024), which may be followed by i and/or b.
_SIZE_RE = re.compile(r"(?P<number>[0-9]{1,30}(?:\.[0-9]{1,30})?) ?(?:(?P<unit>[kmgtp])i?b?|b?)",
                      re.IGNORECASE)
_SIZE_UNITS = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE_EXAMPLES = "examples: 512m, 1.5g, 16g"
# A duration: a number of seconds, minutes, hours or days (`logs --since 90s`, `10m`, `2h`).
_DURATION_RE = re.compile(r"(?P<number>[0-9]{1,30}(?:\.[0-9]{1,30})?)(?P<unit>[smhd])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def size_bytes(value: str | int) -> int:
    """Bytes of a size (`resources.memory`): 1073741824, 512m, 1.5g, 16GiB. The one parser of
    sizes: validation, the Podman request, the fit estimate and the exports all read it so.
    ValueError unless it is a size Podman takes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a memory size ({_SIZE_EXAMPLES})")
    unit = _SIZE_UNITS[match["unit"].lower() if match["unit"] else None]
    number = match["number"]
    if "." not in number:
        return int(number) * unit  # exact, however large
    size = float(number) * unit
    if not math.isfinite(size):
        raise ValueError(f"{value!r} is not a memory size ({_SIZE_EXAMPLES})")
    return int(size)


def duration_seconds(value: str) -> float:
    """Seconds of a duration: 90s, 10m, 2h, 1d (a decimal number too). The one parser of
    durations; ValueError for anything else."""
    match = _DURATION_RE.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a duration (examples: 90s, 10m, 2h, 1d)")
    seconds = float(match["number"]) * _DURATION_UNITS[match["unit"]]
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a duration (examples: 90s, 10m, 2h, 1d)")
    return seconds


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
