"""`@record` answers as `@dataclass(frozen=True)` does: construction, repr, equality, hashing,
immutability, `fields`/`replace`/`asdict`, pickling and subclasses."""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
import sys
from typing import Any

import pytest

from airpods import record as rec
from airpods.errors import FrozenInstanceError
from airpods.record import record


class F:
    """A field's options, made into `dataclasses.field` or `airpods.record.field`."""

    def __init__(self, **options: Any) -> None:
        self.options = options


def as_dataclass(body: dict[str, Any], name: str = "Thing") -> type:
    return _make(body, name, dataclasses.dataclass(frozen=True), dataclasses.field)


def as_record(body: dict[str, Any], name: str = "Thing") -> type:
    return _make(body, name, record, rec.field)


def _make(body: dict[str, Any], name: str, decorate: Any, field: Any) -> type:
    namespace = {key: field(**value.options) if isinstance(value, F) else value
                 for key, value in body.items()}
    namespace["__annotations__"] = dict(body["__annotations__"])
    return decorate(type(name, (), namespace))  # type: ignore[no-any-return]


def both(body: dict[str, Any], name: str = "Thing") -> tuple[type, type]:
    """The same class body as a frozen dataclass and as a record."""
    return as_dataclass(body, name), as_record(body, name)


SHAPES = {
    "plain": {"__annotations__": {"a": "int", "b": "str"}, "b": "x"},
    "options": {"__annotations__": {"a": "int", "hidden": "str", "loose": "float"},
                "hidden": F(default="h", repr=False), "loose": F(default=0.0, compare=False)},
    "unhashed": {"__annotations__": {"a": "int", "tag": "str"}, "tag": F(default="t", hash=False)},
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_record_is_a_frozen_dataclass(shape: str) -> None:
    made_dc, made_rec = both(SHAPES[shape])
    values = [(1,), (2,), (1, "y"), (1, "x"), (math.nan,)]
    for args in values:
        for other in values:
            a, b = made_dc(*args), made_dc(*other)
            x, y = made_rec(*args), made_rec(*other)
            assert repr(x) == repr(a)
            assert (x == y) == (a == b)  # NaN: equal to itself by identity, as in tuples
            assert (x != y) == (a != b)
            if a == b:
                assert hash(x) == hash(y)
            assert hash(x) == hash(a)
    first = made_rec(1)
    assert first == first and first != made_dc(1) and first != (1, "x")
    with pytest.raises(FrozenInstanceError):
        first.a = 2  # type: ignore[misc]
    assert isinstance(FrozenInstanceError("x"), AttributeError)
    assert rec.replace(first, a=3).a == 3
    assert rec.asdict(first) == dataclasses.asdict(made_dc(1))
    assert rec.is_record(first) and rec.is_record(made_rec) and not rec.is_record(made_dc(1))
    def options(f: Any, missing: Any) -> tuple:
        return (f.name, None if f.default is missing else f.default, f.repr, f.compare, f.hash)

    assert [options(f, rec.MISSING) for f in rec.fields(first)] == \
        [options(f, dataclasses.MISSING) for f in dataclasses.fields(made_dc)]


def test_an_unhashable_field_fails_to_hash_as_with_dataclass() -> None:
    made_dc, made_rec = both({"__annotations__": {"env": "dict"}})
    for made in (made_dc, made_rec):
        with pytest.raises(TypeError):
            hash(made({"a": 1}))
    assert made_rec({"a": 1}) == made_rec({"a": 1})


def _outcome(make: Any) -> tuple[str, str]:
    """What a call does: its repr, or the type of what it raised (messages differ by design)."""
    try:
        return "ok", repr(make())
    except Exception as exc:  # noqa: BLE001 (the type is the answer)
        return "raised", type(exc).__name__


INIT_SHAPE = {"__annotations__": {"a": "int", "tags": "list", "hidden": "str", "b": "str"},
              "tags": F(default_factory=list), "hidden": F(default="h", init=False), "b": "x"}


@pytest.mark.parametrize(("args", "kwargs"), [
    ((1,), {}), ((1, [2]), {}), ((1, [2], "y"), {}), ((), {"a": 1, "b": "z"}),
    ((1,), {"tags": [3]}), ((), {}), ((1, [], "y", "extra"), {}), ((1,), {"a": 2}),
    ((1,), {"hidden": "no"}), ((1,), {"nope": 0}),
])
def test_init_takes_and_refuses_what_the_generated_one_does(args: tuple, kwargs: dict) -> None:
    made_dc, made_rec = both(INIT_SHAPE)
    assert _outcome(lambda: made_rec(*args, **kwargs)) == \
        _outcome(lambda: made_dc(*args, **kwargs))


@pytest.mark.parametrize("changes", [{}, {"a": 5}, {"b": "q", "tags": [1]}, {"hidden": "no"},
                                     {"nope": 1}])
def test_replace_and_asdict_answer_as_dataclasses(changes: dict) -> None:
    made_dc, made_rec = both(INIT_SHAPE)
    assert _outcome(lambda: rec.replace(made_rec(1, [2]), **changes)) == \
        _outcome(lambda: dataclasses.replace(made_dc(1, [2]), **changes))
    inner_dc, inner_rec = both({"__annotations__": {"n": "int"}}, name="Inner")
    outer_dc, outer_rec = both({"__annotations__": {"items": "tuple", "by": "dict", "l": "list"}})
    deep_dc = outer_dc((inner_dc(1), inner_dc(2)), {"k": inner_dc(3)}, [inner_dc(4), "s"])
    deep_rec = outer_rec((inner_rec(1), inner_rec(2)), {"k": inner_rec(3)}, [inner_rec(4), "s"])
    assert rec.asdict(deep_rec) == dataclasses.asdict(deep_dc)
    assert type(rec.asdict(deep_rec)["items"]) is tuple
    with pytest.raises(TypeError):
        rec.asdict(outer_rec)
    with pytest.raises(TypeError):
        rec.fields(object())


def test_defaults_are_fresh_post_init_runs_and_deleting_is_refused() -> None:
    seen: list[int] = []
    body = {**INIT_SHAPE, "__post_init__": lambda self: seen.append(self.a)}
    made_dc, made_rec = both(body)
    one, two = made_rec(1), made_rec(2)
    assert one.tags == [] and one.tags is not two.tags and one.hidden == "h"
    assert seen == [1, 2]
    with pytest.raises(FrozenInstanceError):
        del one.a
    with pytest.raises(FrozenInstanceError):
        one.new_name = 1  # type: ignore[attr-defined]
    assert [f.name for f in rec.fields(made_rec)] == [f.name for f in dataclasses.fields(made_dc)]


@pytest.mark.parametrize("body", [
    {"__annotations__": {"a": "int", "b": "str"}, "a": 0},  # a required field after a default
    {"__annotations__": {"a": "list"}, "a": []},  # a mutable default
    {"__annotations__": {"a": "int"}, "a": F(default=1, default_factory=int)},
])
def test_what_dataclass_refuses_at_definition_record_refuses(body: dict) -> None:
    with pytest.raises((TypeError, ValueError)) as refused_dc:
        as_dataclass(body)
    with pytest.raises((TypeError, ValueError)) as refused_rec:
        as_record(body)
    assert refused_rec.type is refused_dc.type


def test_a_dataclasses_field_on_a_record_is_refused() -> None:
    with pytest.raises(TypeError, match="airpods.record.field"):
        record(type("Mixed", (), {"__annotations__": {"a": "int"},
                                  "a": dataclasses.field(default=1)}))


def test_records_pickle_and_copy() -> None:
    made = record(type("Pickled", (), {"__annotations__": {"a": "int", "b": "tuple"},
                                       "__module__": __name__, "b": ()}))
    sys.modules[__name__].Pickled = made  # pickle finds classes by module and name
    try:
        value = made(5, (1, 2))
        assert pickle.loads(pickle.dumps(value)) == value
        assert copy.copy(value) == value and copy.deepcopy(value) == value
    finally:
        delattr(sys.modules[__name__], "Pickled")


def test_a_record_may_extend_a_record() -> None:
    base = record(type("Base", (), {"__annotations__": {"a": "int", "b": "int"}, "b": 0}))
    later = record(type("Later", (base,), {"__annotations__": {"c": "int", "b": "int"},
                                           "c": 9, "b": 7}))
    value = later(1)
    assert [f.name for f in rec.fields(later)] == ["a", "b", "c"]  # a redefined field keeps
    assert (value.a, value.b, value.c) == (1, 7, 9)                # its place, as dataclass
    assert value == later(1, 7, 9) and value != base(1, 7)
    with pytest.raises(FrozenInstanceError):
        value.a = 3  # type: ignore[misc]


def test_field_metadata_is_read_only_as_with_dataclasses() -> None:
    made = record(type("Meta", (), {"__annotations__": {"a": "int", "b": "int"},
                                    "a": rec.field(default=1, metadata={"podman": "x"}),
                                    "b": 2}))
    a, b = rec.fields(made)
    assert a.metadata["podman"] == "x" and dict(b.metadata) == {}
    for metadata in (a.metadata, b.metadata):
        with pytest.raises(TypeError):
            metadata["podman"] = "y"  # type: ignore[index]
