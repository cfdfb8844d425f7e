"""The one click type for every number the CLI takes (`stop --timeout`, `models cleanup --days`,
`models load --timeout`, `logs --tail`...).

click's float takes `nan`, `inf` and `1e400` (which is inf), and FloatRange lets nan through, so
each command used to check its own way, or not at all. `Number` refuses anything that is not a
finite number within the option's range, with one line naming the option and the range (exit 2,
before Podman is touched). A unit test walks the command tree: no option may use click's own
number types.

Imports nothing but click and math: command modules import it at load time.
"""

from __future__ import annotations

import math
from typing import Any

import click


class Number(click.ParamType):
    """A finite number from `low` to `high` (whole with `integer`), in `unit`s."""

    def __init__(self, low: float, high: float, unit: str, *, integer: bool = False) -> None:
        self.low, self.high, self.unit, self.integer = low, high, unit, integer
        self.name = "integer" if integer else "number"

    def get_metavar(self, param: click.Parameter, *args: Any, **kwargs: Any) -> str:
        # click 8.2 passes ctx= by keyword, older releases nothing more
        return "N" if self.integer else "NUMBER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, bool):
            self._refuse(value, param)
        if isinstance(value, (int, float)):
            number: float = value
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                self._refuse(value, param)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            self._refuse(value, param)
        if self.integer:
            if number != int(number):
                self._refuse(value, param)
            return int(number)
        return float(number)

    def _refuse(self, value: Any, param: click.Parameter | None) -> None:
        # An airpods UsageError, not click's BadParameter: one line (no usage block), exit 2.
        from airpods.errors import UsageError

        name = max(param.opts, key=len) if param is not None and param.opts else "value"
        kind = "a whole number" if self.integer else "a number"
        raise UsageError(f"{name} {value}: must be {kind} of {self.unit} from {self.low:g} to "
                         f"{self.high:g}")


class OneOf(click.Choice):
    """click's Choice, refusing in one line that lists the choices (exit 2), not click's three
    (a usage block, a hint, the error)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value in self.choices:
            return value
        from airpods.errors import UsageError

        name = max(param.opts, key=len) if param is not None and param.opts else "value"
        raise UsageError(f"{name} {value!r}: must be one of {', '.join(self.choices)}")


# The ranges, named once. Podman's stop timeout, like runtime.stop_timeout_s: 0 to 3600 s.
STOP_SECONDS = Number(0, 3600, "seconds")
WAIT_SECONDS = Number(0, 86_400, "seconds")  # waiting for a model to load: up to a day
DAYS = Number(0, 100_000, "days")
LINES = Number(0, 10_000_000, "lines", integer=True)
