"""Service kinds: everything special about a kind of service lives in its module here.

    from airpods import kinds
    kind = kinds.get(spec.kind)
    kind.defaults("fast")          # what a new instance gets unless its TOML says otherwise
    kind.ready_check(spec)         # an extra readiness check (llama-server: model listed)
    kind.model_path(spec)          # where its argv says the model file is
    kind.api_key(spec)             # the key clients must send

The engine and the CLI ask this registry; no other module compares kind names. Kind modules
are light (no HTTP client, no pydantic): the schema and the cache-hit path import them.
"""

from __future__ import annotations

from airpods.kinds.base import Backend, HostPath, Kind, Memory, ModelCheck, WiringError
from airpods.kinds.generic import Generic
from airpods.kinds.llama_server import LlamaServer
from airpods.kinds.ollama import Ollama
from airpods.kinds.open_webui import OpenWebUI

DEFAULT_KIND = "generic"

_REGISTRY: dict[str, Kind] = {
    kind.name: kind for kind in (Generic(), LlamaServer(), Ollama(), OpenWebUI())
}

__all__ = [
    "DEFAULT_KIND", "Backend", "HostPath", "Kind", "Memory", "ModelCheck", "WiringError", "get",
    "names",
]


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get(name: str) -> Kind:
    """The kind called `name`; validation has already refused unknown names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown kind {name!r}; known kinds: {', '.join(_REGISTRY)}") from None


def backend_lists() -> dict[str, list[Kind]]:
    """Template name of each backend list (`openai_backends`) -> the kinds that join it."""
    lists: dict[str, list[Kind]] = {}
    for kind in _REGISTRY.values():
        if kind.backend_list:
            lists.setdefault(kind.backend_list, []).append(kind)
    return lists
