"""The click command group behind `airpods` (imported when a command runs, not for `--help`).

Subcommands are imported when invoked. The group's help text and option help come from
airpods/cli/__init__.py, which also prints the top-level `--help` and `--version` without
importing click at all (airpods/cli/fast_help.py; a unit test keeps both outputs identical).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from airpods import __version__
from airpods.cli.meta import _COMMANDS, CONFIG_HELP, DESCRIPTION, VERBOSE_HELP, AppContext


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


@click.group(cls=LazyGroup, help=DESCRIPTION,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="airpods")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),  # the loader refuses a directory in one line
    envvar="AIRPODS_CONFIG",
    help=CONFIG_HELP,
)
@click.option("-v", "--verbose", is_flag=True, help=VERBOSE_HELP)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: bool) -> None:
    from airpods.paths import use_config

    use_config(config_path)  # models.toml is read beside it
    ctx.obj = AppContext(config_path=config_path, verbose=verbose)
