"""`models search QUERY`: GGUF repositories on the hub, most downloaded first, each with the
largest quant that fits this machine (the budget `models recommend` uses).

What the hub said (repos, downloads, each repo's quants and sizes) is kept a day on disk, under
airpods' cache directory, keyed by endpoint, query and limit: a search costs 1 + N hub calls.
The fit is computed on every run (it depends on this host, not on the hub).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airpods.config.tiers import Budget
    from airpods.hub.client import Hub

CACHE_TTL_S = 24 * 3600
CACHE_FORMAT = 1


def cache_dir() -> Path:
    from airpods.paths import user_dir

    return user_dir("cache") / "hub-search"


def _key(endpoint: str, query: str, limit: int) -> str:
    return hashlib.sha256(f"{endpoint}\0{query}\0{limit}".encode()).hexdigest()[:32]


def _read(path: Path, now: float) -> list[dict[str, Any]] | None:
    try:
        if now - path.stat().st_mtime > CACHE_TTL_S:
            return None
        entry = json.loads(path.read_text())
        if entry.get("format") != CACHE_FORMAT or not isinstance(entry.get("hits"), list):
            return None
        return entry["hits"]
    except (OSError, ValueError, AttributeError):
        return None  # missing, old, corrupt: ask the hub again


def _write(path: Path, hits: list[dict[str, Any]]) -> None:
    """Atomically; a cache that cannot be written costs the next search a hub call only."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, "hits": hits}))
        os.replace(tmp, path)
    except OSError:
        pass


def _ask(hub: Hub, query: str, limit: int) -> list[dict[str, Any]]:
    from airpods.hub.refs import Ref, quant_sizes

    hits = []
    for repo, downloads in hub.search(query, limit):
        quants = quant_sizes(hub.sizes(Ref(repo)))
        hits.append({"repo": repo, "downloads": downloads,
                     "quants": {q: [path, size] for q, (path, size) in quants.items()}})
    return hits


def search(query: str, hub: Hub, room: Budget, *, limit: int = 10,
           directory: Path | None = None, now: float | None = None) -> dict[str, Any]:
    """The `models search --json` document (docs/json.md)."""
    from airpods.config.tiers import pick_fitting_quant

    now = time.time() if now is None else now
    path = (directory or cache_dir()) / f"{_key(hub.endpoint, query, limit)}.json"
    hits = _read(path, now)
    cached = hits is not None
    if hits is None:
        hits = _ask(hub, query, limit)
        _write(path, hits)
    out = []
    for hit in hits:
        quants = {q: (p, int(s)) for q, (p, s) in hit["quants"].items()}
        choice = pick_fitting_quant(hit["repo"], quants, room) if quants else None
        best = next((q for q, (p, _) in quants.items() if choice and p == choice.path), None)
        out.append({"repo": hit["repo"], "downloads": hit["downloads"], "quant": best,
                    "file": quants[best][0] if best else None,
                    "size_bytes": quants[best][1] if best else None,
                    "quants": sorted(quants)})
    return {"query": query, "cached": cached, "usable_bytes": room.usable_bytes, "hits": out}
