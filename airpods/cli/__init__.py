"""The `airpods` command line. Subcommands are imported when invoked: `--help` stays instant."""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from airpods import __version__

# name -> (module, attribute, one-line help shown by `airpods --help` without importing it)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "start": ("airpods.cli.lifecycle", "start", "Start services (all enabled ones by default)."),
    "stop": ("airpods.cli.lifecycle", "stop", "Stop services; volumes and models are kept."),
    "status": ("airpods.cli.status", "status", "Show state, health and URL of each service."),
    "logs": ("airpods.cli.status", "logs", "Show or follow a service's container log."),
    "config": ("airpods.cli.config_cmd", "config", "Show, validate and edit the configuration."),
    "models": ("airpods.cli.models", "models", "Pull, list, inspect and clean up GGUF models."),
    "doctor": ("airpods.cli.doctor", "doctor", "Check Podman, the GPU and the configuration."),
    "export": ("airpods.cli.export", "export", "Export the stack as Kubernetes YAML or quadlets."),
    "usage": ("airpods.cli.usage", "usage", "Tokens and cost per model, backend or client."),
}


@dataclass
class AppContext:
    """What every command receives: explicit, never module globals."""

    config_path: Path | None
    verbose: bool

    def load_config(self, **kwargs: Any) -> Any:
        from airpods.config import load_config

        return load_config(self.config_path, **kwargs)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, attr, _ = _COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="airpods")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),  # the loader refuses a directory in one line
    envvar="AIRPODS_CONFIG",
    help="User config file (default: the platform config dir; env AIRPODS_CONFIG).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show more detail.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: bool) -> None:
    """Run a local AI stack (llama.cpp's llama-server, Ollama, Open WebUI) on Podman.

    \b
    Typical use:
      airpods start --pre-fetch     pull the images
      airpods start llamacpp        start llama-server and wait for the model
      airpods status                what runs, healthy or not, and where
      airpods stop llamacpp         stop it; models stay in their volume
    """
    ctx.obj = AppContext(config_path=config_path, verbose=verbose)


def main(argv: list[str] | None = None) -> None:
    """Entry point: AirpodsError becomes one line on stderr and its exit code, never a traceback."""
    code = _run(argv)
    if argv is None:
        # A real invocation: tearing down the interpreter (podman-py, httpx, rich) costs ~70 ms
        # and has nothing left to do, since every file airpods writes is already synced.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    from airpods.errors import AirpodsError

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
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except AirpodsError as exc:
        tail = getattr(exc, "log_tail", "")
        if tail:
            click.echo("--- last log lines ---", err=True)
            click.echo(_masked(tail), err=True)
            click.echo("---", err=True)
        click.echo(_masked(f"airpods: {exc.one_line()}"), err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # a bug or an unexpected refusal: one line, the traceback on -v
        if _verbose(argv):
            raise
        click.echo(_masked(f"airpods: {_describe(exc)} (run with -v for details)"), err=True)
        return 1
    return 0


def _masked(text: str) -> str:
    """`text` with every secret value this process read or generated masked (a template may
    have copied a key into a value that an error message quotes)."""
    from airpods.secrets import mask_text, seen_values

    return mask_text(text, seen_values())


def _verbose(argv: list[str] | None) -> bool:
    args = sys.argv[1:] if argv is None else argv
    return any(a in ("-v", "--verbose") for a in args)


def _describe(exc: Exception) -> str:
    if type(exc).__module__.startswith("podman"):
        # podman-py's APIError carries Podman's own message in `explanation`.
        detail = str(getattr(exc, "explanation", "") or exc).strip().splitlines()
        return f"podman refused: {detail[0] if detail else type(exc).__name__}"
    return f"internal error: {type(exc).__name__}: {exc}"
