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
    """(config_path, verbose, command words, services, keywords) as click's parser gives them."""
    # The group's envvar is read from os.environ: the caller sets it to match `environ`.
    ctx = group = cli.make_context("airpods", list(args))
    words: list[str] = []
    command = cli
    with warnings.catch_warnings():  # click 8.2+: protected_args moves into args in click 9
        warnings.simplefilter("ignore", DeprecationWarning)
        while isinstance(command, click.Group):
            name, command, rest = command.resolve_command(ctx, ctx.protected_args + ctx.args)
            words.append(name)
            ctx = command.make_context(name, rest, parent=ctx)
    params = dict(ctx.params)
    argument = FAST_COMMANDS[tuple(words)][4]
    names = () if argument is None else params.pop(argument[0])
    names = (names,) if isinstance(names, str) else names  # nargs=1: one value, not a tuple
    return (group.params["config_path"], group.params["verbose"], tuple(words), names, params)


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
    ["models", "list"],
    ["models", "list", "--json", "--service", "llamacpp-2"],
    ["models", "list", "--service=a", "--service", "b"],  # the last one wins
    ["models", "pull", "org/repo/x.gguf"],
    ["models", "pull", "--force", "org/repo:Q4_K_M", "--name", "x.gguf", "--service=s"],
    ["--config", "c.toml", "models", "pull", "--", "org/repo"],
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
    ["status", "-"], ["--version", "status"], ["start", "--timeout", "3"], ["models", "pull"],
    ["models"], ["models", "list", "extra"], ["models", "list", "--service"],
    ["models", "list", "--service", ""], ["models", "list", "--service=", "--json"],
    ["models", "list", "--service", "--json"], ["models", "list", "--json=1"],
    ["models", "info", "x"], ["list", "models"],
    ["models", "pull", "a/b/c.gguf", "d/e/f.gguf"], ["models", "pull", "--name"],
    ["models", "pull", "a/b/c.gguf", "--force=1"], ["models", "pull", "a/b", "--name", ""],
    ["models", "pull", "--help"],
])
def test_anything_else_goes_to_click(args: list[str]) -> None:
    assert parse(args, {}) is None


@pytest.mark.parametrize("words", sorted(FAST_COMMANDS))
def test_the_tables_are_the_click_commands_options(words: tuple[str, ...]) -> None:
    """A new option on a fast command must be added to its table too (or this fails)."""
    from airpods.cli.app import cli as group

    command: click.Command = group
    for word in words:
        found = command.get_command(click.Context(command), word)  # type: ignore[attr-defined]
        assert found is not None
        command = found
    _, _, flags, values, argument = FAST_COMMANDS[words]
    seen_flags, seen_values, arguments = {}, {}, []
    for param in command.params:
        if isinstance(param, click.Option):
            assert not param.secondary_opts and not param.multiple, param.name
            target = seen_flags if param.is_flag else seen_values
            for opt in param.opts:
                target[opt] = param.name
        else:
            arguments.append((param.name, param.nargs))
    assert (seen_flags, seen_values) == (flags, values)
    assert arguments == ([argument] if argument is not None else [])


@pytest.mark.parametrize(("command", "named"), [
    (["status", "no-such-service"], "no-such-service"),
    (["models", "list", "--service", "no-such-service"], "no-such-service"),
    (["models", "pull", "no-such-service"], "no-such-service"),
    (["models", "pull", "a/b/c.gguf", "--name", "../x.gguf", "--service", "x"], "../x.gguf"),
    (["models", "pull", "a/b/c\n.gguf"], "c\\n.gguf"),  # before Podman or the network
])
def test_bad_input_on_the_fast_path_is_one_line_without_click(tmp_path: Path,
                                                              command: list[str],
                                                              named: str) -> None:
    """Bad input on the fast path still gets its one line and exit 2 (an unknown service),
    and click is never imported."""
    config = tmp_path / "c.toml"
    config.write_text("")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data")}
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "airpods", "--config",
                          str(config), *command],
                         capture_output=True, text=True, timeout=60, env=env)
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()
                if line.startswith("import time:")}
    errors = [line for line in run.stderr.splitlines() if not line.startswith("import time:")]
    assert run.returncode == 2, run.stderr
    assert len(errors) == 1 and errors[0].startswith("airpods: ") and named in errors[0], errors
    assert "click" not in imported
