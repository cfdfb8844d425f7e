"""Kind-specific validation, in the layer above the schema: the schema knows no kinds.

After the shared schema has validated a configuration, each service's kind checks what only it
understands: that the kind exists, that it offers the `mode` asked for, and its own keys.
"""

from __future__ import annotations

from functools import cache

from airpods.config.keys import Problem
from airpods.config.schema import AirpodsConfig, ServiceConfig, ServiceName


@cache
def config_model() -> type[AirpodsConfig]:
    """AirpodsConfig whose services also carry the keys the kinds add (`Kind.config_tables`,
    e.g. llama-server's `router` and `models`): what the loader validates with, so those keys
    get the shared schema's defaults, messages and key paths while the schema knows no kind."""
    from pydantic import Field, create_model

    from airpods import kinds

    tables: dict = {}
    for name in kinds.names():
        tables.update(kinds.get(name).config_tables())
    if not tables:
        return AirpodsConfig
    service = create_model("ServiceConfig", __base__=ServiceConfig, **tables)
    return create_model(  # type: ignore[call-overload, no-any-return]
        "AirpodsConfig", __base__=AirpodsConfig,
        services=(dict[ServiceName, service], Field(default_factory=dict)),  # type: ignore[valid-type]
    )


def kind_problems(cfg: AirpodsConfig) -> list[Problem]:
    """Unknown kinds, a `mode` a kind does not offer, and what a kind finds wrong in its keys."""
    from airpods import kinds

    problems: list[Problem] = []
    for name, svc in cfg.services.items():
        if svc.kind not in kinds.names():
            known = ", ".join(kinds.names())
            problems.append(Problem(
                ("services", name, "kind"), f"unknown kind {svc.kind!r}; known kinds: {known}"
            ))
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
            for path, message, hint in kind.config_problems(svc)
        )
    # What a kind can check only with every service in view (the gateway's model names).
    for name, svc in cfg.services.items():
        if svc.kind in kinds.names():
            problems.extend(Problem(path, message, hint) for path, message, hint
                            in kinds.get(svc.kind).config_problems_in(name, cfg))
    return problems
