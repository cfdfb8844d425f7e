"""Templates: names in scope, references across services, cycles, errors, the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from airpods.config.templates import is_template, resolve_tree
from airpods.errors import TemplateError
from airpods.host import HostFacts

CPU = HostFacts(accelerator="cpu", reason="test", physical_cores=4, logical_cores=8)
CUDA = HostFacts(accelerator="cuda", reason="test", physical_cores=6, logical_cores=12)


def svc(**keys: Any) -> dict[str, Any]:
    return {"pod": "p", "container": "c", "image": "i", **keys}


def resolve(services: dict[str, Any], host: HostFacts = CPU, **top: Any) -> dict[str, Any]:
    return resolve_tree({"runtime": {"network": "airpods"}, **top, "services": services}, host)


def fail(services: dict[str, Any], **top: Any) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        resolve(services, **top)
    return info.value


def test_plain_values_pass_through_untouched() -> None:
    tree = {"services": {"a": svc(ports=[{"host": 1}], enabled=True)}, "cli": {"x": 1.5}}
    assert resolve_tree(tree, CPU) == tree
    assert not is_template("plain {text}") and is_template("{% if x %}y{% endif %}")


def test_bare_names_inside_a_service() -> None:
    out = resolve(
        {
            "a": svc(
                default_model="m.gguf",
                ports=[{"host": 9000, "container": 8080}],
                vars={"quant": "Q4"},
                command_args={
                    "model": "/models/{{ default_model }}",
                    "port": "{{ ports[0].container }}",
                    "alias": "{{ name }}-{{ quant }}",
                    "stem": "{{ default_model | replace('.gguf', '') }}",
                    "net": "{{ runtime.network }}",
                },
            )
        }
    )
    assert out["services"]["a"]["command_args"] == {
        "model": "/models/m.gguf",
        "port": "8080",  # rendered results stay strings; validation coerces where needed
        "alias": "a-Q4",
        "stem": "m",
        "net": "airpods",
    }


def test_reference_to_another_service_and_chains_in_any_order() -> None:
    out = resolve(
        {
            "first": svc(default_model="{{ services.second.default_model }}"),
            "second": svc(default_model="{{ services.third.vars.model }}"),
            "third": svc(vars={"model": "{{ 'x' ~ '.gguf' }}"}),
        }
    )
    assert out["services"]["first"]["default_model"] == "x.gguf"
    assert out["services"]["second"]["default_model"] == "x.gguf"


def test_hyphenated_service_names_by_subscript() -> None:
    out = resolve(
        {"a-b": svc(default_model="m"), "c": svc(x="{{ services['a-b'].default_model }}")}
    )
    assert out["services"]["c"]["x"] == "m"


def test_cycle_names_every_key() -> None:
    err = fail(
        {
            "a": svc(default_model="{{ services.b.default_model }}"),
            "b": svc(default_model="{{ services.a.default_model }}"),
        }
    )
    assert err.key_path == "services.a.default_model"
    assert err.message == (
        "template cycle: services.a.default_model -> services.b.default_model"
        " -> services.a.default_model"
    )


def test_self_reference_is_a_cycle() -> None:
    err = fail({"a": svc(default_model="{{ default_model }}x")})
    assert "template cycle" in err.message


def test_undefined_name_suggests_the_right_one() -> None:
    err = fail({"llamacpp": svc(default_model="m", command_args={"model": "{{ default_modle }}"})})
    assert err.key_path == "services.llamacpp.command_args.model"
    assert err.message == (
        "undefined name 'default_modle' in template (did you mean 'default_model'?)"
    )
    assert err.one_line() == (
        "config error: services.llamacpp.command_args.model: undefined name 'default_modle' "
        "in template (did you mean 'default_model'?)"
    )


def test_missing_key_in_a_table_names_the_table() -> None:
    err = fail({"a": svc(default_model="m"), "b": svc(x="{{ services.a.defualt_model }}")})
    assert err.key_path == "services.b.x"
    assert "services.a has no key 'defualt_model'" in err.message
    assert "did you mean 'default_model'?" in err.message


def test_undefined_in_a_nested_template_names_the_nested_key() -> None:
    err = fail({"a": svc(default_model="{{ nope }}"), "b": svc(x="{{ services.a.default_model }}")})
    assert err.key_path == "services.a.default_model"


def test_default_filter_works_for_missing_keys() -> None:
    out = resolve({"a": svc(x="{{ services.a.vars.size | default('small') }}", vars={})})
    assert out["services"]["a"]["x"] == "small"


def test_syntax_error() -> None:
    err = fail({"a": svc(default_model="{{ oops")})
    assert err.key_path == "services.a.default_model"
    assert err.message.startswith("template syntax error")


def test_runtime_failure_is_a_config_error() -> None:
    err = fail({"a": svc(x="{{ 1 / 0 }}")})
    assert err.key_path == "services.a.x"
    assert "template failed" in err.message


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ services.a._resolver }}",
        "{{ services.__class__ }}",
        "{{ host.__class__ }}",
        "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    ],
)
def test_sandbox_blocks_internals(source: str) -> None:
    err = fail({"a": svc(x=source)})
    assert err.key_path == "services.a.x"
    assert err.message.startswith("unsafe template: access to attribute")


def test_host_is_per_service() -> None:
    out = resolve(
        {
            "gpu": svc(x="{{ host.accelerator }} {{ host.physical_cores }}"),
            "off": svc(gpu={"enabled": False}, x="{{ host.accelerator }}"),
            "forced": svc(
                gpu={"enabled": True, "force_cpu": "{{ 'true' }}"}, x="{{ host.accelerator }}"
            ),
        },
        host=CUDA,
        runtime={"note": "{{ host.accelerator }}"},
    )
    assert out["services"]["gpu"]["x"] == "cuda 6"
    assert out["services"]["off"]["x"] == "cpu"
    assert out["services"]["forced"]["x"] == "cpu"
    assert out["runtime"]["note"] == "cuda"


def test_openai_backends_lists_enabled_llama_servers() -> None:
    out = resolve(
        {
            "one": svc(kind="llama-server", network_aliases=["one"], ports=[{"container": 8080}]),
            "two": svc(
                kind="llama-server",
                pod="pod-two",
                ports=[{"container": "{{ 9000 + 1 }}"}],
                env={"LLAMA_API_KEY": "k2"},
            ),
            "off": svc(kind="llama-server", enabled=False, ports=[{"container": 1}]),
            "other": svc(kind="ollama", ports=[{"container": 1}]),
            "ui": svc(
                env={
                    "URLS": "{{ openai_backends | map(attribute='url') | join(';') }}",
                    "KEYS": "{{ openai_backends | map(attribute='api_key') | join(';') }}",
                    "NAMES": "{{ openai_backends | map(attribute='name') | join(',') }}",
                }
            ),
        }
    )
    env = out["services"]["ui"]["env"]
    assert env["URLS"] == "http://one:8080/v1;http://pod-two:9001/v1"
    assert env["KEYS"] == ";k2"
    assert env["NAMES"] == "one,two"


def test_openai_backends_cycle_is_reported() -> None:
    err = fail(
        {
            "one": svc(
                kind="llama-server",
                ports=[{"container": 1}],
                env={"LLAMA_API_KEY": "{{ openai_backends | length }}"},
            )
        }
    )
    assert "template cycle" in err.message


def test_rendered_text_is_not_rendered_again() -> None:
    out = resolve({"a": svc(x="{{ '{{ 7 * 7 }}' }}", y="{{ x }}")})
    assert out["services"]["a"]["x"] == "{{ 7 * 7 }}"
    assert out["services"]["a"]["y"] == "{{ 7 * 7 }}"


def test_globals_win_over_service_keys_and_vars() -> None:
    out = resolve({"a": svc(vars={"runtime": "mine"}, x="{{ runtime.network }}")})
    assert out["services"]["a"]["x"] == "airpods"


def test_odd_shapes_do_not_crash_resolution() -> None:
    # Validation reports these; resolution must simply leave them alone.
    tree = {"services": {"a": 5, "b": svc(gpu=3, x="{{ host.accelerator }}")}}
    out = resolve_tree(tree, CPU)
    assert out["services"]["a"] == 5
    assert out["services"]["b"]["x"] == "cpu"
    assert resolve_tree({"services": 5, "x": "{{ services }}"}, CPU)["x"] == "5"


def test_host_memory_vram_and_gpu_name_are_in_scope() -> None:
    host = HostFacts(accelerator="cuda", reason="t", physical_cores=8, logical_cores=16,
                     memory_bytes=64 << 30, vram_bytes=24 << 30, gpu_name="RTX 4090")
    out = resolve({"a": svc(vars={
        "ctx": "{{ 32768 if host.vram_bytes and host.vram_bytes >= 16 * 2**30 else 4096 }}",
        "ram_gb": "{{ host.memory_bytes // 2**30 }}",
        "gpu": "{{ host.gpu_name or 'none' }}"})}, host)
    assert out["services"]["a"]["vars"] == {"ctx": "32768", "ram_gb": "64", "gpu": "RTX 4090"}
    cpu = resolve({"a": svc(vars={"gpu": "{{ host.gpu_name or 'none' }}",
                                  "v": "{{ host.vram_bytes }}"})})
    assert cpu["services"]["a"]["vars"] == {"gpu": "none", "v": "None"}
