"""What `airpods start` does, without click: the fast path (airpods/cli/fast_run.py) and the
click command (airpods/cli/lifecycle.py) both run `run_start`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airpods.cli.context import connect, resolve, resolve_and_keep_secrets

if TYPE_CHECKING:
    from airpods.cli.meta import AppContext
    from airpods.spec import ContainerSpec


def run_start(
    app: AppContext,
    services: tuple[str, ...],
    *,
    dry_run: bool = False,
    pre_fetch: bool = False,
    cpu: bool = False,
    no_wait: bool = False,
    as_json: bool = False,
    offline: bool = False,
) -> None:
    """Start `services` (default: every enabled one) and wait until they are ready; see
    `airpods start --help`."""
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
        from airpods.models.first_use import dry_run_estimates

        lines, refusal = dry_run_estimates(resolved, specs, app.config_path)
        if as_json:
            echo_json(dry_run_json(specs, values))
        else:
            print_dry_run(specs, make_console(stderr=False), values)
            for line in lines + _dry_run_surplus(resolved, specs):
                print(line)
        if refusal is not None:  # what `start` refuses with, and its exit code (2)
            from airpods.errors import UsageError

            raise UsageError(refusal)
        return
    _refuse_start_problems(specs)
    console = make_console()
    reporter = ConsoleReporter(console)
    podman = connect(console)
    specs = _settled(specs, podman, resolved.host)
    for spec in specs:
        console.print(f"[dim]{spec.service}: {spec.image} ({spec.image_reason})[/dim]")
    for note in dict.fromkeys(n for s in specs for n in s.notes):
        reporter.note(note)
    for warning in _start_warnings(specs):
        from airpods.cli.plain import escape

        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    from airpods.engine import lifecycle

    if pre_fetch:
        pulled = lifecycle.prefetch(podman, resolved.settings, specs, reporter)
        if as_json:
            echo_json({"pulled": pulled, "images": sorted({s.image for s in specs})})
        return
    def fetch_models(creating: list[ContainerSpec]) -> None:
        # Only what the plan (re)creates: a service left running as it is costs nothing.
        from airpods.cli.pull_progress import PullProgress
        from airpods.models.first_use import prepare_models

        prepare_models(resolved, creating, podman, config_path=app.config_path,
                       offline=offline, note=reporter.note, progress=PullProgress())

    with lifecycle.locked(podman, reporter):
        if store.pending:
            # New keys are decided under the lock: a concurrent first start (or `config get`)
            # may have saved some.
            resolved = resolve_and_keep_secrets(app, cpu=cpu)
            specs = _settled([resolved.specs[n] for n in names], podman, resolved.host)
        from airpods.engine.ports import retry_after_podman_leak
        from airpods.errors import PortInUse

        try:  # a port left held by airpods' own transient Podman service: restarted, retried
            outcomes = retry_after_podman_leak(
                lambda: lifecycle.start(podman, resolved.settings, specs, reporter,
                                        wait=not no_wait, before_create=fetch_models,
                                        configured=resolved.services),
                reporter.note)
        except PortInUse as exc:
            raise _replica_port(resolved, specs, exc) from None
    changed = [o.service for o in outcomes if o.changed]
    if changed:  # a start that changed nothing records nothing (nor imports the usage code)
        from airpods.models.services import record_usage

        record_usage(resolved, changed, "start")
    if as_json:
        echo_json({"services": [o.__dict__ for o in outcomes]})
        return
    word = "started" if no_wait else "ready"
    for spec in specs:
        url = spec.ports[0].url if spec.ports else "-"
        console.print(f"[green]{word}[/green] {spec.service}  {url}")


def _settled(specs: list[ContainerSpec], podman: Any, host: Any) -> list[ContainerSpec]:
    """Specs with their deferred settings decided (models.services.settle_specs); the common
    case, none deferred, without importing the models code."""
    if not any(spec.deferred for spec in specs):
        return specs
    from airpods.models.services import settle_specs

    return settle_specs(specs, podman, host)


def _start_warnings(specs: list[ContainerSpec]) -> list[str]:
    """What a kind checks at start and only warns about (a gateway's peer that is down)."""
    import os

    from airpods import kinds

    out = []
    for spec in specs:
        defers = kinds.capable(spec.kind, kinds.Defers)
        out += defers.start_warnings(spec, os.environ) if defers else []
    return out


def _refuse_start_problems(specs: list[ContainerSpec]) -> None:
    """What a kind needs from this shell before anything starts (a remote's key variable)."""
    import os

    from airpods import kinds
    from airpods.errors import UsageError

    for spec in specs:
        defers = kinds.capable(spec.kind, kinds.Defers)
        problems = defers.start_problems(spec, os.environ) if defers else []
        if problems:
            raise UsageError(problems[0])


def _replica_port(resolved: Any, specs: list[ContainerSpec], exc: Exception) -> Exception:
    """A port a replica needs (`replicas = N` takes consecutive host ports) held by another
    program: more replicas than free ports, a config error (exit 2) said at `replicas`."""
    from airpods.errors import PortInUse, UsageError

    assert isinstance(exc, PortInUse)
    name = next((s.service for s in specs if any(p.host_port == exc.port for p in s.ports)), "")
    base = resolved.services[name].replica_of if name in resolved.services else ""
    if not base:
        return exc
    return UsageError(f"services.{base}.replicas: {exc.message}", hint=(
        f"replicas take consecutive host ports from ports[0].host: lower replicas, free port "
        f"{exc.port}, or move services.{base}.ports[0].host"))


def _dry_run_surplus(resolved: Any, specs: list[ContainerSpec]) -> list[str]:
    """What `start` would stop and remove (replicas a lowered `replicas` no longer has), when
    Podman already answers: a dry run starts nothing."""
    from airpods.engine.surplus import surplus_replicas
    from airpods.models.services import answering_podman

    podman = answering_podman()
    if podman is None:
        return []
    found = surplus_replicas(specs, podman.managed(bare_pods=True), resolved.services)
    return [f"remove:   {why}: start stops and removes it" for _, why in found]
