"""One line of `airpods doctor`: what was checked, how it went, and the fix."""

from __future__ import annotations

from dataclasses import dataclass

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    found: str
    fix: str = ""
