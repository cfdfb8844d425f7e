"""llama-server's flags as airpods reads them: from the typed `command_args`, never from argv."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MODEL_FLAGS = ("--model", "-m")
ALIAS_FLAGS = ("--alias", "-a")
CTX_FLAGS = ("--ctx-size", "-c")


def arg_value(args: Mapping[str, Any], flags: tuple[str, ...]) -> str | None:
    """The value argv gets for the last of `flags` set in `args` (a list: its last item), as
    `airpods.argv.render_args` writes it; a bare switch (true), false and None give none."""
    from airpods.argv import flag_name

    value = None
    for key, given in args.items():
        if flag_name(key) in flags:
            for item in given if isinstance(given, list) else [given]:
                if not isinstance(item, bool) and item is not None:
                    value = str(item)
    return value


def as_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def drop_option(argv: tuple[str, ...], name: str) -> tuple[str, ...]:
    """`argv` without `name VALUE` / `name=VALUE`."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return tuple(out)
