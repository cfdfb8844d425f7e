"""airpods' guard, loaded by LiteLLM from beside its config.yaml (airpods ships and mounts it).

- `user_api_key_auth` (general_settings.custom_auth): a request must carry the master key or a
  named client key (sha256 of each in the file $AIRPODS_GATEWAY_CLIENTS); anything else is 401.
  The client's name is the key's alias, so usage records can name the client.
- `guard` (litellm_settings.callbacks): the private lane. A request is private when it carries
  `X-Airpods-Private: 1` (any value but 0/false/no/off, in any of its copies) or names a model
  marked private (model_info.airpods_private). A private
  request is served by a local deployment or refused with 503: fallbacks are switched off for it,
  remote deployments are filtered out of every routing decision (so a fallback chain configured
  by mistake cannot reach one), and a local failure becomes a clear 503 on every endpoint
  (a connection error, or the deployment's cooldown, which LiteLLM reports as 429).
- A deployment whose model_info has `airpods_connect_s` (local servers) is dialled with that
  connect timeout; the rest of the request keeps its own timeout. LiteLLM's default connect
  timeout is the whole request's, and a stopped server's old address never answers.
- A request that sets `api_base`, `base_url` or `user_config` (fields that would pick the
  backend) is a 400 naming the field.
- The escalation model (model_info.airpods_backend "escalation", LiteLLM's complexity router):
  a private request to it is rewritten to its local model before routing (never classified;
  its tier is recorded as "private"); a private request whose prompt is longer than the local
  context gets a 413 saying so, never the overflow remote. `x-airpods-tier` (the request's tier)
  and `x-airpods-backend` (local or remote) are added to each answer
  (async_post_call_response_headers_hook); the tier is copied into airpods' own metadata key
  when deployments are filtered, since LiteLLM clears its routing decision when a fallback
  routes again.
- Peers (airpods_peers.py): a private request may go to a peer deployment only when that peer is
  marked `private_ok`, and then carries `X-Airpods-Private: 1` so the peer keeps it private too.
  A request that arrives with `X-Airpods-Hop` came from a peer gateway: it is never sent on to
  one of this gateway's peers (A -> B -> A), and with nothing else to serve it, it is a 508.

Checked against LiteLLM 1.106.12: custom_auth(request, api_key) with the Bearer prefix removed;
CustomLogger.async_pre_call_hook / async_filter_deployments(request_kwargs=...) /
async_post_call_failure_hook (a returned HTTPException replaces the error);
async_pre_call_deployment_hook(kwargs, call_type) runs after the router picked a deployment (its
model_info in kwargs["metadata"] / ["litellm_metadata"], its timeout in kwargs["timeout"]) and
an httpx.Timeout there reaches the OpenAI client and aiohttp's sock_connect; a request's
`disable_fallbacks: true` turns its fallbacks off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
from typing import Any

import httpx
from fastapi import HTTPException, Request
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import UserAPIKeyAuth

# Request fields that would pick the backend (LiteLLM refuses them before auth, with a
# ValueError its handler turns into a bare 500): a 400 that names the field instead.
BANNED_FIELDS = ("api_base", "base_url", "user_config")
_REJECTED = re.compile(r"Rejected Request: (\w+) is not allowed in request body")
PRIVATE_HEADER = "x-airpods-private"
PRIVATE_FLAG = "airpods_private"
HOP_HEADER = "x-airpods-hop"
HOP_FLAG = "airpods_hop"
# Fail closed: the header with any other value (a typo, "2", empty) asks for the private lane.
_NOT_PRIVATE = ("0", "false", "no", "off")
# The escalation model (gateway_escalation.py): its model_info, and the tier it records.
ESCALATION = "escalation"
TIER_FLAG = "airpods_tier"
ASKED_FLAG = "airpods_asked"
PRIVATE_TIER = "private"  # a private request to the escalation model: never classified
TIER_HEADER = "x-airpods-tier"
BACKEND_HEADER = "x-airpods-backend"
LITELLM_TIER_HEADER = "x-litellm-complexity-router-tier"
# llama-server's answer to a prompt longer than its context, as LiteLLM maps it
# (litellm_core_utils/exception_mapping_utils.py).
OVERFLOW_TEXTS = ("exceeds the available context size", "ContextWindowExceededError")
_keys: dict[str, str] | None = None


def _accepted_keys() -> dict[str, str]:
    """sha256 -> client name; read once (a change of keys recreates the container)."""
    global _keys
    if _keys is None:
        path = os.environ.get("AIRPODS_GATEWAY_CLIENTS", "")
        try:
            with open(path, encoding="utf-8") as f:
                loaded = json.load(f)
        except (OSError, ValueError):
            loaded = {}  # no keys file: nobody gets in
        _keys = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
    return _keys


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    digest = hashlib.sha256((api_key or "").encode()).hexdigest()
    name = _accepted_keys().get(digest) if api_key else None
    if name is None:
        raise HTTPException(
            status_code=401,
            detail="airpods gateway: missing or unknown key (send Authorization: Bearer <key>)",
        )
    private = any(value.strip().lower() not in _NOT_PRIVATE
                  for value in request.headers.getlist(PRIVATE_HEADER))
    hop = bool(request.headers.getlist(HOP_HEADER))
    return UserAPIKeyAuth(api_key=digest, key_alias=name, key_name=name,
                          metadata={PRIVATE_FLAG: private, HOP_FLAG: hop})


def _deployments(model: Any) -> list[dict[str, Any]]:
    from litellm.proxy.proxy_server import llm_router

    if llm_router is None or not isinstance(model, str):
        return []
    return [d for d in llm_router.model_list if d.get("model_name") == model]


def _info(deployment: dict[str, Any]) -> dict[str, Any]:
    info = deployment.get("model_info")
    return info if isinstance(info, dict) else {}


def _is_local(deployment: dict[str, Any]) -> bool:
    return _info(deployment).get("airpods_backend") == "local"


def _is_peer(deployment: dict[str, Any]) -> bool:
    return _info(deployment).get("airpods_backend") == "peer"


def _private_ok(deployment: dict[str, Any]) -> bool:
    """Where a private request may go: a local server, or a peer marked `private_ok`."""
    return _is_local(deployment) or (_is_peer(deployment)
                                     and _info(deployment).get("airpods_private_ok") is True)


def _metadata(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not isinstance(data, dict):
        return []
    return [m for key in ("metadata", "litellm_metadata")
            if isinstance(m := data.get(key), dict)]


def _marked(flag: str, data: dict[str, Any] | None, auth: UserAPIKeyAuth | None = None) -> bool:
    if auth is not None and isinstance(auth.metadata, dict) and auth.metadata.get(flag):
        return True
    for meta in _metadata(data):
        if meta.get(flag) is True:
            return True
        key_meta = meta.get("user_api_key_metadata")
        if isinstance(key_meta, dict) and key_meta.get(flag) is True:
            return True
    return False


def with_connect_timeout(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """kwargs with the deployment's connect timeout (model_info.airpods_connect_s), or None."""
    connect = next((info.get("airpods_connect_s") for meta in _metadata(kwargs)
                    if isinstance(info := meta.get("model_info"), dict)
                    and info.get("airpods_connect_s")), None)
    total = kwargs.get("timeout")
    if not isinstance(connect, int | float) or isinstance(total, httpx.Timeout):
        return None
    total = float(total) if isinstance(total, int | float | str) and total else 600.0
    return {**kwargs, "timeout": httpx.Timeout(total, connect=min(float(connect), total))}


