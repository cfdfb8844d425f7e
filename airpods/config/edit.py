"""Safe edits of the user config file: comments kept, validated first, written atomically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from airpods.config.files import atomic_write
from airpods.errors import ConfigError, UsageError
from airpods.keys import KeyPath, format_key_path, parse_key_path

# Receives the user file's path and its proposed new text; raises ConfigError when the merged
# result (defaults + that text) is invalid.
Validator = Callable[[Path, str], object]

STARTER = """\
# airpods user configuration.
#
# Settings here override airpods' built-in defaults, which document every key
# (`airpods config show` prints the result). Put here only what you change:
# tables merge key by key, lists replace. Templates work here too, e.g.
# "{{ services.llamacpp.default_model }}". Check your edits with
# `airpods config validate`, or set one key with `airpods config set KEY VALUE`.
#
# Uncomment and edit the examples you need.

# [runtime]
# accelerator = "cpu"                # auto (detect), cpu, cuda, rocm, vulkan

# [services.llamacpp]
# default_model = "llama-3.2-3b-instruct-q4_k_m.gguf"   # a GGUF file in the model volume
# Publish on every interface: anyone who can reach the port can use the model.
# ports = [{ host = 8080, container = 8080, host_ip = "0.0.0.0" }]

# [services.llamacpp.command_args]
# ctx_size = 8192

# A second llama-server with a bigger model on its own port (Open WebUI picks it up).
# Its kind fills in the rest: pod, container, alias, images, model volume, API key.
# [services.llamacpp-large]
# kind = "llama-server"
# default_model = "qwen2.5-7b-instruct-q4_k_m.gguf"
# ports = [{ host = 8082, container = 8080 }]
#
# [services.llamacpp-large.command_args]
# ctx_size = 8192
"""


def _cli_item(raw: str) -> tuple[Any, Any]:
    """A command-line value as TOML when it is one (8192, true, [1, 2], "x"), else a string:
    (the tomlkit item to insert, keeping inline tables inline; its plain Python value)."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(f"value = {raw}\n")
    except TOMLKitError:
        return raw, raw
    if list(doc) != ["value"]:
        return raw, raw  # a newline smuggled in another key: keep the text literal
    return doc["value"], doc.unwrap()["value"]


def set_value(
    path: Path, key: str, raw_value: str, *, validate: Validator | None = None
) -> tuple[KeyPath, Any]:
    """Set `key` to `raw_value` in the user file at `path`, keeping its comments and layout.

    Creates the file (and its directory) when missing, with only that key. The merged result
    is validated (`validate`, default: the full loader) before anything is written; on any
    failure the file is unchanged. Returns the parsed key path and value.
    """
    import tomlkit

    from airpods.config.files import check_replaceable
    from airpods.config.loader import parse_layer, read_optional_text

    parts = _settable_path(key)
    item, value = _cli_item(raw_value)
    check_replaceable(path)  # before anything: /dev/null reads as empty but is no place to write
    text = read_optional_text(path) or ""
    layer = parse_layer(path, text)  # a syntax error in the user file gets its own line
    _check_shape(path, parts, value, layer.data)
    doc = tomlkit.parse(layer.text or "")
    _assign(doc, parts, item)
    new_text = _space_new_headers(layer.text or "", tomlkit.dumps(doc))
    try:
        (validate or _validate_with_loader)(path, new_text)
    except ConfigError as exc:
        raise _blame_the_set(exc, path, parts, raw_value) from None
    atomic_write(path, new_text)
    return parts, value


def _check_shape(path: Path, parts: tuple[str, ...], value: Any, user: dict[str, Any]) -> None:
    """A table (a service, `command_args`) is not replaced by a plain value: that is a typo
    for one of its keys, and the error belongs to the key the user set."""
    from airpods.config.loader import deep_merge, parse_layer, read_text
    from airpods.paths import default_config_path

    defaults = default_config_path()
    current: Any = deep_merge(parse_layer(defaults, read_text(defaults)).data, user)
    for part in parts:
        current = current.get(part) if isinstance(current, dict) else None
    if isinstance(current, dict) and not isinstance(value, dict):
        key = format_key_path(parts)
        example = next(iter(current), "KEY")
        raise ConfigError(
            f"is a table, so it cannot be set to {value!r}",
            file=str(path),
            key_path=key,
            hint=f"set one of its keys instead, e.g. {format_key_path((*parts, example))}",
        )


def _blame_the_set(exc: ConfigError, path: Path, parts: tuple[str, ...], raw: str) -> ConfigError:
    """An error the set caused elsewhere (a template in the defaults that read the key) is
    reported at the key the user set, with the original problem as the reason."""
    if exc.file is None or exc.file == str(path):
        return exc
    key = format_key_path(parts)
    reason = exc.one_line().removeprefix("config error: ")
    return ConfigError(
        f"setting it to {raw.strip()[:60]!r} breaks {reason}",
        file=str(path),
        key_path=key,
        hint=f"{key} is probably a table or another type; `airpods config get {key}` shows "
        "its current value",
    )


def _settable_path(key: str) -> tuple[str, ...]:
    try:
        parts = parse_key_path(key)
    except ValueError as exc:
        raise UsageError(
            f"bad key {key!r}: {exc}", hint="example: services.llamacpp.enabled"
        ) from None
    if any(isinstance(part, int) for part in parts):
        raise UsageError(
            f"cannot set one item of a list ({key})",
            hint="set the whole list, e.g. services.llamacpp.ports "
            "'[{ host = 8090, container = 8080 }]'",
        )
    return tuple(str(part) for part in parts)


def _assign(doc: Any, parts: tuple[str, ...], item: Any) -> None:
    import tomlkit

    table = doc
    for depth, part in enumerate(parts[:-1], start=1):
        if part not in table:
            # A super table writes no header of its own: `[a.b.c]`, not `[a]` `[a.b]` `[a.b.c]`.
            table[part] = tomlkit.table(is_super_table=True)
        table = table[part]
        if not isinstance(table, dict):
            where = format_key_path(parts[:depth])
            raise UsageError(f"{where} is a value, not a table, so it has no key {parts[depth]!r}")
    table[parts[-1]] = item


def _space_new_headers(old: str, new: str) -> str:
    """One blank line before each table header the edit put somewhere new (tomlkit adds none
    or two); headers the user already had stay as they were."""
    old_lines = [line.strip() for line in old.splitlines()]
    adjacent = set(zip(old_lines, old_lines[1:], strict=False))
    out: list[str] = []
    for line in new.splitlines():
        if line.startswith("[") and out:
            previous = next((prev.strip() for prev in reversed(out) if prev.strip()), "")
            if (previous, line.strip()) not in adjacent and not previous.startswith("#"):
                while out and not out[-1].strip():
                    out.pop()
                out.append("")
        out.append(line)
    return "\n".join(out) + "\n"


def _validate_with_loader(path: Path, text: str) -> None:
    from airpods.config.loader import load_config_text

    load_config_text(path, text)


def init(path: Path, force: bool = False) -> Path:
    """Write the commented starter user file; an existing file is kept unless `force`."""
    from airpods.config.files import check_replaceable

    if check_replaceable(path) is not None and not force:
        raise UsageError(
            f"{path} already exists",
            hint="edit it with `airpods config edit`, or overwrite it with `init --force`",
        )
    atomic_write(path, STARTER)
    return path
