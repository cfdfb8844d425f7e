"""`airpods status` and `airpods logs` (click). What status shows is in
airpods/cli/status_view.py, which `airpods status` also reaches without click (cli/fast_run.py).
"""

from __future__ import annotations

import time

import click

from airpods.cli import AppContext
from airpods.cli.params import LINES


@click.command()
@click.argument("services", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Stable JSON on stdout (see README).")
@click.option("--watch", is_flag=True, help="Refresh every 2 s until Ctrl-C.")
@click.pass_obj
def status(app: AppContext, services: tuple[str, ...], as_json: bool, watch: bool) -> None:
    """Show state, health, URL, model and uptime. Exit 1 when a requested service is not ready."""
    from airpods.cli.status_view import show_status

    raise SystemExit(show_status(app, services, as_json, watch))


def parse_since(value: str, now: float | None = None) -> int:
    """Unix seconds for `--since`: a duration back from now (90s, 10m, 2h, 1d), unix seconds,
    or an RFC 3339 time."""
    import contextlib
    from datetime import datetime

    from airpods.errors import UsageError
    from airpods.values import duration_seconds

    now = time.time() if now is None else now
    text = value.strip()
    if text.isdigit():
        return int(text)
    with contextlib.suppress(ValueError):
        return int(now - duration_seconds(text))
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise UsageError(
            f"--since {value!r} is not a time", hint="use 10m, 2h, unix seconds or RFC 3339"
        ) from None


@click.command()
@click.argument("service")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("-n", "--tail", "lines", type=LINES, default=None, help="Only the last N lines.")
@click.option("--since", default=None,
              help="Only lines since a time: a duration (10m, 2h), unix seconds or RFC 3339.")
@click.pass_obj
def logs(app: AppContext, service: str, follow: bool, lines: int | None, since: str | None) -> None:
    """Print SERVICE's container log."""
    from airpods.cli.context import connect, resolve
    from airpods.cli.output import make_console
    from airpods.errors import AirpodsError, NoSuchContainer
    from airpods.resolved import select_services

    since_s = parse_since(since) if since else None  # bad input fails before Podman is touched
    resolved = resolve(app)
    select_services(resolved, (service,))
    podman = connect(make_console())
    container = resolved.services[service].container
    try:
        for line in podman.logs(container, tail=lines, follow=follow, since=since_s):
            click.echo(line)
    except NoSuchContainer:
        raise AirpodsError(
            f"{service} has no container", hint=f"start it: airpods start {service}"
        ) from None
    except KeyboardInterrupt:
        pass
