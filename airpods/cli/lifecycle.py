"""`airpods start` and `airpods stop`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from airpods.cli import AppContext
from airpods.cli.context import connect, resolve
from airpods.cli.params import STOP_SECONDS

if TYPE_CHECKING:
    from airpods.resolved import Resolved


@click.command()
@click.argument("services", nargs=-1)
@click.option(
    "--dry-run", is_flag=True, help="Print what would run (image, ports, argv); change nothing."
)
@click.option("--pre-fetch", is_flag=True, help="Pull the images only; start nothing.")
@click.option("--cpu", is_flag=True, help="Use the CPU images even when a GPU is found.")
@click.option("--no-wait", is_flag=True, help="Return once started, without waiting for readiness.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.option("--offline", is_flag=True, help="Never download a missing model (model_source).")
@click.pass_obj
def start(
    app: AppContext,
    services: tuple[str, ...],
    dry_run: bool,
    pre_fetch: bool,
    cpu: bool,
    no_wait: bool,
    as_json: bool,
    offline: bool,
) -> None:
    """Start SERVICES (default: every enabled service) and wait until they are ready.

    Idempotent: a service already running with the same configuration is left alone; one whose
    configuration changed is recreated (its volumes are kept).
    """
    from airpods.cli.start_run import run_start

    run_start(app, services, dry_run=dry_run, pre_fetch=pre_fetch, cpu=cpu, no_wait=no_wait,
              as_json=as_json, offline=offline)


@click.command()
@click.argument("services", nargs=-1)
@click.option("--timeout", type=STOP_SECONDS, default=None,
              help="Seconds to wait before killing (0 to 3600).")
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
    from airpods.engine.surplus import leftovers
    from airpods.resolved import order_by_dependencies, select_services

    resolved = resolve(app)
    console = make_console()
    podman = connect(console)
    if services:
        names = select_services(resolved, services)
        # A named service's replicas that a lowered `replicas` left running go with it.
        names += leftovers(podman.managed(bare_pods=True), resolved.services, of=names)
    else:
        running = podman.managed()
        known = order_by_dependencies(resolved, [n for n in resolved.services if n in running]
                                      + resolved.enabled_services())
        names = leftovers(running, resolved.services) + known
    volumes, kept = (_volumes_to_remove(resolved, names, explicit=bool(services))
                     if remove_volumes else ([], {}))
    for volume, others in kept.items():
        console.print(f"keeping volume {volume}: {', '.join(others)} also use it "
                      "(name them too to delete it)")
    foreign = [v for v in volumes if podman.volume_owned(v) is False]
    for volume in foreign:
        console.print(f"keeping volume {volume}: airpods did not create it")
    volumes = [v for v in volumes if v not in foreign]
    if volumes and not yes:
        click.confirm(
            f"Delete volumes {', '.join(volumes)}? Their data cannot be recovered", abort=True,
            err=True,
        )
    from airpods.models.services import record_usage, served_tokens

    tokens = served_tokens(resolved, names)  # before the servers go, with their counters
    stopped = lifecycle.stop(podman, resolved, names, ConsoleReporter(console), timeout_s=timeout)
    record_usage(resolved, stopped, "stop", tokens)
    for volume in volumes:
        if podman.volume_exists(volume):
            podman.remove_volume(volume)
            console.print(f"deleted volume {volume}")
    console.print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


def _volumes_to_remove(
    resolved: Resolved, names: list[str], *, explicit: bool
) -> tuple[list[str], dict[str, list[str]]]:
    """(volumes to delete, volumes kept → the other services using them).

    Only named volumes of `names`; model volumes (of kinds that hold models: hours of downloads
    to lose) only when the service is named; never a volume another configured service also
    mounts, running or not.
    """
    from airpods import kinds

    wanted: list[str] = []
    for name in names:
        svc = resolved.services.get(name)
        if svc is None or (kinds.get(svc.kind).holds_models and not explicit):
            continue
        wanted += [source for source, is_bind in svc.volumes if not is_bind]
    users: dict[str, list[str]] = {}
    for other, svc in resolved.services.items():
        if other not in names:
            for source, _ in svc.volumes:
                users.setdefault(source, []).append(other)
    kept = {v: users[v] for v in sorted(set(wanted)) if v in users}
    return sorted(set(wanted) - set(kept)), kept
