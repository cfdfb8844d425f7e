"""`@record`: the frozen dataclass every stage passes along, cheaper to define.

`dataclass(frozen=True)` compiles six methods per class with `exec`; on Python 3.11 that is
about 0.5-0.8 ms a class, and `status` or `start` defines some 28 of them before doing any work
(bench/README.md). Here the class is still a dataclass (`dataclasses.fields`, `replace` and
`asdict` work on it), but no method is compiled: `__init__`, the frozen `__setattr__` and
`__delattr__`, `__repr__`, `__eq__` and `__hash__` are shared functions that read the fields,
written to answer exactly as the generated ones do (tests/unit/test_record.py compares them).
"""

from __future__ import annotations

from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
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


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _init_for(cls: type) -> Any:
    """One `__init__` for `cls`, a closure over its fields instead of compiled source."""
    plan = [(f.name, f.init, f.default, f.default_factory) for f in fields(cls)]
    names = [name for name, init, _, _ in plan if init]
    required = [name for name, init, default, factory in plan
                if init and default is MISSING and factory is MISSING]
    if required and names.index(required[-1]) >= len(required):
        raise TypeError(f"non-default argument {required[-1]!r} follows default argument")
    known = frozenset(names)
    title = f"{cls.__qualname__}.__init__()"
    post_init = getattr(cls, "__post_init__", None)
    put = object.__setattr__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{title} takes {len(names) + 1} positional arguments"
                            f" but {len(args) + 1} were given")
        given = dict(zip(names, args, strict=False))  # fewer args than names: the rest by keyword
        for key, value in kwargs.items():
            if key not in known:
                raise TypeError(f"{title} got an unexpected keyword argument {key!r}")
            if key in given:
                raise TypeError(f"{title} got multiple values for argument {key!r}")
            given[key] = value
        missing = []
        for name, init, default, factory in plan:
            if init and name in given:
                put(self, name, given[name])
            elif default is not MISSING:
                put(self, name, default)
            elif factory is not MISSING:
                put(self, name, factory())
            elif init:
                missing.append(name)
        if missing:
            raise TypeError(f"{title} missing {len(missing)} required argument"
                            f"{'s' if len(missing) > 1 else ''}: "
                            + ", ".join(repr(name) for name in missing))
        if post_init is not None:
            post_init(self)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def record(cls: type[T]) -> type[T]:
    """As `@dataclass(frozen=True)`: immutable, compared and hashed by its fields."""
    if "__doc__" not in cls.__dict__ or cls.__doc__ is None:
        cls.__doc__ = cls.__name__  # dataclass would otherwise build it with inspect.signature
    made = dataclass(init=False, repr=False, eq=False)(cls)
    made.__dataclass_params__.frozen = True  # type: ignore[attr-defined] (frozen subclasses)
    made.__init__ = _init_for(made)  # type: ignore[misc]
    made.__setattr__ = _frozen_setattr  # type: ignore[method-assign,assignment]
    made.__delattr__ = _frozen_delattr  # type: ignore[method-assign,assignment]
    made.__repr__ = _repr  # type: ignore[method-assign,assignment]
    made.__eq__ = _eq  # type: ignore[method-assign,assignment]
    made.__hash__ = _hash  # type: ignore[method-assign,assignment]
    return made
