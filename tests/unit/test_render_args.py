"""command_args → argv: the one renderer, a pure function."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from airpods.argv import flag_name, render_args
from airpods.secrets import mask_env


def test_examples_from_the_service_plan() -> None:
    args = {
        "model": "/models/qwen.gguf",
        "ctx_size": 4096,
        "host": "0.0.0.0",
        "port": 8080,
        "embeddings": True,
        "no_webui": False,
        "c": 512,
        "lora": ["/models/a.gguf", "/models/b.gguf"],
        "temp": 0.7,
    }
    assert render_args(args) == [
        "--model", "/models/qwen.gguf",
        "--ctx-size", "4096",
        "--host", "0.0.0.0",
        "--port", "8080",
        "--embeddings",
        "-c", "512",
        "--lora", "/models/a.gguf", "--lora", "/models/b.gguf",
        "--temp", "0.7",
    ]


def test_no_shell_splitting_or_injection() -> None:
    hostile = "x; rm -rf / $(reboot) `id` --api-key leaked"
    assert render_args({"alias": hostile}) == ["--alias", hostile]


def test_flag_names() -> None:
    assert flag_name("n_gpu_layers") == "--n-gpu-layers"
    assert flag_name("ctx-size") == "--ctx-size"
    assert flag_name("c") == "-c"


def test_masking() -> None:
    env = {"LLAMA_API_KEY": "sk-123", "OPENAI_API_KEYS": "a;b", "PLAIN": "v", "EMPTY_TOKEN": ""}
    assert mask_env(env) == {
        "LLAMA_API_KEY": "****", "OPENAI_API_KEYS": "****", "PLAIN": "v", "EMPTY_TOKEN": ""
    }


keys = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
scalars = st.one_of(
    st.booleans(), st.integers(-10**9, 10**9), st.text(min_size=0, max_size=20)
)
values = st.one_of(scalars, st.lists(scalars, max_size=4))


def _items(value: object) -> list:
    return value if isinstance(value, list) else [value]


@given(st.dictionaries(keys, values, max_size=8))
def test_length_and_order(args: dict) -> None:
    argv = render_args(args)
    # True → one item, False → none, anything else → flag and value as two items.
    expected = sum(
        1 if v is True else 0 if v is False else 2 for value in args.values() for v in _items(value)
    )
    assert len(argv) == expected
    # Walking the config in order consumes argv exactly: nothing reordered, merged or split.
    pos = 0
    for key, value in args.items():
        for v in _items(value):
            if v is False:
                continue
            assert argv[pos] == flag_name(key)
            pos += 1
            if v is not True:
                assert argv[pos] == str(v)
                pos += 1
    assert pos == len(argv)


@given(st.dictionaries(keys, st.integers(0, 10**6), max_size=8))
def test_int_values_are_flag_value_pairs(args: dict) -> None:
    argv = render_args(args)
    assert len(argv) == 2 * len(args)
    assert argv[0::2] == [flag_name(k) for k in args]
    assert argv[1::2] == [str(v) for v in args.values()]
