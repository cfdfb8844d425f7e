"""The services as commands use them: the configuration resolved into ContainerSpecs.

    resolved = resolving.resolve(config_path, environ=os.environ, secrets=SecretStore())
    names = select_services(resolved, ("llamacpp",))
    specs = [resolved.specs[n] for n in names]

This module holds the data and selects and orders services; `airpods.resolving` computes it
(through the on-disk shortcut `airpods.cache`, which lets `status` and an idempotent `start`
skip loading the configuration).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airpods.host import HostFacts
from airpods.record import record
from airpods.serial import from_plain, to_plain
from airpods.spec import ContainerSpec


@record
class Settings:
    """The global settings commands need."""

    network: str
    stop_timeout_s: float
    max_concurrent_pulls: int
    failure_log_lines: int


@record
class ServiceEntry:
    """What commands need to know about a service besides its ContainerSpec."""

    name: str
    enabled: bool
    kind: str
    pod: str
    container: str
    depends_on: tuple[str, ...] = ()
    volumes: tuple[tuple[str, bool], ...] = ()  # (source, is_bind), in config order
    replica_of: str = ""  # a copy made by `replicas = N` on this service (airpods.replica_names)


@record
class Resolved:
    """The configuration in effect, resolved: every service's ContainerSpec, rendered."""

    settings: Settings
    services: dict[str, ServiceEntry]  # config order
    specs: dict[str, ContainerSpec]  # every service, enabled or not
    host: HostFacts
    user_path: Path  # the user file in effect (it may not exist)

    def enabled_services(self) -> list[str]:
        return [name for name, svc in self.services.items() if svc.enabled]


# --- choosing services ------------------------------------------------------------------------


def select_services(resolved: Resolved, names: Sequence[str]) -> list[str]:
    """The services to act on, in dependency order: the named ones, or all enabled ones."""
    from airpods.errors import UsageError

    unknown = [n for n in names if n not in resolved.services]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], list(resolved.services), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see `airpods config show`"
        raise UsageError(f"unknown service {unknown[0]!r}", hint=hint)
    chosen = with_replicas(resolved, names) if names else resolved.enabled_services()
    return order_by_dependencies(resolved, chosen)


def with_replicas(resolved: Resolved, names: Sequence[str]) -> list[str]:
    """`names`, each followed by the replicas `replicas = N` made of it (`stop llamacpp` stops
    every server of the model; `stop llamacpp-2` only that one)."""
    out: list[str] = []
    for name in names:
        copies = [n for n, svc in resolved.services.items() if svc.replica_of == name]
        out += [n for n in (name, *copies) if n not in out]
    return out


def order_by_dependencies(resolved: Resolved, chosen: Sequence[str]) -> list[str]:
    """Topological order of `chosen`; dependencies outside `chosen` only order, never add."""
    services = resolved.services
    picked = set(chosen)
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in services[name].depends_on:
            if dep in services:
                visit(dep)
        if name in picked:
            ordered.append(name)

    for name in chosen:
        visit(name)
    return ordered


# --- as plain JSON values (the cache's entries) ---------------------------------------------


def to_dict(resolved: Resolved) -> dict[str, Any]:
    """Plain JSON values; the order of `services` and `specs` is kept as a list."""
    return {
        "settings": to_plain(resolved.settings),
        "services": [to_plain(svc) for svc in resolved.services.values()],
        "specs": [to_plain(spec) for spec in resolved.specs.values()],
        "host": to_plain(resolved.host),
        "user_path": str(resolved.user_path),
    }


def from_dict(data: Mapping[str, Any]) -> Resolved:
    services = [from_plain(ServiceEntry, item) for item in data["services"]]
    specs = [from_plain(ContainerSpec, item) for item in data["specs"]]
    return Resolved(
        settings=from_plain(Settings, data["settings"]),
        services={svc.name: svc for svc in services},
        specs={spec.service: spec for spec in specs},
        host=from_plain(HostFacts, data["host"]),
        user_path=Path(data["user_path"]),
    )
