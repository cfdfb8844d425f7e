"""`status`'s "routes": each gateway model and where a request for it goes now.

Kept apart from airpods/cli/status_view.py (its rows and fast path are another module's concern):
this reads the rows status already has and probes only the local servers it lacks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airpods.resolved import Resolved


def gateway_routes(resolved: Resolved, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from airpods.kinds.gateway import usage_host_dir
    from airpods.kinds.gateway_peers import peer_routes
    from airpods.kinds.gateway_routes import route_table, routes_now

    shown = {row["name"] for row in rows}
    tables = {
        name: table for name, spec in resolved.specs.items()
        if (name in shown or resolved.services[name].enabled) and (table := route_table(spec))
    }
    if not tables:
        return []
    ready = {row["name"]: bool(row["healthy"]) for row in rows}
    missing = {r["where"] for t in tables.values() for r in t
               if r["backend"] == "local" and r["where"] not in ready}
    if missing:
        from airpods.engine.probes import probe_many

        probes = probe_many([resolved.specs[n] for n in missing if n in resolved.specs])
        ready |= {name: health == "ready" for name, (health, _detail) in probes.items()}
    out = []
    for name, table in tables.items():
        state_dir = usage_host_dir(name) if ready.get(name, False) else None
        peers = peer_routes(name, resolved.specs[name], state_dir)
        up = {r["model"]: r["via"] for r in peers if r["state"] == "up"}
        for route in routes_now(name, table, ready):
            if route["route"] == "unavailable" and route["model"] in up and not route["private"]:
                route |= {"route": "peer", "via": up[route["model"]]}  # another deployment
            out.append(route)
        out += peers
    return out
