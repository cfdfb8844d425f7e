"""airpods' usage callback for the LiteLLM proxy: one JSON line per request, on disk at once.

Shipped by airpods into the gateway (mounted beside config.yaml, listed in
`litellm_settings.callbacks` as `airpods_usage.usage_logger`). It runs inside LiteLLM's
interpreter, so it imports nothing from airpods. Each record is appended to the file named by
AIRPODS_USAGE_FILE with O_APPEND, then fsync'd: a `kill -9` of the gateway loses at most the
request in flight, and the file outlives restarts. A full file is set aside under a name of its
own and a new one begun (rotate_if_full). `airpods usage` reads them all (a torn last line is
skipped there).

Where the fields come from (checked against LiteLLM 1.106.12's source, and run by a real proxy
in tests/integration/test_gateway_usage.py):
- `standard_logging_object` (litellm_core_utils/litellm_logging.py): prompt_tokens,
  completion_tokens, response_cost, startTime/endTime, api_base, model_group,
  metadata.user_api_key_alias (the proxy copies UserAPIKeyAuth.key_alias there);
- the deployment's `model_info` (router shaping: kwargs["model_info"] and the metadata bucket):
  airpods_backend / airpods_remote, which airpods' config.yaml puts on every model;
- metadata.original_model_group: the model the client asked for when a fallback answered;
- the tier of a request to the escalation model: metadata.airpods_tier (the guard's stamp) or
  metadata.routing_decision.tier (LiteLLM's complexity router), and `served`, the model that
  answered (from the deployment's model_info.id).
A request that falls back writes two records: the failed local attempt (ok false) and the
answer, both under the model asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from typing import Any

try:
    from litellm.integrations.custom_logger import CustomLogger
except ImportError:  # airpods' unit tests read the pure functions below without LiteLLM
    CustomLogger = object  # type: ignore[assignment,misc]

FILE_VARIABLE = "AIRPODS_USAGE_FILE"
# Records are one line each; nothing in one comes near this, and the reader skips longer lines.
MAX_LINE = 16 * 1024
# About 150,000 records: the file is then set aside and a new one begun (rotate_if_full).
ROTATE_BYTES = 32 * 1024 * 1024


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _metadata(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The request's metadata, from both buckets LiteLLM uses (`metadata`, `litellm_metadata`)."""
    params = _dict(kwargs.get("litellm_params"))
    merged: dict[str, Any] = {}
    for bucket in (params.get("metadata"), params.get("litellm_metadata"),
                   kwargs.get("metadata"), kwargs.get("litellm_metadata")):
        for key, value in _dict(bucket).items():
            if value is not None:
                merged.setdefault(key, value)
    return merged


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number >= 0 else 0.0


