"""`airpods status`, `start`, `models list` and `models pull` without click: the commands
scripts and routers call in a loop (and a pull, timed against curl), where importing click costs
about as much as the interpreter's start (bench/README.md).

Only the plain forms are answered here: the group's `--config PATH` / `-v`, then the command,
its flags, options and arguments (service names; a pull's one REF), in any order, `--` ending
the options. Anything else (`--help`, an unknown or misspelt option, an empty or odd value,
another command) returns None and goes to click, which parses and reports it as always.
tests/unit/test_fast_run.py holds the tables equal to the click commands' options and the parse
equal to click's.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs a few ms: annotations are strings here
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from airpods.cli.meta import AppContext

# command words -> (module, function, {flag: keyword}, {option taking a value: keyword},
# its argument as click declares it: (name, nargs), -1 for any number, or None). The function
# takes (app, [arguments,] **flags, **values).
FastCommand = tuple[str, str, dict[str, str], dict[str, str], "tuple[str, int] | None"]
SERVICES = ("services", -1)
FAST_COMMANDS: dict[tuple[str, ...], FastCommand] = {
    ("status",): ("airpods.cli.status_view", "show_status",
                  {"--json": "as_json", "--watch": "watch"}, {}, SERVICES),
    ("start",): ("airpods.cli.start_run", "run_start",
                 {"--dry-run": "dry_run", "--pre-fetch": "pre_fetch", "--cpu": "cpu",
                  "--no-wait": "no_wait", "--json": "as_json", "--offline": "offline"}, {},
                 SERVICES),
    ("models", "list"): ("airpods.cli.models_view", "show_models",
                         {"--json": "as_json"}, {"--service": "service"}, None),
    ("models", "pull"): ("airpods.cli.models_view", "run_pull", {"--force": "force"},
                         {"--service": "service", "--name": "name"}, ("ref", 1)),
}
CONFIG_ENV = "AIRPODS_CONFIG"  # the group's --config envvar (airpods/cli/app.py)


def parse(
    args: list[str], environ: Mapping[str, str]
) -> tuple[AppContext, tuple[str, ...], tuple[str, ...], dict[str, Any]] | None:
    """(context, command words, service names, keywords) for a plain form, else None."""
    from airpods.cli.meta import AppContext

    config: str | None = None
    verbose = False
    rest = list(args)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option in ("-v", "--verbose"):
            verbose = True
        elif option == "--config" and rest and rest[0]:
            config = rest.pop(0)
        elif option.startswith("--config=") and option != "--config=":
            config = option.removeprefix("--config=")
        else:
            return None
    command = next((words for words in FAST_COMMANDS if tuple(rest[:len(words)]) == words),
                   None)
    if command is None:
        return None
    parsed = _command_args(rest[len(command):], *FAST_COMMANDS[command][2:])
    if parsed is None:
        return None
    if config is None and environ.get(CONFIG_ENV):
        config = environ[CONFIG_ENV]
    return (_context(AppContext, config, verbose), command, *parsed)


def _command_args(rest: list[str], flags: dict[str, str], values: dict[str, str],
                  argument: tuple[str, int] | None
                  ) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """(names, keywords) as click would parse the command's own arguments; None for anything
    click must answer (an unknown option, a missing or odd value, names it does not take)."""
    keywords: dict[str, Any] = dict.fromkeys(flags.values(), False)
    keywords |= dict.fromkeys(values.values())
    names: list[str] = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        option, eq, inline = arg.partition("=")
        if arg == "--":
            names += rest[i + 1:]
            break
        if arg in flags:
            keywords[flags[arg]] = True
        elif option in values:
            value = inline if eq else (rest[i + 1] if i + 1 < len(rest) else "")
            if not value or value.startswith("-"):
                return None
            keywords[values[option]] = value
            i += 0 if eq else 1
        elif arg.startswith("-"):
            return None
        else:
            names.append(arg)
        i += 1
    wanted = 0 if argument is None else argument[1]
    if wanted != -1 and len(names) != wanted:
        return None
    return tuple(names), keywords


def _context(make: Any, config: str | None, verbose: bool) -> AppContext:
    from pathlib import Path

    from airpods.paths import use_config

    path = Path(config) if config is not None else None
    use_config(path)  # models.toml is read beside it
    return make(config_path=path, verbose=verbose)


def run(args: list[str], environ: Mapping[str, str]) -> int | None:
    """Run a plain form of a FAST_COMMANDS command; None when click must handle `args`."""
    parsed = parse(args, environ)
    if parsed is None:
        return None
    app, command, names, keywords = parsed
    import importlib

    module, function, _, _, argument = FAST_COMMANDS[command]
    call = getattr(importlib.import_module(module), function)
    code = call(app, names, **keywords) if argument is not None else call(app, **keywords)
    return code if isinstance(code, int) else 0
