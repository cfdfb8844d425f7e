"""TOML key paths (`services.llamacpp.ports[0].host`) and the Problems located by them.

Pure string logic, below the schema (no pydantic): the loader, the templates, config edits and
the CLI name keys with it.
"""

from __future__ import annotations

import re

from airpods.record import record

# A location in the config tree: table keys and list indexes, e.g. ("services", "x", "ports", 0).
KeyPath = tuple[str | int, ...]
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_INDEX_RE = re.compile(r"\[(\d+)\]")


def format_key_path(path: KeyPath) -> str:
    """TOML style: `services.llamacpp.ports[0].host`; keys that are not bare get quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        if _BARE_KEY_RE.fullmatch(part):
            seg = part
        else:
            seg = '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out += f".{seg}" if out else seg
    return out


def split_dotted_key(text: str, *, allow_index: bool = False) -> tuple[KeyPath, str]:
    """Parse a dotted TOML key at the start of `text`; return it and the unparsed rest.

    Handles bare, "basic" and 'literal' segments (`services."my.svc".env`) and, with
    `allow_index`, list indexes (`ports[0].host`). Raises ValueError when no key is there.
    """
    parts: list[str | int] = []
    i = 0
    while True:
        i = _skip_blanks(text, i)
        if i < len(text) and text[i] in "\"'":
            segment, i = _quoted(text, i)
        else:
            match = _BARE_KEY_RE.match(text, i)
            if not match:
                raise ValueError(f"expected a key at {text[i : i + 10]!r}")
            segment, i = match.group(), match.end()
        parts.append(segment)
        while allow_index and (index := _INDEX_RE.match(text, i)):
            parts.append(int(index.group(1)))
            i = index.end()
        i = _skip_blanks(text, i)
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        return tuple(parts), text[i:]


def parse_key_path(text: str) -> KeyPath:
    """`services.llamacpp.ports[0].host` -> ("services", "llamacpp", "ports", 0, "host")."""
    path, rest = split_dotted_key(text, allow_index=True)
    if rest:
        raise ValueError(f"unexpected {rest!r} in key path {text!r}")
    return path


def _skip_blanks(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _quoted(text: str, i: int) -> tuple[str, int]:
    quote, j, buf = text[i], i + 1, []
    while j < len(text) and text[j] != quote:
        if quote == '"' and text[j] == "\\" and j + 1 < len(text):
            j += 1  # simple escapes only (\" and \\): enough for key names
        buf.append(text[j])
        j += 1
    if j >= len(text):
        raise ValueError(f"unterminated quoted key in {text!r}")
    return "".join(buf), j + 1


@record
class Problem:
    """A config problem found after validation, located by key path (the loader adds file/line)."""

    path: KeyPath
    message: str
    hint: str | None = None
    # The same problem told from its other end (the other of two clashing ports): the loader
    # reports whichever end the user's file set, not the end that sits in the defaults.
    other_end: Problem | None = None
