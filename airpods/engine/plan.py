"""Desired specs + actual Podman state → an ordered plan. Pure: no I/O, easy to print and test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from airpods.spec import Actual, ContainerSpec


@dataclass(frozen=True)
class Step:
    # pull | create-network | create-volume | remove | create | start | keep | wait
    # (and "present": an image --pre-fetch finds already there)
    action: str
    target: str  # the network, volume, image or service the step is about
    reason: str = ""


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    specs: tuple[ContainerSpec, ...]

    def of(self, action: str) -> list[Step]:
        return [s for s in self.steps if s.action == action]

    def changes_anything(self) -> bool:
        return any(s.action not in ("keep", "wait") for s in self.steps)


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
    steps: list[Step] = [Step("pull", i) for i in images if i not in images_present]
    networks = sorted({s.network for s in specs})
    if not network_present:
        steps += [Step("create-network", n) for n in networks]
    volumes = sorted({m.source for s in specs for m in s.mounts if not m.is_bind})
    steps += [Step("create-volume", v) for v in volumes if v not in volumes_present]
    for spec in specs:
        steps += _service_steps(spec, actual.get(spec.service))
        if wait and spec.health is not None:
            steps.append(Step("wait", spec.service))
    return Plan(tuple(steps), tuple(specs))


def _service_steps(spec: ContainerSpec, current: Actual | None) -> list[Step]:
    name = spec.service
    if current is None:
        return [Step("create", name, "not created yet"), Step("start", name)]
    if not current.container:
        # A start or stop interrupted between the pod and its container: the pod may hold the
        # ports and the name, so it goes first.
        return [
            Step("remove", name, f"pod {current.pod} has no container"),
            Step("create", name, "recreate"),
            Step("start", name),
        ]
    if current.config_hash != spec.config_hash:
        return [
            Step("remove", name, "configuration changed"),
            Step("create", name, "configuration changed"),
            Step("start", name),
        ]
    if current.state == "running":
        return [Step("keep", name, "running with the same configuration")]
    return [
        Step("remove", name, f"container is {current.state or 'not running'}"),
        Step("create", name, "recreate"),
        Step("start", name),
    ]
