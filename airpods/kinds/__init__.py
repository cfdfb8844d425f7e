"""Service kinds: everything special about a kind of service lives in its module here.

    from airpods import kinds
    kinds.get(spec.kind).defaults("fast")     # what a new instance gets unless its TOML says
    api = kinds.capable(spec.kind, kinds.HasApi)   # the kind, if it has that capability
    api.api_key(spec) if api else None        # the key clients must send
    serves = kinds.capable(spec.kind, kinds.ServesModels)
    serves.model_path(spec) if serves else None   # where its model file is

A kind is one module with a `Kind` subclass that also inherits the capabilities it uses
(airpods/kinds/capabilities.py), plus its line in `register(...)` below. The engine and the
CLI ask this registry; no other module compares kind names. Kind modules
are light (no HTTP client, no pydantic): the schema and the cache-hit path import them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airpods.kinds.base import (
    Backend,
    HostPath,
    Kind,
    Memory,
    ModelCheck,
    ServedModel,
    StatusContext,
    WiringError,
)
from airpods.kinds.capabilities import (
    AddsStatus,
    Defers,
    HasApi,
    JoinsBackends,
    OwnsKeys,
    Renders,
    RoutesModels,
    ServesModels,
)
from airpods.kinds.gateway import Gateway
from airpods.kinds.generic import Generic
from airpods.kinds.llama_server import LlamaServer
from airpods.kinds.ollama import Ollama
from airpods.kinds.open_webui import OpenWebUI
from airpods.kinds.registry import capable, get, names, register

DEFAULT_KIND = "generic"

register(Generic(), LlamaServer(), Ollama(), OpenWebUI(), Gateway())

# Each group of hooks a kind may implement (hooks on the base Kind: `defaults` alone).
CAPABILITIES = (ServesModels, HasApi, RoutesModels, AddsStatus, OwnsKeys, Renders, Defers,
                JoinsBackends)

__all__ = [
    "CAPABILITIES", "DEFAULT_KIND", "AddsStatus", "Backend", "Defers", "HasApi", "HostPath",
    "JoinsBackends", "Kind", "Memory", "ModelCheck", "OwnsKeys", "Renders", "RoutesModels",
    "ServedModel", "ServesModels", "StatusContext", "WiringError", "capable", "get", "names",
]


def looks_like_llama_server(svc: Mapping[str, Any]) -> bool:
    """A service table without `kind` that is a llama-server in all but name: a llama.cpp
    server image, or a .gguf model in its command_args or default_model.

    Such a table (the earlier README's second llama-server) would otherwise run as `generic`:
    no API key secret, no readiness on the model, and silently missing from Open WebUI's
    connections. It is refused instead of guessed (see airpods.config.loader), because a guess
    from an image name cannot see a custom image, and would be silent exactly there.
    """
    if "kind" in svc:
        return False
    images = [svc.get("image")]
    if isinstance(svc.get("images"), Mapping):
        images += list(svc["images"].values())
    if any(isinstance(i, str) and ("llama.cpp" in i or "llama-server" in i) for i in images):
        return True
    args = svc.get("command_args")
    models = [svc.get("default_model")]
    if isinstance(args, Mapping):
        models += [args.get("model"), args.get("m")]
    return any(isinstance(m, str) and ".gguf" in m for m in models)


def backend_lists() -> dict[str, list[JoinsBackends]]:
    """Template name of each backend list (`openai_backends`) -> the kinds that join it."""
    lists: dict[str, list[JoinsBackends]] = {}
    for kind in (get(n) for n in names()):
        if isinstance(kind, JoinsBackends):
            lists.setdefault(kind.backend_list, []).append(kind)
    return lists
