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


def _outcome(make) -> tuple[str, str]:
    """What a call does: its repr, or the type of what it raised (messages differ by design)."""
    try:
        return "ok", repr(make())
    except Exception as exc:  # noqa: BLE001 (the type is the answer)
        return "raised", type(exc).__name__


INIT_SHAPE = {"__annotations__": {"a": "int", "tags": "list", "hidden": "str", "b": "str"},
              "tags": dataclasses.field(default_factory=list),
              "hidden": dataclasses.field(default="h", init=False),
              "b": "x"}


@pytest.mark.parametrize(("args", "kwargs"), [
    ((1,), {}), ((1, [2]), {}), ((1, [2], "y"), {}), ((), {"a": 1, "b": "z"}),
    ((1,), {"tags": [3]}), ((), {}), ((1, [], "y", "extra"), {}), ((1,), {"a": 2}),
    ((1,), {"hidden": "no"}), ((1,), {"nope": 0}),
])
def test_init_takes_and_refuses_what_the_generated_one_does(args: tuple, kwargs: dict) -> None:
    made_dc, made_rec = both(INIT_SHAPE)
    assert _outcome(lambda: made_rec(*args, **kwargs)) == \
        _outcome(lambda: made_dc(*args, **kwargs))


def test_defaults_are_fresh_post_init_runs_and_deleting_is_refused() -> None:
    seen = []
    body = {**INIT_SHAPE, "__post_init__": lambda self: seen.append(self.a)}
    made_dc, made_rec = both(body)
    one, two = made_rec(1), made_rec(2)
    assert one.tags == [] and one.tags is not two.tags and one.hidden == "h"
    assert seen == [1, 2]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del one.a
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.new_name = 1  # type: ignore[attr-defined]
    assert [f.name for f in dataclasses.fields(made_rec)] == \
        [f.name for f in dataclasses.fields(made_dc)]


def test_a_required_field_after_a_default_is_refused_at_definition() -> None:
    body = {"__annotations__": {"a": "int", "b": "str"}, "a": 0}
    for decorate in (dataclasses.dataclass(frozen=True), record):
        with pytest.raises(TypeError):
            decorate(type("Thing", (), {**body, "__annotations__": dict(body["__annotations__"])}))


def test_records_pickle_and_copy() -> None:
    import copy
    import pickle

    made = record(type("Pickled", (), {"__annotations__": {"a": "int"}, "__module__": __name__}))
    globals()["Pickled"] = made  # pickle finds classes by module and name
    try:
        value = made(5)
        assert pickle.loads(pickle.dumps(value)) == value
        assert copy.copy(value) == value and copy.deepcopy(value) == value
    finally:
        del globals()["Pickled"]


def test_a_frozen_dataclass_may_extend_a_record() -> None:
    base = record(type("Base", (), {"__annotations__": {"a": "int"}}))
    later = dataclasses.make_dataclass("Later", [("b", "int", dataclasses.field(default=0))],
                                       bases=(base,), frozen=True)
    value = later(1, 2)
    assert (value.a, value.b) == (1, 2) and value == later(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.a = 3
    with pytest.raises(TypeError):
        dataclasses.make_dataclass("Loose", [("b", "int")], bases=(base,))
