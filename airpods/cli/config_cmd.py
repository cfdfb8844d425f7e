"""`airpods config`: see, check and change the configuration.

Secrets stay hidden: `show` (and `get` of a whole table) print as "****" the env values whose
name contains KEY, SECRET, TOKEN, PASSWORD or PASSWD, and those the service lists in
`generated_secrets` (see airpods.secrets), and any value that contains one of those secrets
(a template may copy a key into another variable). `get` of one key prints it, for scripts.

`show` and `get` keep the secrets they generate (see airpods.secrets): the key a user reads is
the key the next `start` uses.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from airpods.cli import AppContext
from airpods.errors import ConfigError, UsageError
from airpods.secrets import mask_tree


def _user_path(app: AppContext) -> Path:
    from airpods.paths import user_config_path

    return app.config_path if app.config_path is not None else user_config_path()


def _resolved(
    app: AppContext, check: Callable[[dict[str, Any]], object] | None = None
) -> dict[str, Any]:
    """The resolved configuration; secrets generated for it are saved once it validated (and
    passed `check`, which raises to save nothing: `get` of a key that does not exist)."""
    from airpods.secrets import SecretStore

    store = SecretStore()
    loaded = app.load_config(secrets=store)  # a ConfigError leaves nothing saved
    if check is not None:
        check(loaded.config.model_dump(mode="json"))
    if store.pending and not store.save():
        # Another airpods saved some of these first: show the values it kept.
        loaded = app.load_config(secrets=store)
    return loaded.config.model_dump(mode="json")


def _drop_none(data: Any) -> Any:
    # TOML has no null: an unset optional key is simply absent.
    if isinstance(data, dict):
        return {k: _drop_none(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_drop_none(v) for v in data if v is not None]
    return data


def _as_toml(data: Any) -> str:
    """A table as a TOML document; any other value as it would follow `key = `."""
    import tomlkit

    if isinstance(data, dict):
        return tomlkit.dumps(_drop_none(data)).rstrip("\n")
    return tomlkit.item(_inline(_drop_none(data))).as_string()


def _inline(value: Any) -> Any:
    # Tables inside a value stay inline (`[{ host = 8080 }]`), never `[[...]]` sections.
    import tomlkit

    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update({k: _inline(v) for k, v in value.items()})
        return table
    if isinstance(value, list):
        array = tomlkit.array()
        array.extend(_inline(v) for v in value)
        return array
    return value


@click.group()
def config() -> None:
    """Show, validate and edit the configuration."""


@config.command()
@click.pass_obj
def path(app: AppContext) -> None:
    """Print the user config file's path (and whether it exists)."""
    user = _user_path(app)
    click.echo(str(user))
    if not user.exists():
        click.echo("(does not exist yet: `airpods config init` creates it)", err=True)


@config.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@click.pass_obj
def show(app: AppContext, as_json: bool) -> None:
    """Print the resolved configuration: defaults + your file, templates rendered."""
    data = mask_tree(_resolved(app))
    click.echo(json.dumps(data, indent=2) if as_json else _as_toml(data))


@config.command()
@click.pass_obj
def validate(app: AppContext) -> None:
    """Check the configuration; print the files read, or the first problem (exit 2)."""
    loaded = app.load_config()
    sources = [str(f) for f in loaded.files] + [f"${name}" for name in loaded.overrides]
    click.echo("ok: " + ", ".join(sources))
    _warn_unset_key_variables(loaded.config)


def _warn_unset_key_variables(config: Any) -> None:
    """A remote's api_key_env that this shell lacks: `start` would refuse (exit 2)."""
    import os

    for name, svc in config.services.items():
        for remote, spec in svc.remotes.items():
            var = spec.api_key_env
            if svc.enabled and var and not os.environ.get(var, "").strip():
                click.echo(f"warning: services.{name}.remotes.{remote}.api_key_env: {var} is "
                           "not set here; `airpods start` refuses until it is", err=True)


