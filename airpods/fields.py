"""The pydantic field types the shared schema (airpods.config.schema) and the kinds' own config
tables (airpods/kinds/*_config.py, *_schema.py) both build on: one set of rules for every key,
below both (the kinds never import the config package).

Imported only to validate a configuration: the cache-hit path imports no pydantic.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

_ARG_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")

Scalar = str | int | float | bool
_SCALAR_TYPES = (str, int, float, bool)


def _check_flag_value(v: Any) -> Any:
    # Checked before the union so the error names the flag, not each union member that failed.
    items = v if isinstance(v, list) else [v]
    if not all(isinstance(item, _SCALAR_TYPES) for item in items):
        raise ValueError(
            "must be a string, number, boolean or a list of them (a table is not allowed here)"
        )
    return v


def check_name(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(v: str) -> str:
        if not pattern.fullmatch(v):  # not match: `$` would let a trailing newline through
            raise ValueError(f"{v!r} is not a valid {what}")
        return v

    return AfterValidator(check)


ArgKey = Annotated[str, check_name(_ARG_KEY_RE, "flag name (letters, digits, '_-')")]
ArgValue = Annotated[Scalar | list[Scalar], BeforeValidator(_check_flag_value)]


class StrictModel(BaseModel):
    """Unknown keys are errors and a validated value is never changed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
