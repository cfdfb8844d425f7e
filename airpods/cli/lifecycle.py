"""`airpods start` and `airpods stop`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from airpods.cli import AppContext
from airpods.cli.context import connect, resolve, resolve_and_keep_secrets
from airpods.cli.params import STOP_SECONDS

if TYPE_CHECKING:
    from airpods.resolved import Resolved
    from airpods.spec import ContainerSpec


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
    from airpods.cli.output import ConsoleReporter, echo_json, make_console, print_dry_run
    from airpods.resolved import select_services
    from airpods.secrets import SecretStore

    store = SecretStore()
    resolved = resolve(app, cpu=cpu, secrets=store)
    names = select_services(resolved, services)
    specs = [resolved.specs[n] for n in names]
    if dry_run:
        from airpods.cli.output import dry_run_json
        from airpods.models.services import answering_podman, settle_specs
        from airpods.secrets import secret_values

        if any(spec.deferred for spec in specs):
            specs = settle_specs(specs, answering_podman(), resolved.host)

        # Every service's secrets: a template may copy one service's key into another's env.
        values = secret_values(*resolved.specs.values())
        if as_json:
            echo_json(dry_run_json(specs, values))
        else:
            print_dry_run(specs, make_console(stderr=False), values)
            from airpods.models.first_use import dry_run_estimates

            for line in dry_run_estimates(resolved, specs, app.config_path):
                click.echo(line)
        return
    _refuse_start_problems(specs)
    console = make_console()
    reporter = ConsoleReporter(console)
    podman = connect(console)
    from airpods.models.services import settle_specs

    specs = settle_specs(specs, podman, resolved.host)
    for spec in specs:
        console.print(f"[dim]{spec.service}: {spec.image} ({spec.image_reason})[/dim]")
    for note in dict.fromkeys(n for s in specs for n in s.notes):
        reporter.note(note)
    from airpods.engine import lifecycle

    if pre_fetch:
        pulled = lifecycle.prefetch(podman, resolved.settings, specs, reporter)
        if as_json:
            echo_json({"pulled": pulled, "images": sorted({s.image for s in specs})})
        return
    from airpods.cli.pull_progress import PullProgress
    from airpods.models.first_use import prepare_models
    from airpods.models.services import record_usage

    def fetch_models(creating: list[ContainerSpec]) -> None:
        # Only what the plan (re)creates: a service left running as it is costs nothing.
        prepare_models(resolved, creating, podman, config_path=app.config_path,
                       offline=offline, note=reporter.note, progress=PullProgress())

    with lifecycle.locked(podman, reporter):
        if store.pending:
            # New keys are decided under the lock: a concurrent first start (or `config get`)
            # may have saved some.
            resolved = resolve_and_keep_secrets(app, cpu=cpu)
            specs = settle_specs([resolved.specs[n] for n in names], podman, resolved.host)
        from airpods.engine.ports import retry_after_podman_leak

        # A port left held by airpods' own transient Podman service: restarted once, retried.
        outcomes = retry_after_podman_leak(
            lambda: lifecycle.start(podman, resolved.settings, specs, reporter,
                                    wait=not no_wait, before_create=fetch_models),
            reporter.note)
    record_usage(resolved, [o.service for o in outcomes if o.changed], "start")
    if as_json:
        echo_json({"services": [o.__dict__ for o in outcomes]})
        return
    word = "started" if no_wait else "ready"
    for spec in specs:
        url = spec.ports[0].url if spec.ports else "-"
        console.print(f"[green]{word}[/green] {spec.service}  {url}")


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
    from airpods.resolved import order_by_dependencies, select_services

    resolved = resolve(app)
    console = make_console()
    podman = connect(console)
    if services:
        names = select_services(resolved, services)
    else:
        running = set(podman.managed())
        known = order_by_dependencies(resolved, [n for n in resolved.services if n in running]
                                      + resolved.enabled_services())
        names = [n for n in running if n not in resolved.services] + known
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


def _refuse_start_problems(specs: list[ContainerSpec]) -> None:
    """What a kind needs from this shell before anything starts (a remote's key variable)."""
    import os

    from airpods import kinds
    from airpods.errors import UsageError

    for spec in specs:
        problems = kinds.get(spec.kind).start_problems(spec, os.environ)
        if problems:
            raise UsageError(problems[0])