@config.command()
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@click.pass_obj
def get(app: AppContext, key: str, as_json: bool) -> None:
    """Print one resolved value, e.g. `services.llamacpp.ports[0].host`."""
    from airpods.keys import parse_key_path

    try:
        parts = parse_key_path(key)
    except ValueError as exc:
        raise UsageError(f"bad key {key!r}: {exc}") from None
    data = _resolved(app, check=lambda tree: _lookup(tree, parts))
    value = _lookup(data, parts)
    if isinstance(value, dict | list):
        value = _lookup(mask_tree(data), parts)  # a table hides its secrets; one key does not
    if as_json:
        click.echo(json.dumps(value, indent=2))
    elif isinstance(value, str):
        click.echo(value)  # bare, so `$(airpods config get ...)` needs no unquoting
    else:
        click.echo(_as_toml(value) if value is not None else "")


def _lookup(data: Any, parts: tuple[Any, ...]) -> Any:
    import difflib

    from airpods.keys import format_key_path

    for depth, part in enumerate(parts):
        in_table = isinstance(data, dict) and part in data
        in_array = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if not (in_table or in_array):
            keys = list(data) if isinstance(data, dict) else []
            close = difflib.get_close_matches(str(part), keys, n=1)
            raise UsageError(
                f"no such key: {format_key_path(parts[: depth + 1])}",
                hint=f"did you mean {close[0]!r}?" if close else None,
            )
        data = data[part]
    return data


class _NegativeValues(click.Command):
    """`config set KEY -1` as `config set KEY -- -1`: a word that starts with a minus and a
    digit (or is -inf / -nan) is a TOML number, and no option of airpods is named so."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for i, arg in enumerate(args):
            if arg == "--":
                break
            if arg[:2] in {f"-{d}" for d in "0123456789"} or arg in ("-inf", "-nan"):
                args = [*args[:i], "--", *args[i:]]
                break
        return super().parse_args(ctx, args)


@config.command(name="set", cls=_NegativeValues)
@click.argument("key")
@click.argument("value")
@click.pass_obj
def set_(app: AppContext, key: str, value: str) -> None:
    """Set KEY to VALUE in your config file (VALUE is TOML: 8192, true, "text", [1, 2])."""
    from airpods.config.edit import set_value
    from airpods.config.loader import load_config_text
    from airpods.keys import format_key_path

    user = _user_path(app)
    parts, parsed = set_value(user, key, value, validate=lambda p, text: load_config_text(p, text))
    # What was typed, when it was TOML; a bare word is shown as the quoted string it became.
    shown = _as_toml(parsed) if parsed == value else value.strip()
    click.echo(f"set {format_key_path(parts)} = {shown} in {user}")


@config.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
def init(app: AppContext, force: bool) -> None:
    """Create a commented starter config file."""
    from airpods.config.edit import init as write_starter

    user = write_starter(_user_path(app), force=force)
    click.echo(f"wrote {user}")


@config.command()
@click.pass_obj
def edit(app: AppContext) -> None:
    """Open your config file in $VISUAL / $EDITOR, then validate it."""
    from airpods.config.edit import init as write_starter
    from airpods.config.files import check_replaceable

    user = _user_path(app)
    exists = check_replaceable(user) is not None  # an editor must not replace a device either
    argv = _editor_argv()  # checked before the starter file is written
    if not exists:
        write_starter(user)
    editor = shlex.join(argv)
    try:
        subprocess.run([*argv, str(user)], check=False)
    except OSError as exc:
        raise UsageError(
            f"cannot run editor {editor!r}: {exc.strerror or exc}", hint="set $VISUAL or $EDITOR"
        ) from None
    try:
        app.load_config()
    except ConfigError as exc:
        exc.message = f"{exc.message}; your edit is saved but invalid"
        exc.hint = exc.hint or "run `airpods config edit` again to fix it"
        raise
    click.echo(f"ok: {user}")


def _editor_argv() -> list[str]:
    """$VISUAL / $EDITOR (default vi) as argv; UsageError unless its program can be found."""
    import shutil

    variable = "VISUAL" if os.environ.get("VISUAL") else "EDITOR"
    editor = os.environ.get(variable) or "vi"
    fix = "set $VISUAL or $EDITOR to an installed editor, e.g. EDITOR=nano"
    try:
        argv = shlex.split(editor)
    except ValueError as exc:
        raise UsageError(f"cannot parse ${variable} {editor!r}: {exc}", hint=fix) from None
    if not argv:
        raise UsageError(f"${variable} is blank", hint=fix)
    if shutil.which(argv[0]) is None:
        where = f"${variable}" if os.environ.get(variable) else "the default editor"
        raise UsageError(f"cannot run editor {argv[0]!r} ({where}): not found", hint=fix)
    return argv
