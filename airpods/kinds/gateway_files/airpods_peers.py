"""airpods' peers, loaded by LiteLLM from beside its config.yaml (only when peers are configured).

Another machine's airpods gateway serves models too. Every PEERS_INTERVAL_S seconds (and once
right after start) this module lists each peer's models (GET {url}/v1/models with the peer's
key) and keeps one LiteLLM deployment per listed model, `model_info.id = peer:NAME:MODEL`: a
model served here and on a peer (or on two peers) is then one model name with several
deployments, balanced by `router_settings.routing_strategy`.

- A peer that does not answer keeps the deployments it had (a dead one is cooled down by the
  router within its first failed request: `allowed_fails = 0`), and a peer that was down at
  start is added on the first listing that succeeds.
- Every deployment of a model that has several gets `num_retries = 2` and `allowed_fails = 0`:
  a request that fails on one (connection refused, the peer's server gone) is retried at once
  on another, and the failed one is left out for COOLDOWN_S seconds.
- Calls to a peer carry `X-Airpods-Hop: 1`; a gateway receiving it never sends the request to
  one of its own peers (airpods_guard.py), so A -> B -> A is refused, not looped.
- What it saw is written to $AIRPODS_PEERS_STATE (in the usage directory, which `airpods status`
  reads on the host): each peer's reachability and models, each deployment's cooldown.

Checked against LiteLLM 1.106.12: Router.upsert_deployment / delete_deployment / get_deployment;
model_info.allowed_fails and model_info.cooldown_time are per-deployment cooldown settings
(router_utils/cooldown_handlers.py); litellm_params.num_retries is set on the failed call's
exception and used as its retries (router.py async_function_with_retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

HOP_HEADER = "X-Airpods-Hop"
PEERS_INTERVAL_S = float(os.environ.get("AIRPODS_PEERS_INTERVAL_S", "10"))
LIST_TIMEOUT_S = 2.0
COOLDOWN_S = 5.0
# A peer on the LAN completes a handshake in milliseconds; a powered-off one never answers, and
# LiteLLM's connect timeout is the whole request's: the guard bounds the connect to this.
CONNECT_S = 1.5
# A failed request is tried again at once on the model's other deployments: twice, because a
# deployment's cooldown is recorded after its failure is handled, and a retry racing it can
# pick the same dead deployment once more (seen with a peer answering 429).
RETRIES = 2
NO_KEY = "airpods-no-key"
SHARED = "airpods_shared"  # model_info mark: set to fail over while a peer serves it too
_task: asyncio.Task | None = None


def _peers() -> list[dict[str, Any]]:
    try:
        with open(os.environ.get("AIRPODS_PEERS_FILE", ""), encoding="utf-8") as f:
            loaded = json.load(f)
    except (OSError, ValueError):
        return []
    return [p for p in loaded if isinstance(p, dict)] if isinstance(loaded, list) else []


def _key(peer: dict[str, Any]) -> str:
    var = peer.get("key_env")
    return (os.environ.get(var, "").strip() if isinstance(var, str) else "") or NO_KEY


async def _list(client: Any, peer: dict[str, Any]) -> tuple[list[str] | None, str]:
    """The model ids the peer lists, or None and why not."""
    try:
        answer = await client.get(f"{peer['url']}/v1/models", headers={
            "Authorization": f"Bearer {_key(peer)}", HOP_HEADER: "1"})
    except Exception as exc:  # noqa: BLE001 - any failure is "unreachable", said in the state
        return None, f"{type(exc).__name__}: {exc}"[:200]
    if answer.status_code != 200:
        return None, f"HTTP {answer.status_code}"
    try:
        data = answer.json().get("data", [])
        return sorted({str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")}), ""
    except (ValueError, AttributeError, KeyError):
        return None, "its /v1/models answer is not an OpenAI model list"


def deployment(peer: dict[str, Any], model: str) -> dict[str, Any]:
    """The LiteLLM deployment of `model` on `peer` (also used by airpods' unit tests)."""
    return {
        "model_name": model,
        "litellm_params": {
            "model": f"openai/{model}", "api_base": f"{peer['url']}/v1", "api_key": _key(peer),
            "extra_headers": {HOP_HEADER: "1"}, "weight": int(peer.get("weight", 1)),
            "num_retries": RETRIES,
        },
        "model_info": {
            "id": f"peer:{peer['name']}:{model}", "airpods_backend": "peer",
            "airpods_peer": peer["name"], "airpods_private": False,
            "airpods_private_ok": bool(peer.get("private_ok")),
            "allowed_fails": 0, "cooldown_time": COOLDOWN_S, "airpods_connect_s": CONNECT_S,
            "input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
        },
    }


def _router() -> Any:
    from litellm.proxy.proxy_server import llm_router

    return llm_router


def _apply(router: Any, wanted: dict[str, dict[str, Any]], known: set[str]) -> None:
    """Deployments of peers as `wanted`; local ones of a shared model set to fail over."""
    from litellm.types.router import Deployment

    for gone in known - set(wanted):
        with contextlib.suppress(Exception):
            router.delete_deployment(id=gone)
    for entry in wanted.values():
        router.upsert_deployment(Deployment(**entry))
    shared = {e["model_name"] for e in wanted.values()}
    for entry in router.model_list:
        info, params = entry.get("model_info"), entry.get("litellm_params")
        if not (isinstance(info, dict) and isinstance(params, dict)) \
                or info.get("airpods_backend") == "peer":
            continue
        # In place, not upsert: the router keeps its own config as it was, only set to fail
        # over (the guard shuffles a tie among deployments: airpods_guard.py).
        if entry.get("model_name") in shared:
            info.setdefault(SHARED, {"weight": "weight" in params})
            # A deployment without a weight weighs 0 in simple-shuffle: 1, as a peer's default.
            params.setdefault("weight", 1)
            params["num_retries"] = RETRIES
            info.update(allowed_fails=0, cooldown_time=COOLDOWN_S)
        elif SHARED in info:  # no peer serves it any more: local first and fallbacks as before
            if not info.pop(SHARED)["weight"]:
                params.pop("weight", None)
            params.pop("num_retries", None)
            info.pop("allowed_fails", None)
            info.pop("cooldown_time", None)


def _write_state(router: Any, seen: dict[str, dict[str, Any]], ids: list[str]) -> None:
    path = os.environ.get("AIRPODS_PEERS_STATE", "")
    if not path:
        return
    cooling: set[str] = set()
    with contextlib.suppress(Exception):
        cooling = {i for i, _ in router.cooldown_cache.get_active_cooldowns(ids, None)}
    state = {"checked_at": round(time.time(), 3), "peers": seen,
             "deployments": {i: ("cooldown" if i in cooling else "up") for i in ids}}
    tmp = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(state, f)
        os.replace(tmp, path)


async def _poll_once(client: Any, router: Any, known: set[str],
                     have: dict[str, dict[str, Any]]) -> set[str]:
    peers = _peers()
    answers = await asyncio.gather(*(_list(client, p) for p in peers))
    seen: dict[str, dict[str, Any]] = {}
    for peer, (models, error) in zip(peers, answers, strict=True):
        seen[peer["name"]] = {"url": peer["url"], "reachable": models is not None,
                              "models": models if models is not None else
                              have.get(peer["name"], {}).get("models", []), "error": error}
        if models is not None:
            have[peer["name"]] = {"models": models}
    wanted = {}
    for peer in peers:
        for model in have.get(peer["name"], {}).get("models", []):
            entry = deployment(peer, model)
            wanted[entry["model_info"]["id"]] = entry
    _apply(router, wanted, known)
    _write_state(router, seen, sorted(wanted))
    return set(wanted)


async def _poll_forever() -> None:
    import httpx

    while _router() is None:  # the proxy builds its router after loading this module
        await asyncio.sleep(0.1)
    known: set[str] = set()
    have: dict[str, dict[str, Any]] = {}
    # LAN peers: no proxy from the environment; verified TLS for an https peer.
    async with httpx.AsyncClient(timeout=LIST_TIMEOUT_S, trust_env=False) as client:
        while True:
            try:
                known = await _poll_once(client, _router(), known, have)
            except Exception as exc:  # noqa: BLE001 - one bad round must not end the loop
                print(f"airpods peers: listing failed: {type(exc).__name__}: {exc}", flush=True)
            await asyncio.sleep(PEERS_INTERVAL_S)


class Peers(CustomLogger):
    """Starts the listing loop on the proxy's event loop (the module is imported while the proxy
    loads its config, inside that loop)."""

    def __init__(self) -> None:
        super().__init__()
        global _task
        with contextlib.suppress(RuntimeError):  # no running loop: imported by a test
            _task = asyncio.get_running_loop().create_task(_poll_forever())


peers = Peers()
