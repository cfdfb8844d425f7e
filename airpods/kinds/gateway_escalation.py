"""The gateway's `auto` model: routing by difficulty on LiteLLM's complexity router.

    [services.gateway.escalation]
    local = "tiny"          # SIMPLE and MEDIUM requests (a model a local server serves)
    frontier = "big-model"  # COMPLEX and REASONING requests (a remote's model)
    overflow = "big-model"  # prompts longer than the local context (optional)

Rendered as one more `model_list` entry whose `litellm_params.model` is
`auto_router/complexity_router` (checked against LiteLLM 1.106.12,
router_strategy/complexity_router/config.py): its `complexity_router_config.tiers` maps the four
tiers to the two models, `classifier_type: heuristic` (the rule-based scorer: local, no request
sent to decide), `context_compaction: false` (else LiteLLM may ask a tier's model to compact a
long history: a request sent to decide) and `max_tokens_from_tier_model: false` (the caller's
max_tokens is forwarded as sent). Boundaries and keyword lists pass through as written.

Fallbacks: LiteLLM looks a failed request's chain up under the tier's model first, then under
the router's name, so `fallbacks` of the local model apply as for a request that named it, and
`auto: [frontier]` catches the rest (local down: simple requests go to the frontier too).
`overflow` becomes `context_window_fallbacks` of the local model. The private lane (the guard,
gateway_files/airpods_guard.py) serves a private request to `auto` with the local model, never
classified; a private `local` makes every request to `auto` private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airpods.config.schema import ServiceConfig
    from airpods.kinds.base import ServedModel
    from airpods.kinds.gateway_schema import EscalationSpec

Path = tuple[str | int, ...]
ROUTER_MODEL = "auto_router/complexity_router"
BACKEND = "escalation"  # model_info.airpods_backend of the router's entry
# LiteLLM's own defaults (complexity_router/config.py DEFAULT_TIER_BOUNDARIES), so a partial
# table can be checked and always reaches LiteLLM whole.
DEFAULT_BOUNDARIES = {"simple_medium": 0.15, "medium_complex": 0.35, "complex_reasoning": 0.60}
LOCAL_TIERS = ("SIMPLE", "MEDIUM")
FRONTIER_TIERS = ("COMPLEX", "REASONING")
_PASSED = ("code_keywords", "reasoning_keywords", "technical_keywords", "simple_keywords")


def spec_of(svc: ServiceConfig) -> EscalationSpec | None:
    return getattr(svc, "escalation", None)


def boundaries(spec: EscalationSpec) -> dict[str, float]:
    given = spec.tier_boundaries.model_dump(exclude_none=True) if spec.tier_boundaries else {}
    return {**DEFAULT_BOUNDARIES, **given}


def router_config(spec: EscalationSpec) -> dict[str, Any]:
    """LiteLLM's complexity_router_config."""
    tiers = {**dict.fromkeys(LOCAL_TIERS, spec.local),
             **dict.fromkeys(FRONTIER_TIERS, spec.frontier)}
    # max_tokens_from_tier_model off: LiteLLM would replace the caller's max_tokens with the
    # tier model's output ceiling (when the cost map knows it); a gateway forwards it unchanged.
    config: dict[str, Any] = {"tiers": tiers, "classifier_type": "heuristic",
                              "default_model": spec.local, "context_compaction": False,
                              "max_tokens_from_tier_model": False,
                              "tier_boundaries": boundaries(spec)}
    for key in _PASSED:
        if (words := getattr(spec, key)) is not None:
            config[key] = list(words)
    if spec.keyword_tier_rules:
        config["keyword_tier_rules"] = [r.model_dump() for r in spec.keyword_tier_rules]
    return config


def private_local(spec: EscalationSpec, local: list[tuple[str, ServedModel]]) -> bool:
    return any(model.id == spec.local and model.private for _service, model in local)


