"""The plain console prints, on a pipe, exactly what rich printed there before (without rich)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from airpods.cli.plain import PlainConsole, escape, print_table, rich_table, strip_markup

TEXTS = [
    "[dim]  0.4s[/dim] creating airpods-llamacpp",
    "[yellow]note:[/yellow] started a transient Podman API service",
    "[green]ready[/green] llamacpp  http://127.0.0.1:8080",
    "port:     [::1]:8080 -> 8080/tcp",  # IPv6 brackets are not markup
    "list [0] and [1, 2] stay",
    r"an escaped \[bold] tag is literal",
    r"two backslashes \\[bold]keep one[/bold]",
    "alpha [green]loaded[/] (alpha.gguf)",
    "nothing special at all",
]


def rich_out(*objects, **kwargs) -> str:
    buf = io.StringIO()
    Console(file=buf, highlight=False, soft_wrap=True, width=200).print(*objects, **kwargs)
    return buf.getvalue()


def plain_out(*objects, **kwargs) -> str:
    console = PlainConsole()
    console.file = io.StringIO()
    console.print(*objects, **kwargs)
    return console.file.getvalue()


@pytest.mark.parametrize("text", TEXTS)
def test_markup_is_stripped_as_rich_does(text: str) -> None:
    assert plain_out(text) == rich_out(text)
    assert plain_out(text, markup=False) == rich_out(text, markup=False)


def test_escape_shows_text_as_is_on_both() -> None:
    for text in ("a [bold]b[/bold] c", r"x \[y]", "[::1]"):
        assert strip_markup(escape(text)) == text
    for text in ("a [bold]b[/bold] c", "end\\", r"x \[y]", "[::1]"):
        assert plain_out(f"[dim]1.0s[/dim]{escape(text)}") == rich_out(f"[dim]1.0s[/dim]"
                                                                       f"{escape(text)}")


def test_end_and_blank_line() -> None:
    assert plain_out("a", end="") + plain_out("b") == rich_out("a", end="") + rich_out("b")
    assert plain_out() == rich_out()


def test_table_is_laid_out_as_rich_lays_it_out() -> None:
    headers = ("SERVICE", "STATE", "HEALTH", "URL")
    rows = [("llamacpp", "running", "[green]ready[/green]", "http://127.0.0.1:8080"),
            ("open-webui", "absent", "[dim]stopped (config changed: run start)[/dim]", "-"),
            ("x", "exited", "[red]unhealthy[/red]", "http://[::1]:3000")]
    plain = PlainConsole()
    plain.file = io.StringIO()
    print_table(plain, headers, rows)
    buf = io.StringIO()
    rich_table(Console(file=buf, highlight=False, soft_wrap=True, width=200), headers, rows)
    assert plain.file.getvalue() == buf.getvalue()
