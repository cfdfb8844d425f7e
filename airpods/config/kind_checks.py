"""Kind-specific validation, in the layer above the schema: the schema knows no kinds.

After the shared schema has validated a configuration, each service's kind checks what only it
understands: that the kind exists, that it offers the `mode` asked for, and its own keys.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from functools import cache
from typing import Any

from airpods.config.schema import AirpodsConfig, ServiceConfig, ServiceName
from airpods.keys import KeyPath, Problem


@cache
def config_model() -> type[AirpodsConfig]:
    """AirpodsConfig whose services also carry the keys the kinds add (`OwnsKeys.config_tables`,
    e.g. llama-server's `router` and `models`): what the loader validates with, so those keys
    get the shared schema's defaults, messages and key paths while the schema knows no kind."""
    from pydantic import Field, create_model

    from airpods import kinds

    tables: dict = {}
    for name in kinds.names():
        owns = kinds.capable(name, kinds.OwnsKeys)
        tables.update(owns.config_tables() if owns else {})
    if not tables:
        return AirpodsConfig
    service = create_model("ServiceConfig", __base__=ServiceConfig, **tables)
    return create_model(  # type: ignore[call-overload, no-any-return]
        "AirpodsConfig", __base__=AirpodsConfig,
        services=(dict[ServiceName, service], Field(default_factory=dict)),  # type: ignore[valid-type]
    )


@cache
def key_owners() -> dict[str, tuple[str, ...]]:
    """Each key a kind adds (`OwnsKeys.config_tables`) -> the kinds that add it."""
    from airpods import kinds

    owners: dict[str, tuple[str, ...]] = {}
    for name in kinds.names():
        owns = kinds.capable(name, kinds.OwnsKeys)
        for key in owns.config_tables() if owns else {}:
            owners[key] = (*owners.get(key, ()), name)
    return owners


def raw_kind(table: object) -> str:
    """The kind of a service's table before validation (the default kind when it names none)."""
    from airpods import kinds

    kind = table.get("kind", kinds.DEFAULT_KIND) if isinstance(table, Mapping) else None
    return kind if isinstance(kind, str) else kinds.DEFAULT_KIND


def other_kinds_keys(raw: Mapping[str, Any]) -> Callable[[KeyPath], Collection[str]]:
    """For unknown-key messages: at a service's table, the keys only other kinds take (so
    a llama-server's "known keys" do not offer the gateway's `remotes`)."""
    owners = key_owners()

    def not_here(loc: KeyPath) -> Collection[str]:
        services = raw.get("services")
        if len(loc) != 2 or loc[0] != "services" or not isinstance(services, Mapping):
            return ()
        kind = raw_kind(services.get(loc[1]))
        return {key for key, kinds in owners.items() if kind not in kinds}

    return not_here


def foreign_keys(
    name: str, svc: ServiceConfig, owners: dict[str, tuple[str, ...]]
) -> list[Problem]:
    """A kind's own key set on another kind's service does nothing there: said, not ignored
    (`private = true` on an Open WebUI service, a gateway's `remotes` on a llama-server)."""
    return [
        Problem(("services", name, key),
                f"`{key}` is a key of {' and '.join(owners[key])} services; this one is kind "
                f"{svc.kind!r}", "remove it: it does nothing here")
        for key in sorted(svc.model_fields_set & owners.keys())
        if svc.kind not in owners[key]
    ]


def kind_problems(cfg: AirpodsConfig) -> list[Problem]:
    """Unknown kinds, a `mode` a kind does not offer, another kind's keys, and what a kind
    finds wrong in its own keys."""
    from airpods import kinds

    problems: list[Problem] = []
    owners = key_owners()
    for name, svc in cfg.services.items():
        if svc.kind not in kinds.names():
            known = ", ".join(kinds.names())
            problems.append(Problem(
                ("services", name, "kind"), f"unknown kind {svc.kind!r}; known kinds: {known}"
            ))
            continue
        foreign = foreign_keys(name, svc, owners)
        if foreign:
            problems.extend(foreign)
            continue
        kind = kinds.get(svc.kind)
        if svc.mode not in kind.modes:
            offered = [k for k in kinds.names() if svc.mode in kinds.get(k).modes]
            problems.append(Problem(
                ("services", name, "mode"),
                f"kind {svc.kind!r} has no {svc.mode!r} mode",
                f"kinds with it: {', '.join(offered)}" if offered else None,
            ))
            continue
        problems.extend(
            Problem(("services", name, *path), message, hint)
            for path, message, hint in (kind.config_problems(svc)
                                        if isinstance(kind, kinds.OwnsKeys) else [])
        )
    # What a kind can check only with every service in view (the gateway's model names).
    for name, svc in cfg.services.items():
        owns = kinds.capable(svc.kind, kinds.OwnsKeys) if svc.kind in kinds.names() else None
        if owns is not None:
            problems.extend(Problem(path, message, hint) for path, message, hint
                            in owns.config_problems_in(name, cfg))
    return problems


def missing_keys(raw: Mapping[str, Any]) -> list[Problem]:
    """Keys a service's kind needs it to set (OwnsKeys.missing_keys), blamed on its table."""
    from airpods import kinds

    services = raw.get("services")
    found = []
    for name, svc in services.items() if isinstance(services, dict) else ():
        kind = svc.get("kind", kinds.DEFAULT_KIND) if isinstance(svc, dict) else None
        owns = kinds.capable(kind, kinds.OwnsKeys) if kind in kinds.names() else None
        if owns is not None:
            found += [Problem(("services", name), f"needs {key} ({what})", hint)
                      for key, what, hint in owns.missing_keys(svc)]
    return found
