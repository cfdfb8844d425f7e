"""Wait until a service really answers: poll its health URL, watch its container, report progress.

Plain data and callbacks only: no printing and no Podman here. The engine passes
`container_state` (a cheap "is it still running, and with which exit code?" query) and
`on_event` (progress display); this module decides the state and when to give up.

States while waiting:

- ``starting``: nothing listens yet (connection refused/reset, no answer) or an unexpected status.
- ``loading model``: HTTP 503 from a model server (llama-server says "Loading model"), or, for
  llama-server, /health is fine but the model is not listed in ``/v1/models`` yet.
- ``ready``: the health path answered ``expected_status`` and the kind's extra check passed.
- ``failed``: the container stopped while we waited (noticed within ``WATCH_EVERY_S``), or a
  model the kind's check waits for (a router's preload) reports that it failed to load.
- ``timeout``: ``health.timeout_s`` (or the ``timeout_s`` override) ran out.

Polling is adaptive: polls are 10 ms apart (measured start to start) during the first 5 s, then
the gap grows by x1.5 per poll up to 4 % of the time waited so far, and at most the service's
``health.interval_s`` (1 s by default). So a fast load is noticed within ~10 ms (half a gap plus
one loopback request on average), the fast phase costs ~500 tiny requests, a 10-minute load
about one request a second, and being late never exceeds ~4 % of the wait.

Requests go through airpods.localhttp (the stdlib's http.client, kept-alive): httpx would add
40-60 ms of import to every `status` and `start` (bench/README.md).

The retry loop is written out rather than built on tenacity: it has to check the container between
polls on its own cadence, clamp every sleep and request timeout to the deadline, and run on an
injectable clock for tests, none of which tenacity's stop/wait strategies do cleanly.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from airpods.engine.probes import (  # noqa: E402,F401 (readiness.X names)
    FAILED,
    LOADING,
    READY,
    STARTING,
    TIMEOUT,
    UNHEALTHY,
    UNKNOWN,
    State,
    _probe,
    new_client,
)
from airpods.kinds import ModelCheck
from airpods.localhttp import Client
from airpods.record import record
from airpods.spec import ContainerSpec

FIRST_INTERVAL_S = 0.01  # first gap between polls
GROWTH = 1.5  # each gap is at most this much longer than the previous one
FAST_INTERVAL_S = 0.01  # gap ceiling during the first FAST_WINDOW_S
FAST_WINDOW_S = 5.0
LATENESS = 0.04  # afterwards the gap is at most this fraction of the time waited so far
DEFAULT_CAP_S = 1.0  # gap ceiling when the spec gives no usable health.interval_s
WATCH_EVERY_S = 0.4  # container_state() is asked about this often while waiting (after each answer)
MAX_REQUEST_TIMEOUT_S = 2.0  # one health request never blocks longer than this
MIN_REQUEST_TIMEOUT_S = 0.05


@record
class ReadinessEvent:
    service: str
    state: State  # starting | loading model | ready | failed | timeout
    elapsed_s: float
    detail: str = ""


@record
class ContainerState:
    running: bool
    exit_code: int | None = None
    status: str = ""  # podman's status string, e.g. "exited"


@record
class ReadinessResult:
    ready: bool
    state: State  # ready | failed | timeout
    elapsed_s: float
    detail: str
    exit_code: int | None = None  # set when state == "failed" and podman reported one


# --------------------------------------------------------------------------------------------
# Waiting
# --------------------------------------------------------------------------------------------


def next_poll_interval(previous_s: float, elapsed_s: float, cap_s: float) -> float:
    """The gap before the next poll: FAST_INTERVAL_S during the first FAST_WINDOW_S, then x GROWTH
    per poll up to max(FAST_INTERVAL_S, 4 % of elapsed); never more than `cap_s`."""
    if elapsed_s < FAST_WINDOW_S:
        return min(cap_s, FAST_INTERVAL_S)
    return min(cap_s, previous_s * GROWTH, max(FAST_INTERVAL_S, LATENESS * elapsed_s))


def _ignore(_event: ReadinessEvent) -> None:
    return None


class _Progress:
    """Emits an event whenever the state changes (and every `heartbeat_s`, when given)."""

    def __init__(self, service, on_event, clock, start, heartbeat_s):
        self.service = service
        self.on_event = on_event
        self.clock = clock
        self.start = start
        self.heartbeat_s = heartbeat_s
        self.state: str | None = None
        self.detail = ""
        self.last_emit = start

    def elapsed(self) -> float:
        return self.clock() - self.start

    def update(self, state: str, detail: str) -> None:
        now = self.clock()
        due = self.heartbeat_s is not None and now - self.last_emit >= self.heartbeat_s
        changed = state != self.state
        self.state, self.detail = state, detail
        if changed or due:
            self.last_emit = now
            self.on_event(ReadinessEvent(self.service, state, now - self.start, detail))

    def finish(self, state: str, detail: str, exit_code: int | None = None) -> ReadinessResult:
        elapsed = self.elapsed()
        self.on_event(ReadinessEvent(self.service, state, elapsed, detail))
        return ReadinessResult(state == READY, state, elapsed, detail, exit_code)


def _exited_detail(cs: ContainerState) -> str:
    if cs.exit_code is not None:
        return f"container exited with code {cs.exit_code}"
    return f"container is not running (status: {cs.status or 'unknown'})"


def wait_ready(
    spec: ContainerSpec,
    *,
    container_state: Callable[[], ContainerState],
    on_event: Callable[[ReadinessEvent], None] = _ignore,
    timeout_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    client: Client | None = None,
    heartbeat_s: float | None = None,
    check: ModelCheck | None = None,
) -> ReadinessResult:
    """Block until `spec`'s service is ready, its container stops, or the timeout runs out.

    - Polls `spec.health.url` on the adaptive schedule (see the module docstring); for kinds with
      a `ready_check` (llama-server) also requires the model to be listed.
    - Calls `container_state()` before the first poll, then WATCH_EVERY_S after each answer
      (between polls, whatever the poll gap; a blocked health request delays it by at most
      MAX_REQUEST_TIMEOUT_S); once it reports not running, returns "failed" with the exit code.
    - `timeout_s` overrides `spec.health.timeout_s`; `check` the kind's ready_check (e.g. to
      wait for one model a router was asked to load). A model the check reports failed ends
      the wait at once ("failed").
    - `on_event` gets a ReadinessEvent on every state change, on the final state, and every
      `heartbeat_s` seconds if given (for elapsed-time progress lines).
    - Never raises for a slow or dead service; KeyboardInterrupt (and exceptions raised by the
      callbacks) propagate, after closing the HTTP client this call created.
    """
    start = clock()
    progress = _Progress(spec.service, on_event, clock, start, heartbeat_s)

    cs = container_state()
    if not cs.running:
        return progress.finish(FAILED, _exited_detail(cs), cs.exit_code)
    health = spec.health
    if health is None or health.url is None:
        why = "no health check" if health is None else "no published port to probe"
        return progress.finish(READY, f"{why}; container is running")

    limit = health.timeout_s if timeout_s is None else timeout_s
    deadline = start + max(0.0, limit)
    cap = health.interval_s if health.interval_s and health.interval_s > 0 else DEFAULT_CAP_S
    interval = min(FIRST_INTERVAL_S, cap)
    next_watch = clock() + WATCH_EVERY_S
    own_client = client is None
    http = new_client() if client is None else client
    try:
        while True:
            poll_start = clock()
            remaining = deadline - poll_start
            request_timeout = max(MIN_REQUEST_TIMEOUT_S, min(MAX_REQUEST_TIMEOUT_S, remaining))
            state, detail = _probe(spec, http, request_timeout, check)
            if state in (READY, FAILED):
                return progress.finish(state, detail)
            if state in (UNHEALTHY, UNKNOWN):
                state = STARTING
            progress.update(state, detail)

            now = clock()
            if now >= deadline:
                return progress.finish(
                    TIMEOUT, f"not ready after {limit:g}s (last state: {state}: {detail})"
                )
            wake = min(max(poll_start + interval, now), deadline)
            while True:  # sleep until `wake`, asking about the container on its own cadence
                if now >= next_watch:
                    cs = container_state()
                    next_watch = clock() + WATCH_EVERY_S
                    if not cs.running:
                        return progress.finish(FAILED, _exited_detail(cs), cs.exit_code)
                    now = clock()
                if now >= wake:
                    break
                sleep(min(wake, next_watch) - now)
                now = clock()
            interval = next_poll_interval(interval, wake - start, cap)
    finally:
        if own_client:
            http.close()
