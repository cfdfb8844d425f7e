"""Where each model of a gateway goes now: `status`'s routes, from the rendered config.yaml.

One row per deployment (local servers, replicas, remotes, the escalation model; peers' rows come
from the gateway's state file, cli/gateway_routes.py) and, given which local services are ready,
where a request for it goes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airpods.spec import ContainerSpec


def route_table(spec: ContainerSpec) -> list[dict[str, Any]]:
    """[{model, backend, service or remote, private, fallbacks}] from a gateway's rendered config
    ([] for any other spec)."""
    from airpods.kinds import gateway_names as g

    text = next((f.value for f in spec.config_files if f.target == g.CONFIG_TARGET), None)
    if text is None:
        return []
    config = json.loads(text.split("\n", 1)[1])
    chains: dict[str, list[str]] = {}
    for entry in config.get("router_settings", {}).get("fallbacks", []):
        chains.update(entry)
    return [{
        "model": m["model_name"],
        "deployment": m["model_info"]["id"],
        "backend": m["model_info"]["airpods_backend"],
        "where": m["model_info"].get("airpods_service") or m["model_info"].get("airpods_remote")
        or m["model_info"].get("airpods_local"),
        "private": bool(m["model_info"].get("airpods_private")),
        # The escalation model falls back as its local model does, else to its own chain.
        "fallbacks": list(chains.get(m["model_info"].get("airpods_local", ""))
                          or chains.get(m["model_name"], [])),
        **({"rule": m["model_info"]["airpods_rule"]} if "airpods_rule" in m["model_info"] else {}),
    } for m in config.get("model_list", [])]


def routes_now(gateway: str, table: list[dict[str, Any]], ready: dict[str, bool]) -> list[dict]:
    """Each deployment of each model and where a request for it goes now, given which local
    services are ready.

    route: "local" (its server, or another replica of the model, is ready: `via` names it),
    "fallback" (local down: `via` the first fallback), "remote", or "unavailable" (local down
    and private, or no fallback). Remotes are not probed (status stays fast): a remote is taken
    to answer. The escalation model (backend "escalation", `where` its local model) is "local"
    while a server of that model is ready, and carries its one-line `rule`.
    """
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in table:
        by_model.setdefault(row["model"], []).append(row)

    def up(row: dict[str, Any]) -> bool:
        return row["backend"] == "remote" or ready.get(row["where"], False)

    out = []
    for row in table:
        route, via = "remote", row["where"]
        if row["backend"] in ("local", "escalation"):
            model = row["model"] if row["backend"] == "local" else row["where"]
            here = [row] + [r for r in by_model.get(model, []) if r is not row]
            serving = next((r for r in here if r["backend"] == "local" and up(r)), None)
            if serving is not None:
                route = "local"
                via = serving["where"] if row["backend"] == "local" else row["where"]
            else:
                route, via = "unavailable", None
                if not row["private"]:
                    target = next((f for f in row["fallbacks"]
                                   if any(up(r) for r in by_model.get(f, []))), None)
                    if target is not None:
                        route, via = "fallback", target
        if row["backend"] == "remote":
            state = "unprobed"
        elif row["backend"] == "escalation":
            state = "up" if route == "local" else "down"
        else:
            state = "up" if ready.get(row["where"], False) else "down"
        out.append({"gateway": gateway, "model": row["model"],
                    "deployment": row.get("deployment"), "backend": row["backend"],
                    "private": row["private"], "route": route, "via": via, "state": state,
                    "private_ok": row["backend"] in ("local", "escalation"),
                    **({"rule": row["rule"]} if "rule" in row else {})})
    return out
