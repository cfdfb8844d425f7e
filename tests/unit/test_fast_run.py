"""`airpods status` / `start` without click (airpods/cli/fast_run.py) parse exactly as click does,
and hand anything else to click."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import click
import pytest

from airpods.cli import cli
from airpods.cli.fast_run import CONFIG_ENV, FAST_COMMANDS, parse


def click_parse(args: list[str], environ: dict[str, str]) -> tuple:
    """(config_path, verbose, command, services, flags) as click's parser gives them."""
    # The group's envvar is read from os.environ: the caller sets it to match `environ`.
    group = cli.make_context("airpods", list(args))
    with warnings.catch_warnings():  # click 8.2+: protected_args moves into args in click 9
        warnings.simplefilter("ignore", DeprecationWarning)
        name, command, rest = cli.resolve_command(group, group.protected_args + group.args)
    sub = command.make_context(name, rest, parent=group)
    params = dict(sub.params)
    services = params.pop("services")
    return (group.params["config_path"], group.params["verbose"], name, services, params)


def fast_parse(args: list[str], environ: dict[str, str]) -> tuple | None:
    parsed = parse(args, environ)
    if parsed is None:
        return None
    app, command, names, flags = parsed
    return (app.config_path, app.verbose, command, names, flags)


PLAIN = [
    ["status"],
    ["status", "--json"],
    ["status", "llamacpp", "--json", "open-webui"],
    ["--config", "/x/c.toml", "status", "--watch"],
    ["--config=/x/c.toml", "-v", "start", "llamacpp"],
    ["-v", "--verbose", "start", "--dry-run", "--json", "--cpu", "--no-wait", "--offline"],
    ["start", "--pre-fetch"],
    ["start", "--json", "--json", "a", "b"],
    ["start", "--", "--json"],  # after `--`, a name
    ["--config", "a.toml", "--config", "b.toml", "status"],  # the last one wins
]


@pytest.mark.parametrize("args", PLAIN)
@pytest.mark.parametrize("env_config", [None, "/from/env.toml"])
def test_plain_forms_parse_as_click_parses_them(args: list[str], env_config: str | None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {CONFIG_ENV: env_config} if env_config else {}
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    if env_config:
        monkeypatch.setenv(CONFIG_ENV, env_config)
    fast = fast_parse(args, environ)
    assert fast is not None
    assert fast == click_parse(args, environ)
    if env_config and "--config" not in " ".join(args):
        assert fast[0] == Path(env_config)


@pytest.mark.parametrize("args", [
    [], ["--help"], ["status", "--help"], ["start", "-h"], ["status", "--jsn"],
    ["stop"], ["logs", "llamacpp"], ["--config"], ["--config", "", "status"],
    ["--config=", "status"],
    ["status", "-"], ["--version", "status"], ["start", "--timeout", "3"], ["models", "list"],
])
def test_anything_else_goes_to_click(args: list[str]) -> None:
    assert parse(args, {}) is None


@pytest.mark.parametrize("command", sorted(FAST_COMMANDS))
def test_the_flag_tables_are_the_click_commands_options(command: str) -> None:
    """A new option on `status`/`start` must be added to the fast table too (or this fails)."""
    from airpods.cli.app import cli as group

    click_command = group.get_command(click.Context(group), command)
    assert click_command is not None
    options = {}
    for param in click_command.params:
        if isinstance(param, click.Option):
            assert param.is_flag and not param.secondary_opts, param.name
            for opt in param.opts:
                options[opt] = param.name
        else:
            assert param.name == "services" and param.nargs == -1
    assert options == FAST_COMMANDS[command][2]


def test_status_runs_without_importing_click(tmp_path: Path) -> None:
    """Bad input on the fast path still gets its one line and exit 2 (here: an unknown
    service), and click is never imported."""
    config = tmp_path / "c.toml"
    config.write_text("")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data")}
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "airpods", "--config",
                          str(config), "status", "no-such-service"],
                         capture_output=True, text=True, timeout=60, env=env)
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()
                if line.startswith("import time:")}
    errors = [line for line in run.stderr.splitlines() if not line.startswith("import time:")]
    assert run.returncode == 2, run.stderr
    assert len(errors) == 1 and errors[0].startswith("airpods: unknown service 'no-such-service'")
    assert "click" not in imported
