"""`@record` answers as `@dataclass(frozen=True)` does: repr, equality, hashing, immutability."""

from __future__ import annotations

import dataclasses
import math

import pytest

from airpods.record import record


def both(body: dict) -> tuple[type, type]:
    annotations = body["__annotations__"]

    def make(decorate) -> type:
        namespace = {**body, "__annotations__": dict(annotations)}
        return decorate(type("Thing", (), namespace))

    return make(dataclasses.dataclass(frozen=True)), make(record)


SHAPES = {
    "plain": {"__annotations__": {"a": "int", "b": "str"}, "b": "x"},
    "options": {"__annotations__": {"a": "int", "hidden": "str", "loose": "float"},
                "hidden": dataclasses.field(default="h", repr=False),
                "loose": dataclasses.field(default=0.0, compare=False)},
    "unhashed": {"__annotations__": {"a": "int", "tag": "str"},
                 "tag": dataclasses.field(default="t", hash=False)},
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
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.a = 2  # type: ignore[misc]
    assert dataclasses.replace(first, a=3).a == 3 and dataclasses.asdict(first)["a"] == 1
    assert dataclasses.is_dataclass(first)


def test_an_unhashable_field_fails_to_hash_as_with_dataclass() -> None:
    made_dc, made_rec = both({"__annotations__": {"env": "dict"}})
    for made in (made_dc, made_rec):
        with pytest.raises(TypeError):
            hash(made({"a": 1}))
    assert made_rec({"a": 1}) == made_rec({"a": 1})
