"""Safe edits of the user config file: comments kept, validated first, written atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airpods.config.schema import KeyPath, format_key_path, parse_key_path
from airpods.errors import AirpodsError, UsageError

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

# A second llama-server with a bigger model on its own port (Open WebUI picks it up):
# [services.llamacpp-large]
# kind = "llama-server"
# default_model = "qwen2.5-7b-instruct-q4_k_m.gguf"
# image = "ghcr.io/ggml-org/llama.cpp:server"
# pod = "airpods-llamacpp-large"
# container = "airpods-llamacpp-large-server"
# network_aliases = ["llamacpp-large"]
# ports = [{ host = 8082, container = 8080 }]
# volumes = { models = { source = "airpods_llamacpp_models", target = "/models", mode = "ro" } }
# health = { path = "/health", timeout_s = 900 }
#
# [services.llamacpp-large.images]
# cuda = "ghcr.io/ggml-org/llama.cpp:server-cuda"
# rocm = "ghcr.io/ggml-org/llama.cpp:server-rocm"
# vulkan = "ghcr.io/ggml-org/llama.cpp:server-vulkan"
#
# [services.llamacpp-large.command_args]
# model = "/models/{{ default_model }}"
# ctx_size = 8192
# host = "0.0.0.0"
# port = "{{ ports[0].container }}"
# n_gpu_layers = "{{ 'all' if host.accelerator != 'cpu' else 0 }}"
"""


def parse_cli_value(raw: str) -> Any:
    """A command-line value as TOML when it is one (8192, true, [1, 2], "x"), else a string."""
    return _cli_item(raw)[1]


def _cli_item(raw: str) -> tuple[Any, Any]:
    """(the tomlkit item to insert, keeping inline tables inline; its plain Python value)."""
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

    from airpods.config.loader import parse_layer, read_text

    parts = _settable_path(key)
    item, value = _cli_item(raw_value)
    text = read_text(path) if path.exists() else ""
    parse_layer(path, text)  # a user file with a syntax error gets that error, with its line
    doc = tomlkit.parse(text)
    _assign(doc, parts, item)
    new_text = _space_new_headers(text, tomlkit.dumps(doc))
    (validate or _validate_with_loader)(path, new_text)
    atomic_write(path, new_text)
    return parts, value


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
    if path.exists() and not force:
        raise UsageError(
            f"{path} already exists",
            hint="edit it with `airpods config edit`, or overwrite it with `init --force`",
        )
    atomic_write(path, STARTER)
    return path


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` so that readers see the old file or the new, never a mix.

    Temp file in the same directory (so the rename cannot cross filesystems), fsync, rename.
    Keeps the old file's permissions; a new file is private (0600: it may hold API keys).
    A symlink is followed, so a dotfiles-managed link keeps pointing at the real file.
    """
    target = path.resolve() if path.is_symlink() else path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o600
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise AirpodsError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise AirpodsError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every filesystem allows it, and that is fine.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