def _marked_private(data: dict[str, Any] | None, auth: UserAPIKeyAuth | None = None) -> bool:
    return _marked(PRIVATE_FLAG, data, auth)


def _not_allowed(field: str) -> HTTPException:
    return HTTPException(
        status_code=400,
        detail=f"airpods gateway: the request field {field!r} is not allowed (the gateway "
        "picks each model's server; remove it from the request)",
    )


def _private_unavailable(model: Any, exc: Exception) -> str:
    return (f"airpods gateway: the local server for private model {model!r} cannot answer now "
            f"({type(exc).__name__}); private requests are never sent to a remote")


def _stamp(data: dict[str, Any], **values: Any) -> None:
    """Set airpods' own keys in every metadata bucket of the request (made if none)."""
    for meta in _metadata(data) or [data.setdefault("metadata", {})]:
        meta.update(values)


def _escalation(found: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((_info(d) for d in found if _info(d).get("airpods_backend") == ESCALATION), None)


def _drop_savings_baseline(data: dict[str, Any]) -> None:
    """LiteLLM prices every `auto` answer again against its priciest tier (its savings
    dashboard, kept in a database airpods does not run): deep copies of model info on the
    event loop that serves the next request. airpods' usage records carry the tier and the
    cost; without a baseline LiteLLM skips that work."""
    for meta in _metadata(data):
        decision = meta.get("routing_decision")
        if isinstance(decision, dict):
            decision.pop("savings_baseline_model", None)
            decision.pop("savings_baseline_deployment_id", None)
        meta.pop("_autorouter_baseline_route", None)


def _tier(data: Any) -> str | None:
    """The tier of a request: airpods' own stamp, else LiteLLM's complexity-router decision."""
    for meta in _metadata(data):
        if isinstance(meta.get(TIER_FLAG), str):
            return meta[TIER_FLAG]
        decision = meta.get("routing_decision")
        if isinstance(decision, dict) and isinstance(decision.get("tier"), str):
            return decision["tier"]
    return None


def _too_long(exc: Exception) -> bool:
    return type(exc).__name__ == "ContextWindowExceededError" or any(
        text in str(exc) for text in OVERFLOW_TEXTS)


def _private_too_long(model: Any) -> str:
    return (f"airpods gateway: the prompt is longer than the local context of private model "
            f"{model!r}; private requests never escalate to a remote: shorten the prompt or "
            "raise the local server's ctx_size")


class Guard(CustomLogger):
    async def async_pre_call_hook(
        self, user_api_key_dict: UserAPIKeyAuth, cache: Any, data: dict, call_type: Any
    ) -> dict:
        for field in BANNED_FIELDS:
            if field in data:
                raise _not_allowed(field)
        model = data.get("model")
        found = _deployments(model)
        escalation = _escalation(found)
        hop = _marked(HOP_FLAG, data, user_api_key_dict)
        if hop:
            found = [d for d in found if not _is_peer(d)]
            if not found and _deployments(model):
                raise HTTPException(
                    status_code=508,
                    detail=f"airpods gateway: {model!r} came from a peer gateway and only "
                    "another peer serves it here; a request is never passed on peer to peer",
                )
            _stamp(data, **{HOP_FLAG: True})
        private = _marked_private(data, user_api_key_dict) or any(
            _info(d).get(PRIVATE_FLAG) for d in found
        )
        if private and escalation is not None:
            # The private lane wins over the tier: the local model serves it, never classified.
            _stamp(data, **{TIER_FLAG: PRIVATE_TIER, ASKED_FLAG: model})
            model = data["model"] = escalation.get("airpods_local")
            found = [d for d in _deployments(model) if not (hop and _is_peer(d))]
        # `auto` may route to its local model, whose deployments may include peers.
        reach = found + (_deployments(escalation.get("airpods_local")) if escalation else [])
        if "extra_headers" in data or any(_is_peer(d) for d in reach):
            # Calls to a peer carry the hop mark (a client cannot drop it with a body
            # `extra_headers`), and the private mark for a `private_ok` peer.
            data["extra_headers"] = {"X-Airpods-Hop": "1", **(
                {"X-Airpods-Private": "1"} if private else {})}
        if not private:
            return data
        if not any(_private_ok(d) for d in found):
            raise HTTPException(
                status_code=503,
                detail=f"airpods gateway: private request for {model!r}, which no local server "
                "serves; private requests are never sent to a remote",
            )
        data["disable_fallbacks"] = True
        _stamp(data, **{PRIVATE_FLAG: True})
        return data

    async def async_filter_deployments(
        self,
        model: str,
        healthy_deployments: list,
        messages: Any,
        request_kwargs: dict | None = None,
        parent_otel_span: Any = None,
    ) -> list[dict]:
        # The last word before any call: a private request never reaches a remote deployment,
        # whatever fallbacks or model groups the config holds.
        tier = _tier(request_kwargs)
        if tier is not None and isinstance(request_kwargs, dict):
            # LiteLLM clears its decision when a fallback routes again: keep the tier.
            _stamp(request_kwargs, **{TIER_FLAG: tier})
            _drop_savings_baseline(request_kwargs)
        if _marked(HOP_FLAG, request_kwargs):
            healthy_deployments = [d for d in healthy_deployments if not _is_peer(d)]
        if _marked_private(request_kwargs):
            healthy_deployments = [d for d in healthy_deployments if _private_ok(d)]
        if len(healthy_deployments) > 1:  # replicas and peers alike
            # least-busy breaks a tie (as many requests in flight on each) by list order:
            # shuffled, a tie goes to any deployment alike, so a load spreads evenly.
            healthy_deployments = random.sample(healthy_deployments, len(healthy_deployments))
        return healthy_deployments

    async def async_pre_call_deployment_hook(self, kwargs: dict, call_type: Any) -> dict | None:
        return with_connect_timeout(kwargs)

    async def async_post_call_response_headers_hook(
        self,
        data: dict,
        user_api_key_dict: UserAPIKeyAuth,
        response: Any,
        request_headers: dict | None = None,
        litellm_call_info: dict | None = None,
    ) -> dict[str, str] | None:
        """x-airpods-tier: the tier an `auto` request was classified (or "private");
        x-airpods-backend: local or remote, for the deployment that answered."""
        headers = {}
        hidden = getattr(response, "_hidden_params", None)
        extra = hidden.get("additional_headers") if isinstance(hidden, dict) else None
        tier = _tier(data) or (extra or {}).get(LITELLM_TIER_HEADER)
        if isinstance(tier, str) and tier:
            headers[TIER_HEADER] = tier
        info = (litellm_call_info or {}).get("model_info")
        backend = info.get("airpods_backend") if isinstance(info, dict) else None
        if isinstance(backend, str) and response is not None:
            headers[BACKEND_HEADER] = backend
        return headers or None

    async def async_post_call_failure_hook(
        self,
        request_data: dict,
        original_exception: Exception,
        user_api_key_dict: UserAPIKeyAuth,
        traceback_str: str | None = None,
    ) -> HTTPException | None:
        if isinstance(original_exception, HTTPException):
            return None
        rejected = _REJECTED.match(str(original_exception))
        if isinstance(original_exception, ValueError) and rejected:
            return _not_allowed(rejected.group(1))
        if _marked_private(request_data, user_api_key_dict):
            status, detail = 503, _private_unavailable(request_data.get("model"),
                                                       original_exception)
            if _too_long(original_exception):
                status, detail = 413, _private_too_long(request_data.get("model"))
            # /v1/completions and /v1/messages ignore a returned exception and answer with the
            # original's status_code and message (a 429 "cooldown", a 500): set those too.
            with contextlib.suppress(AttributeError, TypeError):
                original_exception.status_code = status  # type: ignore[attr-defined]
                original_exception.message = detail  # type: ignore[attr-defined]
            return HTTPException(status_code=status, detail=detail)
        return None


guard = Guard()
