"""A small, deterministic YAML writer for plain data (dicts, lists, str, int, float, bool, None).

Block style, keys in insertion order, every string double-quoted the JSON way (a JSON string is a
valid YAML double-quoted scalar), so no value is ever read back as another type ("on", "0755").
Kept here rather than adding a YAML library to airpods' dependencies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(str(value), ensure_ascii=False)


def _key(key: str) -> str:
    plain = key.replace("-", "").replace("_", "").replace(".", "").replace("/", "")
    return key if plain.isalnum() and not key[0].isdigit() else json.dumps(key)


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, Mapping):
        if not value:
            return [pad + "{}"]
        out = []
        for key, item in value.items():
            if _is_collection(item) and item:
                out.append(f"{pad}{_key(str(key))}:")
                # A list under a key is written at the key's own indentation (kubectl's style).
                out += _lines(item, indent if isinstance(item, list | tuple) else indent + 2)
            else:
                out.append(f"{pad}{_key(str(key))}: {_inline(item)}")
        return out
    if isinstance(value, list | tuple):
        if not value:
            return [pad + "[]"]
        out = []
        for item in value:
            if _is_collection(item) and item:
                inner = _lines(item, indent + 2)
                out.append(pad + "- " + inner[0][indent + 2 :])
                out += inner[1:]
            else:
                out.append(f"{pad}- {_inline(item)}")
        return out
    return [pad + _scalar(value)]


def _is_collection(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple)


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    return _scalar(value)


def dump(value: Any, comments: Iterable[str] = ()) -> str:
    """One YAML document (without the `---` separator), comments first."""
    head = [f"# {line}" if line else "#" for line in comments]
    return "\n".join([*head, *_lines(value, 0)]) + "\n"


def dump_all(documents: Iterable[tuple[Any, Iterable[str]]]) -> str:
    """A multi-document stream: `---` before each document."""
    return "".join("---\n" + dump(doc, comments) for doc, comments in documents)
