"""Carry out a plan through the Podman adapter, then wait for readiness.

Everything that could refuse (ports held by other programs, names owned by foreign containers) is
checked before the first change, so a refused start changes nothing.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from airpods.engine.plan import Plan, Step
from airpods.engine.podman_protocol import Podman
from airpods.engine.readiness import ContainerState, ReadinessEvent, ReadinessResult, wait_ready
from airpods.errors import AirpodsError, PodmanError, PortInUse, ServiceFailed
from airpods.record import record
from airpods.spec import Actual, ContainerSpec


class Reporter(Protocol):
    def step(self, step: Step) -> None: ...
    def pull_progress(self, image: str, line: str) -> None: ...
    def readiness(self, event: ReadinessEvent) -> None: ...
    def note(self, text: str) -> None: ...


@record
class Outcome:
    """One service after `start`. A service that fails to become ready raises instead."""

    service: str
    changed: bool  # created or recreated by this start
    ready: bool | None  # True once readiness was seen; None when not waited for (--no-wait)
    elapsed_s: float = 0.0  # time readiness took


def check_ports(plan: Plan, actual: Mapping[str, Actual],
                freed: Sequence[Actual] = ()) -> None:
    """Fail before any change if a port to publish is held by anything but this service itself
    (or a container `freed`, removed before any is created)."""
    creating = {s.target for s in plan.of("create")}
    leaving = {host for current in freed for _, host, _ in current.ports}
    for spec in plan.specs:
        if spec.service not in creating:
            continue
        current = actual.get(spec.service)
        # Any address this service's own container holds on a port is freed when it is
        # recreated (e.g. host_ip changed from 127.0.0.1 to 0.0.0.0).
        ours = leaving | ({host for _, host, _ in current.ports} if current else set())
        for i, port in enumerate(spec.ports):
            if port.host_port in ours:
                continue
            if not _port_free(port.host_ip, port.host_port, port.protocol):
                raise port_in_use(spec, i, port.host_ip, port.host_port, port.protocol)


def port_in_use(spec: ContainerSpec, index: int, ip: str, port: int,
                protocol: str = "tcp") -> PortInUse:
    """The error for a taken port, naming who holds it when /proc tells (engine/ports.py)."""
    import os

    from airpods.engine.ports import port_holder, transient_service_pid

    holder = port_holder(ip, port, protocol, transient_service_pid(os.environ))
    by = f" by {holder.describe()}" if holder else ""
    hint = f"stop what uses it or change services.{spec.service}.ports[{index}].host"
    if holder is not None and holder.name == "podman" and not holder.transient:
        hint = ("a Podman API service keeps a port after a failed start (Podman 4.3): restart "
                "it (systemctl restart podman.service), or " + hint)
    return PortInUse(
        f"port {port} on {ip} is already in use{by}, so {spec.service} cannot publish it",
        port=port, holder=holder, hint=hint,
    )


def _start(podman: Podman, spec: ContainerSpec) -> None:
    """Start the container; a port Podman finds taken becomes PortInUse, naming the holder.

    Podman 4.3 may say only "internal libpod error": a port of the spec that airpods' own
    transient Podman service holds is recognised from /proc whatever the message says."""
    import os

    from airpods.engine.ports import in_use_error, port_holder, transient_service_pid

    try:
        podman.start(spec.container)
    except Exception as exc:
        taken = in_use_error(exc)
        if taken is not None:
            ip, port = taken
            index = next((i for i, p in enumerate(spec.ports) if p.host_port == port), 0)
            raise port_in_use(spec, index, ip, port) from None
        service = transient_service_pid(os.environ)
        for i, p in enumerate(spec.ports):
            holder = port_holder(p.host_ip, p.host_port, p.protocol, service)
            if holder is not None and holder.transient:
                raise port_in_use(spec, i, p.host_ip, p.host_port, p.protocol) from None
        raise


def _port_free(host_ip: str, port: int, protocol: str) -> bool:
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(family, kind) as sock:
        try:
            sock.bind((host_ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise AirpodsError(
                    f"{host_ip} is not an address of this machine", hint="check the host_ip"
                ) from None
            return False
    return True


def check_names(plan: Plan, podman: Podman) -> None:
    """Refuse to replace containers or pods airpods did not create."""
    for spec in plan.specs:
        if not plan_creates(plan, spec.service):
            continue
        for what, owner in (
            ("container", podman.name_owner(spec.container)),
            ("pod", podman.pod_owner(spec.pod)),
        ):
            name = spec.container if what == "container" else spec.pod
            if owner is not None and owner != spec.service:
                by = "not airpods" if owner == "" else f"airpods service {owner!r}"
                raise AirpodsError(
                    f"a {what} named {name!r} already exists and belongs to {by}",
                    hint=f"remove it (podman {what} rm {name}) or rename "
                    f"services.{spec.service}.{what}",
                )


def check_required_files(plan: Plan, podman: Podman) -> None:
    """Fail before any change if a file a service needs is not in its volume (router presets)."""
    from airpods import kinds

    for spec in plan.specs:
        serves = kinds.capable(spec.kind, kinds.ServesModels)
        required = serves.required_files(spec) if serves else ()
        if not required or not plan_creates(plan, spec.service):
            continue
        from airpods.spec import model_volume

        mounts = {m.target: m.source for m in spec.mounts}
        missing: list[str] = []
        for what, path in required:
            volume, inside = model_volume(path, mounts)
            if volume.startswith("/"):  # a bind mount of a host directory
                present = Path(volume, inside).is_file()
            else:
                present = podman.volume_exists(volume) and (
                    podman.volume_path(volume) / inside).is_file()
            if not present:
                missing.append(f"{what} ({inside} in {volume})")
        if missing:
            raise AirpodsError(
                f"{spec.service}: missing {'; '.join(missing)}",
                hint=f"copy it in with `airpods models add FILE --service {spec.service}` "
                "(or `airpods models pull`), or fix services."
                f"{spec.service}.models.<id>.file",
            )


def plan_creates(plan: Plan, service: str) -> bool:
    return any(s.action == "create" and s.target == service for s in plan.steps)


def pull_images(
    podman: Podman, images: Sequence[str], reporter: Reporter, max_parallel: int
) -> None:
    if not images:
        return
    from concurrent.futures import ThreadPoolExecutor  # only when pulling: a few ms otherwise

    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel, len(images)))) as pool:
        futures = [
            pool.submit(podman.pull, ref, lambda line, ref=ref: reporter.pull_progress(ref, line))
            for ref in images
        ]
        errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        first = errors[0]
        raise first if isinstance(first, AirpodsError) else PodmanError(str(first))


def _unpullable(exc: PodmanError, specs: Sequence[ContainerSpec]) -> PodmanError:
    """A failed pull, said for the service whose image it is: the key to change, and how to
    pull it elsewhere or build it here (a registry may be out of reach: CI, air-gapped hosts)."""
    from airpods.kinds import registry as kinds

    spec = next((s for s in specs if exc.message.startswith(f"cannot pull {s.image}:")), None)
    if spec is None:
        return exc
    reason = " ".join(exc.message.removeprefix(f"cannot pull {spec.image}:").split())
    build = kinds.get(spec.kind).local_build
    how = f"`podman pull {spec.image}` where a registry answers, then `podman save` / `podman load`"
    if build:
        how += (f"; or build it here with `{build}` (airpods repo) and set "
                f"services.{spec.service}.image to the tag it prints")
    return PodmanError(f"{spec.service}: image {spec.image} is not here and cannot be pulled "
                       f"({reason}); services.{spec.service}.image", hint=how)


def apply_plan(
    plan: Plan,
    podman: Podman,
    reporter: Reporter,
    *,
    actual: Mapping[str, Actual],
    max_parallel_pulls: int,
    stop_timeout_s: float,
    failure_log_lines: int,
    retire: Sequence[tuple[Actual, str]] = (),
) -> list[Outcome]:
    """Carry out `plan`. Once nothing refuses and the images are here, the containers `retire`
    names (surplus replicas: engine/surplus.py, with why) are removed, each said in a line."""
    check_ports(plan, actual, [current for current, _ in retire])
    check_names(plan, podman)
    check_required_files(plan, podman)
    pulls = plan.of("pull")
    for step in pulls:
        reporter.step(step)
    try:
        pull_images(podman, [s.target for s in pulls], reporter, max_parallel_pulls)
    except PodmanError as exc:
        raise _unpullable(exc, plan.specs) from None
    for current, why in retire:  # their memory and ports go before anything new starts
        podman.remove_service(current.pod, current.container, stop_timeout_s)
        reporter.note(f"{why}, stopped and removed")
    for step in plan.of("create-network"):
        reporter.step(step)
        podman.ensure_network(step.target)
    for step in plan.of("create-volume"):
        reporter.step(step)
        podman.ensure_volume(step.target)

    specs = {s.service: s for s in plan.specs}
    waited: dict[str, ReadinessResult] = {}
    changed: set[str] = set()
    pinned: set[str] = set()  # networks whose bridge this start has seen to (once each)
    for spec in plan.specs:
        for dep in spec.depends_on:
            if dep in specs and dep not in waited and _has_wait(plan, dep):
                waited[dep] = _wait(specs[dep], podman, reporter, failure_log_lines)
        for step in (s for s in plan.steps if s.target == spec.service):
            if step.action in ("remove", "create", "start", "keep"):
                reporter.step(step)
            if step.action == "remove":
                current = actual.get(spec.service)
                podman.remove_service(current.pod if current else spec.pod,
                                      current.container if current else spec.container,
                                      stop_timeout_s)
                changed.add(spec.service)
            elif step.action == "create":
                # A pod left behind by an interrupted start would block the name.
                if podman.pod_owner(spec.pod) == spec.service:
                    podman.remove_service(spec.pod, spec.container, stop_timeout_s)
                _prepare_host(spec)
                podman.create_service(spec)
                changed.add(spec.service)
            elif step.action == "start":
                _prepare_host(spec)
                _start(podman, spec)
                # The first start on a network makes its bridge: fixed now, a container that
                # leaves later cannot change its MAC under the others (engine/bridge.py).
                if spec.network not in pinned:
                    pinned.add(spec.network)
                    podman.pin_network_bridge(spec.network)
    for spec in plan.specs:
        if spec.service not in waited and _has_wait(plan, spec.service):
            waited[spec.service] = _wait(spec, podman, reporter, failure_log_lines)
    return [
        Outcome(
            service=s.service,
            changed=s.service in changed,
            ready=True if s.service in waited else None,
            elapsed_s=waited[s.service].elapsed_s if s.service in waited else 0.0,
        )
        for s in plan.specs
    ]


def _prepare_host(spec: ContainerSpec) -> None:
    from airpods import kinds

    kind = kinds.capable(spec.kind, kinds.Defers)
    if kind is not None:
        kind.prepare_host(spec)


def _has_wait(plan: Plan, service: str) -> bool:
    return any(s.action == "wait" and s.target == service for s in plan.steps)


def _wait(
    spec: ContainerSpec, podman: Podman, reporter: Reporter, log_lines: int
) -> ReadinessResult:
    def state() -> ContainerState:
        running, code, status = podman.container_state(spec.container)
        return ContainerState(running=running, exit_code=code, status=status)

    result = wait_ready(spec, container_state=state, on_event=reporter.readiness)
    if not result.ready:
        tail = podman.log_tail(spec.container, log_lines)
        raise ServiceFailed(
            f"{spec.service} did not become ready: {result.detail}",
            hint=f"full log: airpods logs {spec.service}",
            log_tail=tail,
        )
    return result
