"""`airpods logs --since`: durations, unix seconds and RFC 3339 all become unix seconds."""

from __future__ import annotations

import pytest

from airpods.cli.status import parse_since
from airpods.errors import UsageError

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", 1_799_999_910), ("10m", 1_799_999_400), ("2h", 1_799_992_800),
    ("1d", 1_799_913_600), ("1.5m", 1_799_999_910), ("1700000000", 1_700_000_000),
    ("2027-01-15T08:00:00Z", 1_800_000_000), ("2027-01-15T09:00:00+01:00", 1_800_000_000),
])
def test_since_forms(text: str, expected: int) -> None:
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "10 minutes", "-5m", ""])
def test_bad_since_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_since(text, now=NOW)
    assert "--since" in err.value.one_line()
