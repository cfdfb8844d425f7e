"""`airpods models`: the GGUF files in a llama-server service's model volume."""

from __future__ import annotations

from pathlib import Path

import click

from airpods.cli import AppContext


def _volume_root(app: AppContext, service: str) -> tuple[Path, str, str]:
    from airpods.cli.lifecycle import _connect, _resolve
    from airpods.cli.output import make_console
    from airpods.models.store import model_volume
    from airpods.resolved import select_services

    resolved = _resolve(app)
    select_services(resolved, (service,))
    spec = resolved.specs[service]
    volume, model = model_volume(spec.command, {m.target: m.source for m in spec.mounts})
    podman = _connect(make_console())
    podman.ensure_volume(volume)
    return podman.volume_path(volume), volume, model


@click.group()
def models() -> None:
    """List and add GGUF models in a llama-server service's model volume."""


@models.command("list")
@click.option("--service", default="llamacpp", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_cmd(app: AppContext, service: str, as_json: bool) -> None:
    """List the models in the service's model volume; the configured one is marked."""
    from airpods.cli.output import echo_json
    from airpods.models.store import list_models

    root, volume, current = _volume_root(app, service)
    found = list_models(root)
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
@click.option("--service", default="llamacpp", show_default=True)
@click.option("--name", default=None, help="File name in the volume (default: the file's name).")
@click.pass_obj
def add_cmd(app: AppContext, file: Path, service: str, name: str | None) -> None:
    """Copy a local GGUF FILE into the service's model volume (atomically)."""
    from airpods.models.store import add_model

    root, volume, _ = _volume_root(app, service)
    dest = add_model(file, root, name or file.name)
    click.echo(f"added {dest.name} to volume {volume}")
