"""Desired specs + actual Podman state → an ordered plan. Pure: no I/O, easy to print and test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from airpods.record import record
from airpods.spec import Actual, ContainerSpec


class Action(StrEnum):
    """What a plan step does; the values are what --dry-run and --json print."""

    PULL = "pull"
    CREATE_NETWORK = "create-network"
    CREATE_VOLUME = "create-volume"
    REMOVE = "remove"
    CREATE = "create"
    START = "start"
    KEEP = "keep"
    WAIT = "wait"
    PRESENT = "present"  # an image --pre-fetch finds already there


@record
class Step:
    action: Action
    target: str  # the network, volume, image or service the step is about
    reason: str = ""


@record
class Plan:
    steps: tuple[Step, ...]
    specs: tuple[ContainerSpec, ...]

    def of(self, action: str) -> list[Step]:
        return [s for s in self.steps if s.action == action]


def make_plan(
    specs: Sequence[ContainerSpec],
    *,
    actual: Mapping[str, Actual],
    images_present: set[str],
    volumes_present: set[str],
    network_present: bool,
    wait: bool = True,
) -> Plan:
    # Pulls first: they are what fails most (names, network), and a failed start changes nothing.
    images = sorted({s.image for s in specs})
    steps: list[Step] = [Step(Action.PULL, i) for i in images if i not in images_present]
    networks = sorted({s.network for s in specs})
    if not network_present:
        steps += [Step(Action.CREATE_NETWORK, n) for n in networks]
    volumes = sorted({m.source for s in specs for m in s.mounts if not m.is_bind})
    steps += [Step(Action.CREATE_VOLUME, v) for v in volumes if v not in volumes_present]
    for spec in specs:
        steps += _service_steps(spec, actual.get(spec.service))
        if wait and spec.health is not None:
            steps.append(Step(Action.WAIT, spec.service))
    return Plan(tuple(steps), tuple(specs))


def keeps(spec: ContainerSpec, current: Actual | None) -> bool:
    """The service runs as `spec` says: the plan leaves it alone (KEEP)."""
    return (current is not None and bool(current.container)
            and current.config_hash == spec.config_hash and current.state == "running")


def _service_steps(spec: ContainerSpec, current: Actual | None) -> list[Step]:
    name = spec.service
    if current is None:
        return [Step(Action.CREATE, name, "not created yet"), Step(Action.START, name)]
    if not current.container:
        # A start or stop interrupted between the pod and its container: the pod may hold the
        # ports and the name, so it goes first.
        return [
            Step(Action.REMOVE, name, f"pod {current.pod} has no container"),
            Step(Action.CREATE, name, "recreate"),
            Step(Action.START, name),
        ]
    if current.config_hash != spec.config_hash:
        return [
            Step(Action.REMOVE, name, "configuration changed"),
            Step(Action.CREATE, name, "configuration changed"),
            Step(Action.START, name),
        ]
    if keeps(spec, current):
        return [Step(Action.KEEP, name, "running with the same configuration")]
    return [
        Step(Action.REMOVE, name, f"container is {current.state or 'not running'}"),
        Step(Action.CREATE, name, "recreate"),
        Step(Action.START, name),
    ]
