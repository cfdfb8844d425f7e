"""`airpods models load ID` / `airpods models unload ID`: a router service's models, on demand.

Through the router's own API (POST /models/load, /models/unload) with the service's key; `load`
waits until the model has loaded or failed (the readiness module's polling, with a check for
that one model), and prints which.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from airpods.cli import AppContext
from airpods.cli.params import WAIT_SECONDS

if TYPE_CHECKING:
    from airpods.kinds.base import ModelRouter, RouterModel
    from airpods.spec import ContainerSpec

SERVICE_HELP = "The router service (default: the first enabled service in router mode)."
UNLOAD_WAIT_S = 30.0  # a model's process gets llama-server's stop timeout (10 s) to exit
_WHY = {"removed": "no container", "": "unknown state"}


def _router_of(spec: ContainerSpec) -> ModelRouter | None:
    from airpods import kinds

    routes = kinds.capable(spec.kind, kinds.RoutesModels)
    return routes.router(spec) if routes else None


def _router(app: AppContext, service: str | None) -> tuple[ContainerSpec, ModelRouter]:
    """The service's spec and its router API; refuses a service that is not a router."""
    from airpods.cli.context import resolve
    from airpods.errors import UsageError
    from airpods.resolved import select_services

    resolved = resolve(app)
    if service is None:
        routers = [n for n in resolved.enabled_services() if _router_of(resolved.specs[n])]
        if not routers:
            raise UsageError("no enabled service runs in router mode",
                             hint='set services.NAME.mode = "router", or name one with --service')
        service = routers[0]
    select_services(resolved, (service,))
    spec = resolved.specs[service]
    router = _router_of(spec)
    if router is None:
        raise UsageError(f"{service} does not run in router mode",
                         hint=f'set services.{service}.mode = "router"')
    return spec, router


def _running(spec: ContainerSpec) -> Any:
    """The Podman adapter, once the service's container is known to run."""
    from airpods.cli.context import connect
    from airpods.cli.output import make_console
    from airpods.errors import AirpodsError

    podman = connect(make_console())
    running, _, status = podman.container_state(spec.container)
    if not running:
        raise AirpodsError(f"{spec.service} is not running ({_WHY.get(status, status)})",
                           hint=f"start it: airpods start {spec.service}")
    return podman


def _find(models: list[RouterModel], model_id: str, service: str) -> RouterModel:
    from airpods.errors import UsageError

    for model in models:
        if model.id == model_id:
            return model
    ids = ", ".join(m.id for m in models) or "none"
    raise UsageError(f"unknown model {model_id!r} in {service}", hint=f"its models: {ids}")


@click.command("load")
@click.argument("model_id", metavar="ID")
@click.option("--service", default=None, help=SERVICE_HELP)
@click.option("--timeout", type=WAIT_SECONDS, default=None,
              help="Seconds to wait (default: the service's health timeout).")
@click.pass_obj
def load_cmd(app: AppContext, model_id: str, service: str | None, timeout: float | None) -> None:
    """Load model ID in a router service and wait until it has loaded (or failed)."""
    from airpods import kinds
    from airpods.engine.readiness import ContainerState, wait_ready
    from airpods.errors import ServiceFailed
    from airpods.record import replace

    spec, router = _router(app, service)
    podman = _running(spec)
    model = _find(router.models(), model_id, spec.service)
    if model.state == "loaded":
        click.echo(f"{model_id} is already loaded ({model.file})")
        return
    if model.state != "loading":
        router.load(model_id)
    api = kinds.capable(spec.kind, kinds.HasApi)
    check = api.ready_check(spec) if api else None
    assert check is not None  # a router always has one

    def state() -> ContainerState:
        running, code, status = podman.container_state(spec.container)
        return ContainerState(running=running, exit_code=code, status=status)

    result = wait_ready(spec, container_state=state, timeout_s=timeout,
                        check=replace(check, model_ids=(model_id,)))
    if not result.ready:
        raise ServiceFailed(
            f"{spec.service}: model {model_id!r} did not load: {result.detail}",
            hint=f"full log: airpods logs {spec.service}",
            log_tail=podman.log_tail(spec.container, 30),
        )
    click.echo(f"{model_id} loaded in {result.elapsed_s:.1f}s ({model.file})")


@click.command("unload")
@click.argument("model_id", metavar="ID")
@click.option("--service", default=None, help=SERVICE_HELP)
@click.option("--timeout", type=WAIT_SECONDS, default=UNLOAD_WAIT_S, show_default=True,
              help="Seconds to wait for the model to unload.")
@click.pass_obj
def unload_cmd(app: AppContext, model_id: str, service: str | None, timeout: float) -> None:
    """Unload model ID from a router service (it loads again when a request names it)."""
    from airpods.errors import AirpodsError

    spec, router = _router(app, service)
    _running(spec)
    model = _find(router.models(), model_id, spec.service)
    if model.state not in ("loaded", "loading"):
        click.echo(f"{model_id} is not loaded ({model.state})")
        return
    router.unload(model_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = _find(router.models(), model_id, spec.service)
        if model.state not in ("loaded", "loading"):
            click.echo(f"{model_id} unloaded")
            return
        time.sleep(0.1)
    raise AirpodsError(f"{spec.service}: model {model_id!r} is still {model.state} after "
                       f"{timeout:g}s", hint=f"see airpods logs {spec.service}")
