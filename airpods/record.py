"""`@record`: the frozen plain-data class every stage passes along, cheap to define and import.

It answers as `@dataclass(frozen=True)` does (tests/unit/test_record.py compares them), with
`field`, `fields`, `replace` and `asdict` of its own. Two costs made it worth its lines:
importing `dataclasses` pulls in `inspect` (with `ast`, `dis` and `tokenize`), about 11 ms of
the 65 ms `status` and `start` take; and `dataclass(frozen=True)` compiles six methods per
class with `exec`, about 0.5 ms a class for the 28 those commands define (bench/README.md).
Here nothing is compiled: `__init__` is a closure over the fields, and the frozen
`__setattr__`/`__delattr__`, `__repr__`, `__eq__` and `__hash__` are shared functions.
"""

from __future__ import annotations

from types import MappingProxyType

from airpods.errors import FrozenInstanceError

TYPE_CHECKING = False  # `typing` is not needed at run time here
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, TypeVar

    T = TypeVar("T")


class _Missing:
    """No default given (`field(default=...)` may be None)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_NO_METADATA: Mapping[str, Any] = MappingProxyType({})


class Field:
    """One field of a record: its name and the options `field()` was given."""

    __slots__ = ("name", "default", "default_factory", "init", "repr", "hash", "compare",
                 "metadata")

    def __init__(self, default: Any = MISSING, default_factory: Any = MISSING, init: bool = True,
                 repr: bool = True, hash: bool | None = None, compare: bool = True,  # noqa: A002
                 metadata: Mapping[str, Any] | None = None) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.hash = hash
        self.compare = compare
        # Read-only, as dataclasses' own: one field's options cannot change another's.
        self.metadata = _NO_METADATA if metadata is None else MappingProxyType(dict(metadata))

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r})"


def field(*, default: Any = MISSING, default_factory: Callable[[], Any] | Any = MISSING,
          init: bool = True, repr: bool = True, hash: bool | None = None,  # noqa: A002
          compare: bool = True, metadata: Mapping[str, Any] | None = None) -> Any:
    """A field with options, as `dataclasses.field`."""
    return Field(default, default_factory, init, repr, hash, compare, metadata)


def fields(value: Any) -> tuple[Field, ...]:
    """The fields of a record class or instance, in definition order."""
    try:
        return value.__record_fields__  # type: ignore[no-any-return]
    except AttributeError:
        raise TypeError("must be called with a record type or instance") from None


def is_record(value: Any) -> bool:
    """Whether `value` is a record class or instance."""
    return hasattr(value, "__record_fields__")


def replace(value: T, /, **changes: Any) -> T:
    """A copy of `value` with `changes`, as `dataclasses.replace`."""
    for f in fields(value):
        if not f.init:
            if f.name in changes:
                raise ValueError(f"field {f.name} is declared with init=False, "
                                 "it cannot be specified with replace()")
        elif f.name not in changes:
            changes[f.name] = getattr(value, f.name)
    return value.__class__(**changes)  # type: ignore[no-any-return]


def asdict(value: Any) -> dict[str, Any]:
    """`value` as nested dicts, as `dataclasses.asdict` (values are shared, not deep-copied:
    every field of a record is immutable or rebuilt here)."""
    if not is_record(value) or isinstance(value, type):
        raise TypeError("asdict() should be called on record instances")
    return _plain(value)  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    if is_record(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict):
        return type(value)((_plain(k), _plain(v)) for k, v in value.items())
    return value


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


def _own_fields(cls: type) -> list[Field]:
    """The fields `cls` itself declares, its class attributes made defaults (as dataclass)."""
    made = []
    for name in cls.__dict__.get("__annotations__", {}):
        given = cls.__dict__.get(name, MISSING)
        if type(given).__module__ == "dataclasses":  # dataclasses.field(): not read here
            raise TypeError(f"field {name}: use airpods.record.field, not dataclasses.field")
        f = given if isinstance(given, Field) else Field(default=given)
        if isinstance(f.default, list | dict | set):
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not "
                             "allowed: use default_factory")
        f.name = name
        if f.default is MISSING:
            if name in cls.__dict__:
                delattr(cls, name)  # a field(default_factory=...) is not a class attribute
        else:
            setattr(cls, name, f.default)
        made.append(f)
    return made


def _all_fields(cls: type) -> tuple[Field, ...]:
    """The fields of `cls`'s record bases, then its own; a redefined name keeps its place."""
    found: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for f in base.__dict__.get("__record_fields__", ()):
            found[f.name] = f
    for f in _own_fields(cls):
        found[f.name] = f
    return tuple(found.values())


def _init_for(cls: type, plan: tuple[Field, ...]) -> Callable[..., None]:
    """One `__init__` for `cls`, a closure over its fields instead of compiled source."""
    steps = [(f.name, f.init, f.default, f.default_factory) for f in plan]
    names = [f.name for f in plan if f.init]
    required = [f.name for f in plan
                if f.init and f.default is MISSING and f.default_factory is MISSING]
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
        # Fewer args than names is normal: the rest come by keyword or default.
        given = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in known:
                raise TypeError(f"{title} got an unexpected keyword argument {key!r}")
            if key in given:
                raise TypeError(f"{title} got multiple values for argument {key!r}")
            given[key] = value
        missing = []
        for name, init, default, factory in steps:
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
    plan = _all_fields(cls)
    cls.__record_fields__ = plan  # type: ignore[attr-defined]
    cls.__init__ = _init_for(cls, plan)  # type: ignore[misc]
    cls.__setattr__ = _frozen_setattr  # type: ignore[method-assign,assignment]
    cls.__delattr__ = _frozen_delattr  # type: ignore[method-assign,assignment]
    cls.__repr__ = _repr  # type: ignore[method-assign,assignment]
    cls.__eq__ = _eq  # type: ignore[method-assign,assignment]
    cls.__hash__ = _hash  # type: ignore[method-assign,assignment]
    return cls