def _seconds(value: Any) -> float | None:
    """A unix time from a float or a datetime."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    timestamp = getattr(value, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def usage_record(
    kwargs: dict[str, Any], start_time: Any, end_time: Any, ok: bool
) -> dict[str, Any]:
    """The record of one request, from what LiteLLM hands a logger."""
    slo = _dict(kwargs.get("standard_logging_object"))
    meta = _metadata(kwargs)
    slo_meta = _dict(slo.get("metadata"))
    deployment = (_text(slo.get("api_base")) or _text(meta.get("api_base"))
                  or _text(_dict(kwargs.get("litellm_params")).get("api_base")))
    info = _dict(kwargs.get("model_info")) or _dict(meta.get("model_info"))
    # No deployment: the request never reached a backend (refused key, unknown model), even
    # where LiteLLM already looked the model up.
    backend = _text(info.get("airpods_backend")) if deployment else None
    if backend == "peer":  # `usage --by backend` names the peer: another machine of yours
        backend = f"peer:{_text(info.get('airpods_peer'))}"
    asked = (_text(meta.get("airpods_asked")) or _text(meta.get("original_model_group"))
             or _text(slo.get("model_group")) or _text(meta.get("model_group"))
             or _text(kwargs.get("model")))
    start = _seconds(slo.get("startTime")) or _seconds(start_time)
    end = _seconds(slo.get("endTime")) or _seconds(end_time) or time.time()
    latency = (end - start) * 1000 if start is not None else 0.0
    free = backend == "local" or (backend or "").startswith("peer:")
    cost = 0.0 if free else _number(slo.get("response_cost", kwargs.get("response_cost")))
    client = _text(slo_meta.get("user_api_key_alias")) or _text(meta.get("user_api_key_alias"))
    return {
        "ts": round(end, 3),
        "client": client,
        "model": asked,
        "backend": backend,
        "remote": _text(info.get("airpods_remote")) if backend == "remote" else None,
        # False: the remote has no price set, so `cost` 0 means unknown, not free.
        "priced": info.get("airpods_priced") is not False if backend == "remote" else None,
        "deployment": deployment,
        "prompt_tokens": int(_number(slo.get("prompt_tokens"))),
        "completion_tokens": int(_number(slo.get("completion_tokens"))),
        "latency_ms": round(max(latency, 0.0), 1),
        "cost": cost,
        "ok": ok,
        "tier": _tier(meta),
        "served": _served(info) if deployment else None,
    }


def _tier(meta: dict[str, Any]) -> str | None:
    """The escalation model's tier for this request (the guard's stamp, else LiteLLM's
    complexity-router decision); None for a request that named its model."""
    decision = _dict(meta.get("routing_decision"))
    return _text(meta.get("airpods_tier")) or _text(decision.get("tier"))


def _served(info: dict[str, Any]) -> str | None:
    """The model that answered, from its deployment id (`local:<service>:<model>`,
    `remote:<remote>:<model>`)."""
    parts = str(info.get("id") or "").split(":", 2)
    return parts[2] if len(parts) == 3 and parts[2] else None


def worth_recording(record: dict[str, Any]) -> bool:
    """False for a request refused before any key matched: it is no client's, and strangers on
    the LAN must not be able to fill the disk with records."""
    return record["client"] is not None or record["deployment"] is not None


def rotate_if_full(path: str) -> None:
    """A file of ROTATE_BYTES or more is renamed aside, to usage-<UTC time>-<pid>-<random>.jsonl:
    never over another file, so two workers rotating at once lose nothing. `airpods usage`
    reads the aside files too, skipping those last written before the days it is asked for."""
    try:
        if os.lstat(path).st_size < ROTATE_BYTES:
            return
    except FileNotFoundError:
        return
    base, ext = os.path.splitext(path)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    with contextlib.suppress(FileNotFoundError):  # another worker rotated it first
        os.rename(path, f"{base}-{stamp}-{os.getpid()}-{os.urandom(3).hex()}{ext}")


def append_record(path: str, record: dict[str, Any]) -> None:
    """Append one line and make it durable before returning (O_APPEND: concurrent writers never
    interleave within a line)."""
    line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
    if len(line) > MAX_LINE:
        return
    rotate_if_full(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


class UsageLogger(CustomLogger):  # type: ignore[misc,valid-type]
    """Writes a usage record for every request of a known key, answered or failed."""

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):  # noqa: ANN001
        await self._log(kwargs, start_time, end_time, ok=True)

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):  # noqa: ANN001
        await self._log(kwargs, start_time, end_time, ok=False)

    async def _log(self, kwargs: Any, start_time: Any, end_time: Any, ok: bool) -> None:
        path = os.environ.get(FILE_VARIABLE)
        if not path:
            return
        try:
            record = usage_record(_dict(kwargs), start_time, end_time, ok)
            if not worth_recording(record):
                return
            # fsync takes milliseconds: off the event loop, so other requests do not wait.
            await asyncio.to_thread(append_record, path, record)
        except Exception as exc:  # a logger must never fail the request it describes
            print(f"airpods_usage: cannot record usage in {path}: {exc}", flush=True)


usage_logger = UsageLogger()
