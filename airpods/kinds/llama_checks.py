"""llama-server's own config checks, both modes: numbers it would misbehave on, and what router
mode's preset INI cannot hold (airpods/kinds/llama_router.py renders it). Pure: no files, no
Podman; the schema calls them through `OwnsKeys.config_problems`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airpods.kinds.argv import ALIAS_FLAGS, CTX_FLAGS, MODEL_FLAGS
from airpods.kinds.llama_router import ROUTER_FLAGS

if TYPE_CHECKING:
    from airpods.config.schema import ServiceConfig

Path = tuple[str | int, ...]

# What a model's preset may not set: the router sets them for every child (model from `file`,
# the alias from the id, host/port/key are the router's own, and a key in the INI would leak).
PRESET_FORBIDDEN = frozenset({*MODEL_FLAGS, *ALIAS_FLAGS, "--host", "--port", "--api-key",
                              "--api-key-file"})
MAX_CTX = 1 << 28  # the largest plausible context (gguf_meta.LIMITS); real models: up to 10M


def ini_value_problem(value: Any) -> str | None:
    """Why `value` cannot be written as one INI value, or None."""
    if isinstance(value, list):
        return "a list cannot go into the preset INI (one value per key); give one value"
    text = str(value)
    if "\n" in text or "\r" in text:
        return "a value in the preset INI cannot span lines"
    if text != text.strip():
        return "a value in the preset INI cannot start or end with spaces"
    if any(f"{ws}{ch}" in text for ws in " \t" for ch in "#;"):
        return "' #' or ' ;' would start a comment in the preset INI"
    return None


def unused_router_tables(
    svc: ServiceConfig,
) -> list[tuple[Path, str, str | None]]:
    """`router` and `models` tables do nothing unless `mode = "router"` (the caller's case):
    said, not ignored."""
    problems: list[tuple[Path, str, str | None]] = []
    hint = 'set mode = "router", or remove the table'
    if "router" in svc.model_fields_set:
        problems.append((("router",), 'a [router] table only applies with mode = "router"', hint))
    if svc.models:
        problems.append((("models",), 'model presets only apply with mode = "router"', hint))
    return problems


def config_problems(svc: ServiceConfig) -> list[tuple[Path, str, str | None]]:
    """What the service's mode cannot use: (key path in the service, message, hint)."""
    tables: list[tuple[Path, Mapping[str, Any]]] = [(("command_args",), svc.command_args)]
    if svc.mode != "router":
        return [*unused_router_tables(svc), *value_problems(tables)]
    tables += [(("models", mid, "command_args"), m.command_args) for mid, m in svc.models.items()]
    # The fit check and the gateway count a replica as one model's servers, not a router's.
    many = [(("replicas",), "replicas apply to a single-model server, not a router",
             'remove replicas, or use mode = "single"')] if getattr(svc, "replicas", 1) > 1 else []
    return [*many, *value_problems(tables), *_ini_problems(tables), *_preset_problems(svc)]


Problems = list[tuple[Path, str, str | None]]


def value_problems(tables: list[tuple[Path, Mapping[str, Any]]]) -> Problems:
    """Numbers llama-server would take and misbehave on: ctx_size <= 0 or beyond any model,
    and nan or inf anywhere (`temp = nan` samples garbage)."""
    from airpods.argv import flag_name

    problems: list[tuple[Path, str, str | None]] = []
    for path, args in tables:
        for key, value in args.items():
            if _not_finite(value):
                problems.append(((*path, key), f"{value} is not a number llama-server can use",
                                 "give a finite number"))
            elif flag_name(key) in CTX_FLAGS:
                ctx = _as_int(value)
                if ctx is not None and not 0 < ctx <= MAX_CTX:
                    problems.append(((*path, key), f"ctx_size {ctx} is not a context size (1 to "
                                     f"{MAX_CTX})", "leave ctx_size out for the default"))
    return problems


def _not_finite(value: Any) -> bool:
    """nan or inf, as a TOML float or as text llama-server would parse (`temp = "nan"`)."""
    import math

    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        try:
            return not math.isfinite(float(value))
        except ValueError:
            return False
    return False


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value) if isinstance(value, (int, str)) else None
    except ValueError:
        return None


def _ini_problems(tables: list[tuple[Path, Mapping[str, Any]]]) -> Problems:
    from airpods.argv import flag_name

    problems: list[tuple[Path, str, str | None]] = []
    for path, args in tables:
        for key, value in args.items():
            flag = flag_name(key)
            if path == ("command_args",) and flag in ROUTER_FLAGS:
                continue  # on the router's own argv, where lists are fine
            if path != ("command_args",) and flag in PRESET_FORBIDDEN:
                problems.append(((*path, key), f"a model's preset cannot set {key}: the router "
                                 "sets it for every model", _forbidden_hint(flag)))
                continue
            problem = ini_value_problem(value)
            if problem:
                problems.append(((*path, key), problem, None))
    return problems


def _forbidden_hint(flag: str) -> str:
    if flag in MODEL_FLAGS:
        return "name the model's file with `file = ...`"
    if flag in ALIAS_FLAGS:
        return "the model's id (its [models.ID] table name) is its name"
    return "set it in the service's own command_args"


def _preset_problems(svc: ServiceConfig) -> list[tuple[Path, str, str | None]]:
    problems: list[tuple[Path, str, str | None]] = []
    seen: dict[str, str] = {}
    for model_id in svc.models:
        other = seen.setdefault(model_id.lower(), model_id)
        if other != model_id:
            problems.append((("models", model_id), f"model ids {other!r} and {model_id!r} "
                             "differ only by case",
                             "clients and file systems may mix them up: rename one"))
    preload = svc.router.preload
    if svc.models:
        known = list(svc.models)
        for i, model_id in enumerate(preload):
            if model_id not in known:
                problems.append(((("router", "preload", i)), f"unknown model {model_id!r}",
                                 f"models with a [models.ID] table: {', '.join(known)}"))
    limit = svc.router.models_max
    if isinstance(limit, int) and len(preload) > limit:
        problems.append((("router", "preload"),
                         f"{len(preload)} models to preload but models_max = {limit}",
                         "preload at most models_max models, or raise models_max"))
    return problems
