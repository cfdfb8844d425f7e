"""Records <-> plain JSON values, driven by `airpods.record.fields` and the field types.

One serializer for every record (ContainerSpec and its parts, HostFacts, the resolved
settings): a new field is written and read back with no code here. Decoding is strict where it
matters for untrusted input: every field must be present (a KeyError otherwise); values are
taken as they are, shaped by the declared type (tuples, frozensets, dicts, Paths, nested
records, `X | None`).
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from airpods.record import fields, is_record

_HINTS: dict[type, dict[str, Any]] = {}


def to_plain(value: Any) -> Any:
    """Records → dicts, tuples → lists, frozensets → sorted lists, Paths → str."""
    if is_record(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def from_plain(kind: Any, data: Any) -> Any:
    """The value of type `kind` that `to_plain` wrote as `data`."""
    if isinstance(kind, type) and is_record(kind):
        hints = _hints(kind)
        return kind(**{
            f.name: from_plain(hints[f.name], data[f.name])
            for f in fields(kind)
            if f.init
        })
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        if data is None:
            return None
        rest = [arg for arg in args if arg is not type(None)]
        return from_plain(rest[0], data) if len(rest) == 1 else data
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], item) for item in data)
        if len(args) != len(data):
            raise ValueError(f"expected {len(args)} items, got {len(data)}")
        return tuple(from_plain(arg, item) for arg, item in zip(args, data, strict=True))
    if origin in (frozenset, set):
        return origin(from_plain(args[0], item) for item in data)
    if origin is list:
        return [from_plain(args[0], item) for item in data]
    if origin is dict:
        return {key: from_plain(args[1], value) for key, value in data.items()}
    if kind is Path:
        return Path(data)
    return data


def _hints(kind: type) -> dict[str, Any]:
    """The field types, evaluated once (the modules use `from __future__ import annotations`)."""
    hints = _HINTS.get(kind)
    if hints is None:
        hints = _HINTS[kind] = typing.get_type_hints(kind)
    return hints
