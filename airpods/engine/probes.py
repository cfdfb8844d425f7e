"""A service's readiness states, and the model checks a probe runs against a server's model
listing (llama-server's /v1/models, a router's /models): readiness and status share them."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from airpods import kinds
from airpods.errors import LocalTransportError
from airpods.http1 import on_server
from airpods.http_clients import local
from airpods.kinds import ModelCheck
from airpods.localhttp import Client, LocalHTTP, Reply
from airpods.spec import ContainerSpec


class State(StrEnum):
    """A service's readiness; the values are what events, `status` and --json print."""

    STARTING = "starting"
    LOADING = "loading model"
    READY = "ready"
    FAILED = "failed"
    TIMEOUT = "timeout"
    UNHEALTHY = "unhealthy"  # probe_once/probe_many only: it answers, not with expected_status
    UNKNOWN = "unknown"  # probe_once/probe_many only: the service has no probe-able health check


STARTING, LOADING, READY, FAILED = State.STARTING, State.LOADING, State.READY, State.FAILED
TIMEOUT, UNHEALTHY, UNKNOWN = State.TIMEOUT, State.UNHEALTHY, State.UNKNOWN


def _listed_ids(payload: object) -> list[str]:
    ids: list[str] = []
    if not isinstance(payload, dict):
        return ids
    for entry in payload.get("data") or []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            ids.append(entry["id"])
    for entry in payload.get("models") or []:  # llama-server's Ollama-style listing
        if isinstance(entry, dict):
            ids.extend(v for k in ("name", "model") if isinstance(v := entry.get(k), str))
    return ids


def _model_listed(
    client: Client, health_url: str, check: ModelCheck, timeout: float | None
) -> tuple[bool, str]:
    """Ready once GET `check.path` lists the configured model (any model when none is named)."""
    url = on_server(health_url, check.path)
    headers = {"Authorization": f"Bearer {check.api_key}"} if check.api_key else {}
    wanted = check.model_ids
    want_text = " or ".join(repr(w) for w in wanted) or "a model"
    try:
        resp = client.get(url, headers=headers, timeout=timeout)
    except LocalTransportError as exc:
        return False, f"{check.path}: {exc.detail}"
    if resp.status_code == 503:
        return False, _error_message(resp)
    if resp.status_code in (401, 403):
        hint = "API key rejected" if check.api_key else "API key required but none configured"
        return False, f"{check.path}: HTTP {resp.status_code} ({hint})"
    if resp.status_code != 200:
        return False, f"{check.path}: HTTP {resp.status_code}"
    try:
        ids = _listed_ids(resp.json())
    except ValueError:
        return False, f"{check.path}: response is not JSON"
    if not wanted and ids:
        return True, f"model {ids[0]!r} loaded"
    for model_id in ids:
        if model_id in wanted:
            return True, f"model {model_id!r} loaded"
    listed = ", ".join(repr(i) for i in ids) or "none"
    return False, f"waiting for {want_text} in {check.path} (listed: {listed})"


def _models_loaded(
    client: Client, health_url: str, check: ModelCheck, timeout: float | None
) -> tuple[str, str]:
    """A router's check: READY once every `check.model_ids` is loaded, FAILED if one failed."""
    assert check.states is not None
    url = on_server(health_url, check.path)
    headers = {"Authorization": f"Bearer {check.api_key}"} if check.api_key else {}
    try:
        resp = client.get(url, headers=headers, timeout=timeout)
    except LocalTransportError as exc:
        return LOADING, f"{check.path}: {exc.detail}"
    if resp.status_code != 200:
        return LOADING, f"{check.path}: HTTP {resp.status_code}: {_error_message(resp)}"
    try:
        states = check.states(resp.json())
    except ValueError:
        return LOADING, f"{check.path}: response is not JSON"
    waiting = []
    for model_id in check.model_ids:
        state, detail = states.get(model_id, ("absent", ""))
        if state == "failed":
            return FAILED, f"model {model_id!r} failed to load" + (f" ({detail})" if detail else "")
        if state != "loaded":
            waiting.append(f"{model_id!r} ({state})")
    if waiting:
        return LOADING, f"waiting for {', '.join(waiting)} in {check.path}"
    loaded = ", ".join(repr(m) for m in check.model_ids)
    return READY, f"model {loaded} loaded" if loaded else f"{len(states)} models listed"


def _error_message(resp: Reply) -> str:
    """The server's own message from an error response, e.g. llama-server's "Loading model"."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str) and err:
            return err
        if isinstance(body.get("message"), str) and body["message"]:
            return body["message"]
    text = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else ""
    return text or resp.reason_phrase or f"HTTP {resp.status_code}"


# --------------------------------------------------------------------------------------------
# One probe (status reaches these without importing the waiting loop in readiness.py)
# --------------------------------------------------------------------------------------------


def _probe(
    spec: ContainerSpec,
    client: Client,
    timeout: float | None,
    check: ModelCheck | None = None,
) -> tuple[str, str]:
    """(state, detail) with state in ready / loading model / starting / unhealthy / unknown, or
    failed (a model the check waits for failed to load). `check` replaces the kind's."""
    health = spec.health
    url = health.url if health is not None else None
    if health is None or url is None:
        return UNKNOWN, "no health check" if health is None else "no published port to probe"
    try:
        resp = client.get(url, timeout=timeout)
    except LocalTransportError as exc:
        return STARTING, exc.detail
    kind = kinds.get(spec.kind)
    if resp.status_code == health.expected_status:
        if check is None and isinstance(kind, kinds.HasApi):
            check = kind.ready_check(spec)
        if check is None:
            return READY, f"HTTP {resp.status_code}"
        if check.states is not None:
            return _models_loaded(client, url, check, timeout)
        ok, detail = _model_listed(client, url, check, timeout)
        return (READY if ok else LOADING), detail
    if resp.status_code == 503:
        message = _error_message(resp)
        if kind.loading_on_503 or "loading" in message.lower():
            return LOADING, message
        return STARTING, f"HTTP 503: {message}"
    return UNHEALTHY, f"HTTP {resp.status_code}"


def new_client(timeout: float | None = None) -> LocalHTTP:
    return local(timeout)


def probe_once(
    spec: ContainerSpec, client: Client, *, timeout_s: float | None = None
) -> tuple[str, str]:
    """One health probe, for `airpods status`: (state, detail).

    state is "ready" | "loading model" | "starting" (nothing answers yet) | "unhealthy" (answers
    with an unexpected status) | "unknown" (no health check or no published port).
    `timeout_s` is per request (None = the client's default).
    """
    return _for_status(_probe(spec, client, timeout_s))


def _for_status(result: tuple[str, str]) -> tuple[str, str]:
    # A model that failed to load: the service answers, but not as it should.
    return (UNHEALTHY, result[1]) if result[0] == FAILED else result


def probe_many(
    specs: Iterable[ContainerSpec], *, timeout_s: float = 1.0
) -> dict[str, tuple[str, str]]:
    """probe_once for every spec in parallel threads: {service: (state, detail)}.

    Takes about as long as the slowest service (each request is bounded by `timeout_s`; a
    llama-server probe makes two requests).
    """
    specs = list(specs)
    if not specs:
        return {}
    from concurrent.futures import ThreadPoolExecutor

    with (
        new_client(timeout_s) as client,
        ThreadPoolExecutor(max_workers=min(16, len(specs)), thread_name_prefix="probe") as pool,
    ):
        futures = {s.service: pool.submit(_probe, s, client, timeout_s) for s in specs}
        return {service: _for_status(fut.result()) for service, fut in futures.items()}
