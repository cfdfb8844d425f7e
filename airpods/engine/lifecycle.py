"""The lifecycle operations behind `start`, `start --pre-fetch` and `stop`."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager

from airpods.engine.apply import Outcome, Reporter, apply_plan, plan_creates, pull_images
from airpods.engine.lock import lock_path, state_lock
from airpods.engine.plan import Action, Plan, Step, keeps, make_plan
from airpods.engine.podman_protocol import Podman
from airpods.record import replace
from airpods.resolved import Resolved, Settings
from airpods.spec import ContainerSpec


def current_plan(
    podman: Podman,
    specs: Sequence[ContainerSpec],
    *,
    wait: bool = True,
    note: Callable[[str], None] = lambda text: None,
) -> tuple[Plan, dict]:
    actual = podman.managed(bare_pods=True)
    _mark_dead(podman, specs, actual, note)
    # A service kept running has its image, volumes and network (Podman refuses to remove
    # them while in use): only what the plan (re)creates is asked about.
    changing = [s for s in specs if not keeps(s, actual.get(s.service))]
    images = {s.image for s in specs}
    volumes = {m.source for s in specs for m in s.mounts if not m.is_bind}
    missing_images = {i for i in {s.image for s in changing} if not podman.image_exists(i)}
    missing_volumes = {v for v in {m.source for s in changing for m in s.mounts if not m.is_bind}
                       if not podman.volume_exists(v)}
    plan = make_plan(
        specs,
        actual=actual,
        images_present=images - missing_images,
        volumes_present=volumes - missing_volumes,
        network_present=all(podman.network_exists(n) for n in {s.network for s in changing}),
        wait=wait,
    )
    return plan, actual


def _mark_dead(podman: Podman, specs: Sequence[ContainerSpec], actual: dict,
               note: Callable[[str], None]) -> None:
    """A container Podman records as running whose process is gone (kill -9 of it and its
    conmon: a killed session, the OOM killer) would be kept and waited on until the readiness
    timeout. Only a service whose health port accepts nothing is asked about (one request)."""
    from airpods.localhttp import accepts
    from airpods.spec import reach_ip

    for spec in specs:
        current = actual.get(spec.service)
        health = spec.health
        if (not keeps(spec, current) or health is None or health.host_port is None
                or accepts(reach_ip(health.host_ip), health.host_port)):
            continue
        if podman.process_gone(current.container):
            note(f"{spec.service}: Podman records its container as running, but its process is "
                 "gone (killed with its monitor, conmon); recreating it (its volumes stay)")
            actual[spec.service] = replace(current, state="dead")


@contextmanager
def locked(podman: Podman, reporter: Reporter) -> Iterator[None]:
    """Serialize the airpods commands that change this Podman's state (start, stop)."""
    with state_lock(lock_path(podman.url), on_wait=lambda: reporter.note(
        "another airpods command is changing state; waiting for it"
    )):
        yield


def start(
    podman: Podman,
    settings: Settings,
    specs: Sequence[ContainerSpec],
    reporter: Reporter,
    *,
    wait: bool = True,
    before_create: Callable[[list[ContainerSpec]], None] | None = None,
    configured: Collection[str] | None = None,
) -> list[Outcome]:
    """Converge `specs` and wait for readiness. Call inside `locked()`.

    `before_create` gets the specs the plan (re)creates, before anything changes (the models
    they need are fetched there); a service left running as it is costs nothing. With
    `configured` (every service the configuration has), the replicas of `specs` it no longer
    has are stopped and removed (engine/surplus.py).
    """
    from airpods.engine.surplus import surplus_replicas

    plan, actual = current_plan(podman, specs, wait=wait, note=reporter.note)
    creating = [spec for spec in plan.specs if plan_creates(plan, spec.service)]
    if before_create is not None and creating:
        before_create(creating)
    retire = surplus_replicas(specs, actual, configured) if configured is not None else []
    return apply_plan(
        plan,
        podman,
        reporter,
        actual=actual,
        max_parallel_pulls=settings.max_concurrent_pulls,
        stop_timeout_s=settings.stop_timeout_s,
        failure_log_lines=settings.failure_log_lines,
        retire=retire,
    )


def prefetch(
    podman: Podman, settings: Settings, specs: Sequence[ContainerSpec], reporter: Reporter
) -> list[str]:
    """Pull the images `specs` need and start nothing. Returns the images that were pulled."""
    missing = sorted({s.image for s in specs if not podman.image_exists(s.image)})
    for image in sorted({s.image for s in specs}):
        reporter.step(Step(Action.PULL, image) if image in missing else Step(Action.PRESENT, image))
    pull_images(podman, missing, reporter, settings.max_concurrent_pulls)
    return missing


def stop(
    podman: Podman,
    resolved: Resolved,
    names: Sequence[str],
    reporter: Reporter,
    *,
    timeout_s: float | None = None,
) -> list[str]:
    """Stop and remove the services' containers and pods, dependents first. Volumes stay."""
    timeout = resolved.settings.stop_timeout_s if timeout_s is None else timeout_s
    stopped = []
    with locked(podman, reporter):
        # A pod left without its container (an interrupted start) is stopped too.
        actual = podman.managed(bare_pods=True)
        for name in reversed(list(names)):
            current = actual.get(name)
            if current is None:
                continue
            reporter.step(Step(Action.REMOVE, name, "stopping"))
            podman.remove_service(current.pod, current.container, timeout)
            stopped.append(name)
    return stopped
