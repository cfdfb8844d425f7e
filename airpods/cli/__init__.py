"""The `airpods` command line. Subcommands are imported when invoked: `--help` stays instant.

The click group itself is in airpods/cli/app.py (`from airpods.cli import cli` still works).
`airpods --help` and `--version` are answered here without importing click, which alone costs
about as much as the interpreter's start (bench/README.md); airpods/cli/fast_help.py formats
the same text click would, and tests/unit/test_fast_help.py holds both outputs identical.
"""

from __future__ import annotations

import os
import sys

from airpods import __version__
from airpods.cli.meta import (  # noqa: F401 (airpods.cli.X is their public name)
    _COMMANDS,
    CONFIG_HELP,
    DESCRIPTION,
    OPTION_ROWS,
    VERBOSE_HELP,
    AppContext,
)

TYPE_CHECKING = False  # typing itself costs `--help` a few ms: annotations are strings here
if TYPE_CHECKING:
    from typing import Any


def __getattr__(name: str) -> Any:
    """`cli` and `LazyGroup` live in airpods.cli.app (click is imported only with them)."""
    if name in ("cli", "LazyGroup"):
        from airpods.cli import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: AirpodsError becomes one line on stderr and its exit code, never a traceback."""
    args = sys.argv[1:] if argv is None else argv
    code = _fast(args)
    if code is None:
        code = _guarded(lambda: _fast_run(args), args)
    if code is None:
        code = _run(argv)
    if argv is None:
        # A real invocation: tearing down the interpreter (podman-py, httpx, rich) costs ~70 ms
        # and has nothing left to do, since every file airpods writes is already synced.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _fast(args: list[str]) -> int | None:
    """`airpods --help` / `-h` / `--version` without click; None for anything else."""
    if args in (["--help"], ["-h"]):
        from airpods.cli.fast_help import group_help

        sys.stdout.write(group_help("airpods", DESCRIPTION, OPTION_ROWS,
                                    [(n, _COMMANDS[n][2]) for n in sorted(_COMMANDS)]) + "\n")
        return 0
    if args == ["--version"]:
        sys.stdout.write(f"airpods, version {__version__}\n")
        return 0
    return None


def _fast_run(args: list[str]) -> int | None:
    """A plain `status` / `start` without click (airpods/cli/fast_run.py); None otherwise."""
    from airpods.cli import fast_run

    try:
        return fast_run.run(args, os.environ)
    except (EOFError, KeyboardInterrupt):
        sys.stderr.write("\naborted\n")  # what click's main prints for the same interrupt
        return 130


def _run(argv: list[str] | None) -> int:
    import click

    from airpods.cli.app import cli

    def invoke() -> int:
        try:
            cli.main(args=argv, prog_name="airpods", standalone_mode=False)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            return 130
        except click.ClickException as exc:
            exc.show()
            return exc.exit_code
        except click.exceptions.Exit as exc:
            return exc.exit_code
        return 0

    code = _guarded(invoke, sys.argv[1:] if argv is None else argv)
    assert code is not None
    return code


def _guarded(call: Any, args: list[str]) -> int | None:
    """`call()`'s exit code; an exception becomes one line on stderr and its exit code."""
    try:
        return call()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:
        from airpods.errors import AirpodsError

        if isinstance(exc, AirpodsError):
            tail = getattr(exc, "log_tail", "")
            if tail:
                say("--- last log lines ---")
                say(_masked(tail))
                say("---")
            say(_one_line(f"airpods: {exc.one_line()}"))
            return exc.exit_code
        if any(a in ("-v", "--verbose") for a in args):
            raise  # a bug or an unexpected refusal: the traceback on -v
        say(_one_line(f"airpods: {_describe(exc)} (run with -v for details)"))
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130


def say(text: str) -> None:
    """One line on stderr, flushed: for code that runs with or without click."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _masked(text: str) -> str:
    """`text` with every secret value this process read or generated masked (a template may
    have copied a key into a value that an error message quotes), and any URL's password or
    secret query value."""
    from airpods.masking import mask_urls_in
    from airpods.secrets import mask_text, seen_values

    return mask_urls_in(mask_text(text, seen_values()))


def _one_line(text: str) -> str:
    """An error line: masked, and its control characters escaped (it may quote a server's or a
    file's text: ESC must not reach the terminal, nor CR LF make a second line)."""
    from airpods.masking import printable

    return printable(_masked(text))


def _describe(exc: Exception) -> str:
    if type(exc).__module__.startswith("podman"):
        # podman-py's APIError carries Podman's own message in `explanation`.
        detail = str(getattr(exc, "explanation", "") or exc).strip().splitlines()
        return f"podman refused: {detail[0] if detail else type(exc).__name__}"
    return f"internal error: {type(exc).__name__}: {exc}"
