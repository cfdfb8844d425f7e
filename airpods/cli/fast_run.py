"""`airpods status` and `airpods start` without click: the commands scripts and routers call in
a loop, where importing click costs about as much as the interpreter's start (bench/README.md).

Only the plain forms are answered here: the group's `--config PATH` / `-v`, then the command,
its flags and service names, in any order, `--` ending the options. Anything else (`--help`,
an unknown or misspelt option, an empty value, another command) returns None and goes to click,
which parses and reports it as always. tests/unit/test_fast_run.py holds the flag tables equal
to the click commands' options and the parse equal to click's.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs a few ms: annotations are strings here
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from airpods.cli.meta import AppContext

# command -> (module, function, {flag: keyword}); the function takes (app, services, **flags).
FAST_COMMANDS: dict[str, tuple[str, str, dict[str, str]]] = {
    "status": ("airpods.cli.status_view", "show_status",
               {"--json": "as_json", "--watch": "watch"}),
    "start": ("airpods.cli.start_run", "run_start",
              {"--dry-run": "dry_run", "--pre-fetch": "pre_fetch", "--cpu": "cpu",
               "--no-wait": "no_wait", "--json": "as_json", "--offline": "offline"}),
}
CONFIG_ENV = "AIRPODS_CONFIG"  # the group's --config envvar (airpods/cli/app.py)


def parse(
    args: list[str], environ: Mapping[str, str]
) -> tuple[AppContext, str, tuple[str, ...], dict[str, bool]] | None:
    """(context, command, service names, flags) for a plain `status`/`start`, else None."""
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
    if not rest or rest[0] not in FAST_COMMANDS:
        return None
    command, rest = rest[0], rest[1:]
    table = FAST_COMMANDS[command][2]
    flags = dict.fromkeys(table.values(), False)
    names: list[str] = []
    for i, arg in enumerate(rest):
        if arg == "--":
            names += rest[i + 1:]
            break
        if arg in table:
            flags[table[arg]] = True
        elif arg.startswith("-"):
            return None
        else:
            names.append(arg)
    if config is None and environ.get(CONFIG_ENV):
        config = environ[CONFIG_ENV]
    return _context(AppContext, config, verbose), command, tuple(names), flags


def _context(make: Any, config: str | None, verbose: bool) -> AppContext:
    from pathlib import Path

    return make(config_path=Path(config) if config is not None else None, verbose=verbose)


def run(args: list[str], environ: Mapping[str, str]) -> int | None:
    """Run a plain `status`/`start`; None when click must handle `args`."""
    parsed = parse(args, environ)
    if parsed is None:
        return None
    app, command, names, flags = parsed
    import importlib

    module, function, _ = FAST_COMMANDS[command]
    code = getattr(importlib.import_module(module), function)(app, names, **flags)
    return code if isinstance(code, int) else 0
