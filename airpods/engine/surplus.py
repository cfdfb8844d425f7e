"""Replicas `start` no longer wants: `replicas = N` lowered (or removed) leaves the containers of
NAME-(N+1).. running, unrouted, holding memory and ports; `start` stops and removes them.

A surplus replica is recognised by its labels only: an airpods container (or bare pod) labelled
LABEL_REPLICA_OF with a service this start converges, under a service name the configuration no
longer has. A container that is not airpods', that is some other service's, or whose name the
configuration still declares (it is converged like any service) is never one. Volumes, and so
model files, are never touched (Podman.remove_service keeps them).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from airpods.spec import Actual, ContainerSpec


def surplus_replicas(specs: Sequence[ContainerSpec], actual: Mapping[str, Actual],
                     configured: Collection[str]) -> list[tuple[Actual, str]]:
    """(what runs, why it goes: "NAME-3: no longer in services.NAME.replicas = 2") for each
    surplus replica of the services `specs` start, in replica order."""
    starting = {spec.service for spec in specs}
    counts = {name: 1 + sum(1 for s in specs if s.replica_of == name) for name in starting}
    out = [(actual[name], f"{name}: no longer in services.{actual[name].replica_of}.replicas = "
                          f"{counts[actual[name].replica_of]}")
           for name in leftovers(actual, configured, of=starting)]
    return sorted(out, key=lambda pair: _order(pair[0].service))


def leftovers(actual: Mapping[str, Actual], configured: Collection[str],
              of: Collection[str] | None = None) -> list[str]:
    """The services of airpods' containers in `actual` that the configuration (`configured`)
    no longer has; with `of`, only those made as replicas of a service in `of`."""
    return [name for name, current in actual.items()
            if name not in configured and (of is None or current.replica_of in of)]


def _order(name: str) -> tuple[str, int]:
    base, _, index = name.rpartition("-")
    return (base, int(index)) if index.isdigit() else (name, 0)
