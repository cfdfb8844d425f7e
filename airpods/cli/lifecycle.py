"""`airpods start` and `airpods stop`."""

from __future__ import annotations

import os
from typing import Any

import click

from airpods.cli import AppContext


def _load(app: AppContext, cpu: bool = False, secrets: Any = None) -> Any:
    environ = dict(os.environ)
    if cpu:
        environ["AIRPODS_ACCELERATOR"] = "cpu"
    return app.load_config(environ=environ, secrets=secrets)


def _connect(console: Any) -> Any:
    from airpods.engine.podman import Podman

    return Podman.connect(note=lambda text: console.print(f"[yellow]note:[/yellow] {text}"))


@click.command()
@click.argument("services", nargs=-1)
@click.option(
    "--dry-run", is_flag=True, help="Print what would run (image, ports, argv); change nothing."
)
@click.option("--pre-fetch", is_flag=True, help="Pull the images only; start nothing.")
@click.option("--cpu", is_flag=True, help="Use the CPU images even when a GPU is found.")
@click.option("--no-wait", is_flag=True, help="Return once started, without waiting for readiness.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_obj
def start(
    app: AppContext,
    services: tuple[str, ...],
    dry_run: bool,
    pre_fetch: bool,
    cpu: bool,
    no_wait: bool,
    as_json: bool,
) -> None:
    """Start SERVICES (default: every enabled service) and wait until they are ready.

    Idempotent: a service already running with the same configuration is left alone; one whose
    configuration changed is recreated (its volumes are kept).
    """
    from airpods.cli.output import ConsoleReporter, echo_json, make_console, print_dry_run
    from airpods.render import render_all, select_services
    from airpods.secrets import SecretStore

    store = SecretStore()
    loaded = _load(app, cpu, store)
    names = select_services(loaded.config, services)
    specs = render_all(loaded.config, loaded.host, names)
    if dry_run:
        if as_json:
            from airpods.cli.output import spec_as_json

            echo_json({"dry_run": True, "services": [spec_as_json(s) for s in specs]})
        else:
            print_dry_run(specs, make_console(stderr=False))
        return
    console = make_console()
    reporter = ConsoleReporter(console)
    for note in dict.fromkeys(n for s in specs for n in s.notes):
        reporter.note(note)
    podman = _connect(console)
    from airpods.engine import lifecycle

    store.save()  # the config is valid: keep the keys the services are about to be given
    if pre_fetch:
        pulled = lifecycle.prefetch(podman, loaded.config, specs, reporter)
        if as_json:
            echo_json({"pulled": pulled, "images": sorted({s.image for s in specs})})
        return
    outcomes = lifecycle.start(podman, loaded.config, specs, reporter, wait=not no_wait)
    if as_json:
        echo_json({"services": [o.__dict__ for o in outcomes]})
        return
    for spec in specs:
        url = f"http://{spec.ports[0].host_ip}:{spec.ports[0].host_port}" if spec.ports else "-"
        console.print(f"[green]ready[/green] {spec.service}  {url}")


@click.command()
@click.argument("services", nargs=-1)
@click.option("--timeout", type=float, default=None, help="Seconds to wait before killing.")
@click.option(
    "--remove-volumes",
    is_flag=True,
    help="Also delete the services' volumes (asks first; model volumes only when named).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def stop(
    app: AppContext,
    services: tuple[str, ...],
    timeout: float | None,
    remove_volumes: bool,
    yes: bool,
) -> None:
    """Stop SERVICES (default: everything airpods runs). Volumes, and so models, are kept."""
    from airpods.cli.output import ConsoleReporter, make_console
    from airpods.engine import lifecycle
    from airpods.render import order_by_dependencies, select_services

    loaded = _load(app)
    config = loaded.config
    console = make_console()
    podman = _connect(console)
    if services:
        names = select_services(config, services)
    else:
        running = set(podman.managed())
        known = order_by_dependencies(config, [n for n in config.services if n in running]
                                      + config.enabled_services())
        names = [n for n in running if n not in config.services] + known
    volumes = _volumes_to_remove(config, names, explicit=bool(services)) if remove_volumes else []
    if volumes and not yes:
        click.confirm(
            f"Delete volumes {', '.join(volumes)}? Their data cannot be recovered", abort=True,
            err=True,
        )
    stopped = lifecycle.stop(podman, config, names, ConsoleReporter(console), timeout_s=timeout)
    for volume in volumes:
        if podman.volume_exists(volume):
            podman.remove_volume(volume)
            console.print(f"deleted volume {volume}")
    console.print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


def _volumes_to_remove(config: Any, names: list[str], *, explicit: bool) -> list[str]:
    """Named volumes of `names`. Model volumes (of llama-server services) only when named."""
    out: list[str] = []
    for name in names:
        svc = config.services.get(name)
        if svc is None or (svc.kind == "llama-server" and not explicit):
            continue
        out += [v.source for v in svc.volumes.values() if not v.is_bind]
    # A volume still used by a service that keeps running must stay.
    keep = {
        v.source
        for n, s in config.services.items()
        if n not in names
        for v in s.volumes.values()
    }
    return sorted(set(out) - keep)
