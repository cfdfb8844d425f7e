"""How replicas are named (`replicas = N` on a llama-server: airpods/config/replicas.py).

Service NAME is replica 1; replica i (2..N) is the service `NAME-i`. Plain functions over a
mapping of service name -> its validated config (anything with a `replicas` attribute), below
both the config package that makes the copies and the kinds that route to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def count(svc: Any) -> int:
    """How many servers the service asks for (1 for kinds without `replicas`)."""
    value = getattr(svc, "replicas", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def replica_name(service: str, index: int) -> str:
    return service if index == 1 else f"{service}-{index}"


def replica_of(services: Mapping[str, Any], name: str) -> str | None:
    """The service `name` is a copy of (it is replica 2..N of it), in an expanded configuration;
    None for any other service, replica 1 included."""
    base, _, index = name.rpartition("-")
    if not base or not index.isdigit() or base not in services or index != str(int(index)):
        return None
    return base if 2 <= int(index) <= count(services[base]) else None


def group(services: Mapping[str, Any], name: str) -> str:
    """The service whose `replicas` made `name` (`name` itself when it is no copy)."""
    return replica_of(services, name) or name
