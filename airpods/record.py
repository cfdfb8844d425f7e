"""`@record`: the frozen dataclass every stage passes along, cheaper to define.

`dataclass(frozen=True)` compiles six methods per class with `exec`; on Python 3.11 that is
about 0.8 ms a class, and `status` or `start` defines some 28 of them before doing any work
(bench/README.md). Here `__repr__`, `__eq__` and `__hash__` are three shared functions that
read `dataclasses.fields`, written to answer exactly as the generated ones do
(tests/unit/test_record.py compares them), so only `__init__` and the frozen
`__setattr__`/`__delattr__` are compiled per class.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T")


def _repr(self: Any) -> str:
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
    return f"{type(self).__qualname__}({shown})"


def _compared(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, f.name) for f in fields(self) if f.compare)


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _compared(self) == _compared(other)


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, f.name) for f in fields(self)
                      if (f.compare if f.hash is None else f.hash)))


def record(cls: type[T]) -> type[T]:
    """As `@dataclass(frozen=True)`: immutable, compared and hashed by its fields."""
    made = dataclass(frozen=True, repr=False, eq=False)(cls)
    made.__repr__ = _repr  # type: ignore[method-assign,assignment]
    made.__eq__ = _eq  # type: ignore[method-assign,assignment]
    made.__hash__ = _hash  # type: ignore[method-assign,assignment]
    return made
