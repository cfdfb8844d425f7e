"""llama-server's command line as airpods reads it: a flag's value, a flag taken out."""

from __future__ import annotations

MODEL_FLAGS = ("--model", "-m")
ALIAS_FLAGS = ("--alias", "-a")


def option_value(argv: tuple[str, ...], names: tuple[str, ...]) -> str | None:
    """The value of the last occurrence of any of `names` (`--opt VALUE` or `--opt=VALUE`)."""
    value = None
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                value = argv[i + 1]
            elif name.startswith("--") and arg.startswith(name + "="):
                value = arg[len(name) + 1 :]
    return value


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