def rule(spec: EscalationSpec, svc: ServiceConfig, private: bool) -> str:
    """The rule in one line, as `status` and `start --dry-run` show it."""
    if private:
        return (f"{spec.name}: every tier -> {spec.local} (local, private: never escalates)")
    remote = _remote_of(svc, spec.frontier)
    # LiteLLM looks the chain up under the tier's model first: the local model's own wins.
    down = (svc.fallbacks.get(spec.local) or [spec.frontier])[0]
    text = (f"{spec.name}: {'/'.join(LOCAL_TIERS)} -> {spec.local} (local), "
            f"{'/'.join(FRONTIER_TIERS)} -> {spec.frontier} (remote {remote}); "
            f"local down -> {down}")
    if spec.overflow:
        text += f"; prompt over the local context -> {spec.overflow}"
    return text


def _remote_of(svc: ServiceConfig, model: str) -> str:
    return next((name for name, r in svc.remotes.items() if model in r.models), "?")


def model_entry(svc: ServiceConfig, local: list[tuple[str, ServedModel]]) -> dict[str, Any] | None:
    spec = spec_of(svc)
    if spec is None:
        return None
    private = private_local(spec, local)
    params = {"model": ROUTER_MODEL, "complexity_router_config": router_config(spec)}
    return {"model_name": spec.name, "litellm_params": params,
            "model_info": {"id": f"{BACKEND}:{spec.name}", "airpods_backend": BACKEND,
                           "airpods_local": spec.local, "airpods_frontier": spec.frontier,
                           "airpods_private": private, "airpods_rule": rule(spec, svc, private)}}


def router_settings(svc: ServiceConfig, local: list[tuple[str, ServedModel]]) -> dict[str, Any]:
    """`fallbacks` entries and `context_window_fallbacks` the escalation adds ({} for none)."""
    spec = spec_of(svc)
    if spec is None or private_local(spec, local):
        return {}
    out: dict[str, Any] = {"fallbacks": [{spec.name: [spec.frontier]}]}
    if spec.overflow:
        out["context_window_fallbacks"] = [{spec.local: [spec.overflow]}]
    return out


def problems(service: str, svc: ServiceConfig,
             local: list[tuple[str, ServedModel]]) -> list[tuple[Path, str, str | None]]:
    """escalation.local must be served here, frontier/overflow by a remote, name unused."""
    spec = spec_of(svc)
    if spec is None:
        return []
    base: Path = ("services", service, "escalation")
    locals_ = {model.id: model for _service, model in local}
    remotes = {m: r for r, spec_ in svc.remotes.items() for m in spec_.models}
    local_hint = f"local models: {', '.join(locals_) or 'none'}"
    remote_hint = f"remote models: {', '.join(remotes) or 'none (add a [remotes.NAME] table)'}"
    out: list[tuple[Path, str, str | None]] = []
    if spec.local in remotes:
        out.append(((*base, "local"), f"{spec.local!r} is a model of remote "
                    f"{remotes[spec.local]!r}: `local` names a model a local server serves",
                    local_hint))
    elif spec.local not in locals_:
        out.append(((*base, "local"), f"unknown model {spec.local!r}", local_hint))
    for key in ("frontier", "overflow"):
        name = getattr(spec, key)
        if name is None or name in remotes:
            continue
        why = (f"{name!r} is a local model: `{key}` names a remote's model" if name in locals_
               else f"unknown model {name!r}")
        out.append(((*base, key), why, remote_hint))
    if spec.name in locals_ or spec.name in remotes:
        out.append(((*base, "name"), f"{spec.name!r} is already a gateway model's name",
                    "pick another name for the escalation model (default \"auto\")"))
    if spec.overflow and spec.local in locals_ and locals_[spec.local].private:
        out.append(((*base, "overflow"), f"model {spec.local!r} is private: it never overflows "
                    "to a remote", "remove `overflow`, or the model's `private = true`"))
    return out
