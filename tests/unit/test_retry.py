"""hub/retry.py: which errors are retried, how long between tries, when it gives up, and that
a first try that works never imports tenacity."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from airpods.errors import RetryableStatus
from airpods.hub import retry


def test_a_first_try_that_works_does_not_import_tenacity() -> None:
    code = ("import sys; from airpods.hub.retry import retrying;"
            "assert retrying()(lambda: 7) == 7; print('tenacity' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # tenacity sleeps through time.sleep too
    return slept


def test_no_progress_gives_up_after_the_attempts_with_doubling_waits(waits: list[float]) -> None:
    calls, notes = [], []

    def fail() -> None:
        calls.append(1)
        raise RetryableStatus(503)

    with pytest.raises(RetryableStatus):
        retry.retrying(attempts=5, on_retry=notes.append)(fail)
    assert len(calls) == 5 and len(notes) == 4
    assert waits == [0.5, 1.0, 2.0, 4.0]


def test_progress_keeps_it_going_and_success_returns(waits: list[float]) -> None:
    moved = [0]

    def flaky() -> str:
        moved[0] += 1
        if moved[0] < 8:  # every try moves a byte: more tries than `attempts` are allowed
            raise RetryableStatus(0)
        return "done"

    assert retry.retrying(lambda: moved[0], attempts=3)(flaky) == "done"
    assert moved[0] == 8 and waits[:3] == [0.5, 1.0, 2.0] and max(waits) == retry.RETRY_MAX_WAIT_S


def test_an_error_that_is_not_transient_is_raised_at_once(waits: list[float]) -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("not a network problem")

    with pytest.raises(ValueError):
        retry.retrying()(broken)
    assert calls == [1] and waits == []
