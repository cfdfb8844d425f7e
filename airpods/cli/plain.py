"""Output for pipes and files: rich's console markup stripped, and tables as aligned columns.

When stdout or stderr is not a terminal (scripts, CI, `status` in a loop), rich would only
strip the markup it was given, yet importing it costs 30-60 ms of every command on a 2-core
machine (bench/README.md). `PlainConsole` prints what rich prints there, for the subset of
rich's API airpods uses: `print(text, markup=, end=)`, `clear()`, and `table(headers, rows)`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any, TextIO

# rich.markup's own tag pattern: "[bold]", "[/]", "[#ff0000]"; "[::1]" and "[0]" are not tags.
_TAG = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")
_ESCAPABLE = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def strip_markup(text: str) -> str:
    """`text` as rich renders its markup without styles: tags gone, escaped tags literal."""
    out: list[str] = []
    position = 0
    for match in _TAG.finditer(text):
        full, escapes, _ = match.groups()
        start, end = match.span()
        out.append(text[position:start])
        position = end
        backslashes, escaped = divmod(len(escapes), 2)
        out.append("\\" * backslashes)
        if escaped:
            out.append(full[len(escapes):])
    out.append(text[position:])
    return "".join(out)


def escape(text: str) -> str:
    """rich.markup.escape: `text` shown as is, whatever brackets it holds (either console)."""
    text = _ESCAPABLE.sub(lambda m: f"{m[1]}{m[1]}\\{m[2]}", text)
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text


class PlainConsole:
    """The console for a stream that is not a terminal."""

    def __init__(self, stderr: bool = True) -> None:
        self.stderr = stderr
        self._file: TextIO | None = None

    @property
    def file(self) -> TextIO:
        """The stream, looked up when printing (tests swap sys.stdout); settable, as rich's."""
        if self._file is not None:
            return self._file
        return sys.stderr if self.stderr else sys.stdout

    @file.setter
    def file(self, stream: TextIO) -> None:
        self._file = stream

    def print(self, *objects: Any, markup: bool = True, end: str = "\n", **_: Any) -> None:
        text = " ".join(_plain(o, markup) for o in objects)
        self.file.write(text + end)
        self.file.flush()

    def clear(self) -> None:
        """Nothing to clear on a pipe (rich writes nothing there either)."""

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """Columns as rich's Table(box=None, pad_edge=False) lays them out: two spaces apart,
        every cell padded to its column's width."""
        cells = [list(headers)] + [[strip_markup(c) for c in row] for row in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
        for row in cells:
            self.file.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + "\n")
        self.file.flush()


def _plain(obj: Any, markup: bool) -> str:
    text = obj if isinstance(obj, str) else str(obj)
    return strip_markup(text) if markup else text


def rich_table(console: Any, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """The same table on a rich console (a terminal): colours kept."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def print_table(console: Any, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table of markup strings on either console."""
    if isinstance(console, PlainConsole):
        console.table(headers, rows)
    else:
        rich_table(console, headers, rows)
