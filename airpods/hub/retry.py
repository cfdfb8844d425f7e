"""Retries for talking to the hub: which errors are worth another try, and a tenacity policy
that gives up after RETRIES attempts in a row that moved no byte (so a download that keeps
making progress keeps going, and one that does not stops), or, while not one byte has moved,
after FIRST_BYTE_BUDGET_S (a hub that answers 500 from the start is said so in seconds)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from airpods.errors import RetryableStatus, TransportError

T = TypeVar("T")

RETRIES = 5  # attempts in a row that make no progress before giving up
RETRY_WAIT_S = 0.5  # first wait; doubles up to RETRY_MAX_WAIT_S
RETRY_MAX_WAIT_S = 8.0
FIRST_BYTE_BUDGET_S = 1.0  # tries at 0, 0.5 and 1.5 s: a 500 from the start is told in ~2 s


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: connection trouble, timeouts, 5xx and 429 answers."""
    if isinstance(exc, RetryableStatus | TransportError):
        return True
    import httpx  # the client where a proxy applies (hub/client.py)

    if isinstance(exc, (httpx.TransportError,)):
        return True
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and (status >= 500 or status == 429):
        return True
    # huggingface_hub's own HTTP client raises its own transport errors
    return type(exc).__name__ in ("ConnectError", "ReadError", "ReadTimeout", "ConnectTimeout",
                                  "RemoteProtocolError", "WriteError", "PoolTimeout")


class NoProgressStop:
    """tenacity stop: give up after RETRIES attempts in a row that moved no byte, or once
    FIRST_BYTE_BUDGET_S have passed without a first byte."""

    def __init__(self, progress: Callable[[], int], attempts: int) -> None:
        self.progress, self.attempts = progress, attempts
        self.last, self.failures = progress(), 0
        self.first, self.began, self.tries = self.last, time.monotonic(), 0

    def __call__(self, state: Any) -> bool:
        now = self.progress()
        self.tries += 1
        self.failures = 0 if now > self.last else self.failures + 1
        self.last = now
        no_byte_yet = now == self.first
        late = time.monotonic() - self.began >= FIRST_BYTE_BUDGET_S
        return self.failures >= self.attempts or (no_byte_yet and late)


def retrying(progress: Callable[[], int] = lambda: 0, *, attempts: int = RETRIES,
             on_retry: Callable[[BaseException], None] = lambda e: None
             ) -> Callable[[Callable[[], T]], T]:
    """A runner: `retrying(...)(fn)` calls fn, again after transient errors (is_transient),
    with exponential waits, until an attempt succeeds or `attempts` in a row moved no byte.

    The first attempt runs without tenacity: a pull that needs no retry (nearly all) does not
    import it (~10 ms of a `models pull`, bench/README.md)."""

    def run(fn: Callable[[], T]) -> T:
        stop = NoProgressStop(progress, attempts)
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc) or stop(None):
                raise
            on_retry(exc)
        time.sleep(RETRY_WAIT_S)
        return _tenacity(stop, on_retry)(fn)  # type: ignore[no-any-return]

    return run


def _tenacity(stop: NoProgressStop, on_retry: Callable[[BaseException], None]) -> Any:
    from tenacity import Retrying, retry_if_exception, wait_exponential

    def before_sleep(state: Any) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None:
            on_retry(exc)

    # The first wait was taken before this: tenacity's waits start from the doubled one.
    return Retrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential(multiplier=2 * RETRY_WAIT_S, max=RETRY_MAX_WAIT_S),
        stop=stop,
        before_sleep=before_sleep,
        reraise=True,
    )


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, RetryableStatus):
        return "the connection ended early" if exc.status == 0 else f"HTTP {exc.status}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__

