"""The top-level `airpods --help` page, laid out as click 8's HelpFormatter lays it out.

Used by airpods/cli/__init__.py so that `--help` does not import click (goal: 40 ms in all).
Only what that page uses is here: the usage line, the description (paragraphs rewrapped,
`\\b` blocks kept), and the Options and Commands definition lists. The width follows click's:
the terminal's columns (COLUMNS first, as shutil.get_terminal_size), at most 80, less 2, at
least 50. tests/unit/test_fast_help.py compares the page with click's at several widths.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Sequence

INDENT = 2


def help_width() -> int:
    """click's HelpFormatter width: max(min(terminal columns, 80) - 2, 50)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return max(min(columns or 80, 80) - 2, 50)


def group_help(
    prog: str, description: str, options: Sequence[tuple[str, str]],
    commands: Sequence[tuple[str, str]], width: int | None = None,
) -> str:
    """The help page of a click group (no trailing newline, as click's get_help)."""
    width = help_width() if width is None else width
    prefix = f"Usage: {prog} "
    out = [_wrap("[OPTIONS] COMMAND [ARGS]...", width, prefix, " " * len(prefix)), "\n"]
    if description:
        out += ["\n", _wrap(description, width, " " * INDENT, " " * INDENT, paragraphs=True),
                "\n"]
    for heading, rows in (("Options", options), ("Commands", commands)):
        if rows:
            out += ["\n", f"{heading}:\n", *_definitions(rows, width)]
    return "".join(out).rstrip("\n")


def _definitions(rows: Sequence[tuple[str, str]], width: int) -> list[str]:
    """click's write_dl at one indent level: terms, then their text wrapped beside them."""
    first_col = min(max(len(term) for term, _ in rows), 30) + 2
    out = []
    for term, text in rows:
        out.append(" " * INDENT + term)
        if not text:
            out.append("\n")
            continue
        if len(term) <= first_col - 2:
            out.append(" " * (first_col - len(term)))
        else:
            out.append("\n" + " " * (first_col + INDENT))
        lines = _wrap(text, max(width - first_col - 2, 10), paragraphs=True).splitlines()
        out.append((lines[0] if lines else "") + "\n")
        out += [" " * (first_col + INDENT) + line + "\n" for line in lines[1:]]
    return out


def _wrap(text: str, width: int, initial: str = "", subsequent: str = "",
          paragraphs: bool = False) -> str:
    """click.formatting.wrap_text for plain text (no ANSI escapes)."""
    text = text.expandtabs()
    wrapper = textwrap.TextWrapper(width, initial_indent=initial, subsequent_indent=subsequent,
                                   replace_whitespace=False)
    if not paragraphs:
        return wrapper.fill(text)
    out = []
    for indent, raw, body in _paragraphs(text):
        wrapper.initial_indent = initial + " " * indent
        wrapper.subsequent_indent = subsequent + " " * indent
        if raw:
            out.append("\n".join((wrapper.subsequent_indent if i else wrapper.initial_indent)
                                 + line for i, line in enumerate(body.splitlines())))
        else:
            out.append(wrapper.fill(body))
    return "\n\n".join(out)


def _paragraphs(text: str) -> list[tuple[int, bool, str]]:
    """(indent, keep as is, text) per paragraph; a paragraph opening with a `\\b` line is kept."""
    found: list[tuple[int, bool, str]] = []
    buf: list[str] = []
    indent: int | None = None

    def flush() -> None:
        if buf:
            raw = buf[0].strip() == "\b"
            found.append((indent or 0, raw, "\n".join(buf[1:]) if raw else " ".join(buf)))
            buf.clear()

    for line in text.splitlines():
        if not line:
            flush()
            indent = None
            continue
        if indent is None:
            stripped = line.lstrip()
            indent = len(line) - len(stripped)
            line = stripped
        buf.append(line)
    flush()
    return found
