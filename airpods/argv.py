"""`command_args` (a TOML table) -> argv items. Pure, below render and the kinds: both use it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def flag_name(key: str) -> str:
    """`ctx_size` → `--ctx-size`; a one-letter key gets a single dash (`c` → `-c`)."""
    if len(key) == 1:
        return f"-{key}"
    return "--" + key.replace("_", "-")


def render_args(command_args: Mapping[str, Any]) -> list[str]:
    """Render `command_args` into argv items, in order. Values stay separate items: no shell."""
    argv: list[str] = []
    for key, value in command_args.items():
        flag = flag_name(key)
        items: Sequence[Any] = value if isinstance(value, list) else [value]
        for item in items:
            if item is True:
                argv.append(flag)
            elif item is False or item is None:
                continue
            else:
                argv.extend((flag, str(item)))
    return argv
