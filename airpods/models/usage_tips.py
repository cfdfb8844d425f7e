"""`airpods usage`'s tips: at most three things to act on, computed from the usage records.

- `stay_local`: requests a remote answered that the `auto` model classified simple or medium
  (records carry `tier` only where escalation is configured; without it, nothing is said):
  those would have stayed local, and what they cost.
- `no_price`: a remote with no price set answered requests: their cost shows as unknown.
- `larger_tier`: a local model of the catalogue (config/models.toml) answered requests, and a
  larger tier fits this machine and is fast enough here (the rule `model_source = "auto"`
  uses; `models recommend` lists them). Silent when none does: never a tier that does not fit.

Pure: the larger tier comes from a function the caller gives (it needs the host's memory).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airpods.models.gateway_usage import Record

MAX_TIPS = 3
LOCAL_TIERS = ("simple", "medium")  # what `auto` sends to the local model
# model name -> (tier name, repo:quant) of a larger catalogue tier that fits, or None
LargerTier = Callable[[str], "tuple[str, str] | None"]


def tips(records: Iterable[Record], larger_tier: LargerTier | None = None) -> list[dict[str, Any]]:
    """[{"kind", "text", "subject", "requests"}], the costliest first, at most MAX_TIPS."""
    records = list(records)
    found = [*_stay_local(records), *_no_price(records)]
    if larger_tier is not None and len(found) < MAX_TIPS:
        found += _larger_tier(records, larger_tier)
    return found[:MAX_TIPS]


def _money(cost: float) -> str:
    return f"${cost:,.4f}" if cost < 1 else f"${cost:,.2f}"


def _stay_local(records: list[Record]) -> list[dict[str, Any]]:
    by_remote: dict[str, list[Record]] = defaultdict(list)
    for rec in records:
        if rec.ok and rec.backend == "remote" and (rec.tier or "").lower() in LOCAL_TIERS:
            by_remote[rec.remote or "-"].append(rec)
    out = []
    for remote, recs in sorted(by_remote.items(), key=lambda kv: -sum(r.cost for r in kv[1])):
        cost = sum(r.cost for r in recs)
        unknown = any(r.cost_unknown for r in recs)
        saved = ("they would have stayed local (their cost is unknown: no price set)"
                 if unknown and not cost else
                 f"about {_money(cost)}{' and more' if unknown else ''} would have stayed local")
        out.append({"kind": "stay_local", "subject": remote, "requests": len(recs),
                    "text": f"{len(recs)} request{'s' * (len(recs) > 1)} to remote {remote} "
                            f"{'were' if len(recs) > 1 else 'was'} classified simple or "
                            f"medium: {saved}"})
    return out


def _no_price(records: list[Record]) -> list[dict[str, Any]]:
    counts: dict[str, int] = defaultdict(int)
    for rec in records:
        if rec.cost_unknown:
            counts[rec.remote or "-"] += 1
    return [{"kind": "no_price", "subject": remote, "requests": n,
             "text": f"remote {remote} has no price set: its cost shows as unknown ({n} "
                     f"request{'s' * (n > 1)}; set price_in and price_out in "
                     f"[services.gateway.remotes.{remote}])"}
            for remote, n in sorted(counts.items(), key=lambda kv: -kv[1])]


def _larger_tier(records: list[Record], larger: LargerTier) -> list[dict[str, Any]]:
    seconds: dict[str, list[float]] = defaultdict(list)
    for rec in records:
        if rec.local_answer and rec.model and rec.latency_ms is not None:
            seconds[rec.model].append(rec.latency_ms / 1000)
    out = []
    for model, took in sorted(seconds.items(), key=lambda kv: -len(kv[1])):
        bigger = larger(model)
        if bigger is None:
            continue
        tier, ref = bigger
        n = len(took)
        out.append({"kind": "larger_tier", "subject": model, "requests": n,
                    "text": f"local model {model} answered {n} request{'s' * (n > 1)} in p50 "
                            f"{statistics.median(took):.2f} s: a larger tier fits this machine "
                            f"({tier}, {ref}; `airpods models recommend`)"})
    return out


def catalogue_larger_tier(get_host: Callable[[], Any]) -> LargerTier:
    """For a model named after a catalogue tier's file: the largest tier above it that fits
    the host at llama-server's default context and is fast enough there, licence permitting
    (as `auto` chooses); None otherwise. The host is asked for only when a model is a tier's."""
    from airpods.config import tiers as tiermod
    from airpods.errors import AirpodsError
    from airpods.fit import LLAMA_DEFAULT_CTX

    try:
        catalogue = tiermod.load_catalogue()
    except AirpodsError:
        return lambda model: None
    fits: list[Any] = []

    def larger(model: str) -> tuple[str, str] | None:
        tier = tiermod.tier_for_file(model if model.endswith(".gguf") else f"{model}.gguf",
                                     catalogue)
        if tier is None:
            return None
        if not fits:
            fits.append([f for f in tiermod.fitting(get_host(), LLAMA_DEFAULT_CTX, catalogue)
                         if f.fast_enough and f.tier.commercial_use is not False])
        need = tier.estimate(LLAMA_DEFAULT_CTX)
        above = [f for f in fits[0] if f.estimate_bytes > need]
        return (above[-1].tier.name, f"{above[-1].tier.repo}:{above[-1].tier.quant}") \
            if above else None

    return larger
