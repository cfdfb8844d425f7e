"""`airpods models`: the GGUF files in a llama-server service's model volume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from airpods.cli import AppContext

SERVICE_HELP = "The llama-server service (default: the first enabled one)."


def _model_target(app: AppContext, service: str | None) -> tuple[Any, str, str]:
    """(resolved, volume, configured model path inside it) for `service`, touching no Podman."""
    from airpods import kinds
    from airpods.cli.context import resolve
    from airpods.errors import UsageError
    from airpods.models.store import model_location
    from airpods.resolved import select_services

    resolved = resolve(app)
    if service is None:
        servers = [n for n in resolved.enabled_services()
                   if kinds.get(resolved.specs[n].kind).model_path(resolved.specs[n])]
        if not servers:
            raise UsageError("no enabled llama-server service", hint="name one with --service")
        service = servers[0]
    select_services(resolved, (service,))
    spec = resolved.specs[service]
    volume, model = model_location(spec)
    return resolved, volume, model


def _podman() -> Any:
    from airpods.cli.context import connect
    from airpods.cli.output import make_console

    return connect(make_console())


@click.group()
def models() -> None:
    """List and add GGUF models in a llama-server service's model volume."""


@models.command("list")
@click.option("--service", default=None, help=SERVICE_HELP)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_cmd(app: AppContext, service: str | None, as_json: bool) -> None:
    """List the models in the service's model volume; the configured one is marked."""
    from airpods.cli.output import echo_json
    from airpods.models.store import list_models

    _, volume, current = _model_target(app, service)
    podman = _podman()
    found = list_models(podman.volume_path(volume)) if podman.volume_exists(volume) else []
    if as_json:
        echo_json({"volume": volume, "configured": current,
                   "models": [{"name": m.name, "size": m.size} for m in found]})
        return
    for m in found:
        mark = "*" if m.name == current else " "
        click.echo(f"{mark} {m.name}  {m.size / 1e6:.1f} MB")
    if not any(m.name == current for m in found):
        click.echo(f"the configured model {current} is not in volume {volume}", err=True)


@models.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--service", default=None, help=SERVICE_HELP)
@click.option("--name", default=None, help="File name in the volume (default: the file's name).")
@click.pass_obj
def add_cmd(app: AppContext, file: Path, service: str | None, name: str | None) -> None:
    """Copy a local GGUF FILE into the service's model volume (atomically)."""
    from airpods.models.store import add_model, check_gguf

    check_gguf(file)  # before anything is created
    _, volume, _ = _model_target(app, service)
    podman = _podman()
    podman.ensure_volume(volume)
    dest = add_model(file, podman.volume_path(volume), name or file.name)
    click.echo(f"added {dest.name} to volume {volume}")


from airpods.cli.router_cmd import load_cmd, unload_cmd  # noqa: E402  (router mode: on demand)

models.add_command(load_cmd)
models.add_command(unload_cmd)
