"""The kinds by name. Filled by airpods/kinds/__init__.py, which every import of this module runs
first; a kind module that needs another service's kind (the gateway, Open WebUI's wiring) asks
here, so no kind module imports the package that imports it."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from airpods.kinds.base import Kind

_REGISTRY: dict[str, Kind] = {}
C = TypeVar("C")


def register(*kinds: Kind) -> None:
    _REGISTRY.update((kind.name, kind) for kind in kinds)


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get(name: str) -> Kind:
    """The kind called `name`; validation has already refused unknown names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown kind {name!r}; known kinds: {', '.join(_REGISTRY)}") from None


def capable(name: str, capability: type[C]) -> C | None:
    """The kind called `name` when it has `capability` (kinds/capabilities.py), else None."""
    kind = get(name)
    return kind if isinstance(kind, capability) else None
