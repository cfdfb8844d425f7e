"""Template resource limits: big results are refused before they are computed, and ordinary
templates (loops, joins, formats, arithmetic) render exactly as before."""

from __future__ import annotations

import pytest

from airpods.config.template_limits import MAX_VALUE, MAX_WORK
from airpods.config.templates import resolve_tree
from airpods.errors import TemplateError
from airpods.host import HostFacts

CPU = HostFacts(accelerator="cpu", reason="test", physical_cores=4, logical_cores=8)


def render(source: str, **service: object) -> str:
    tree = {"services": {"a": {"pod": "p", "container": "c", "value": source, **service}}}
    return resolve_tree(tree, CPU)["services"]["a"]["value"]


def refused(source: str) -> str:
    with pytest.raises(TemplateError) as info:
        render(source)
    assert info.value.path == ("services", "a", "value")
    message = info.value.one_line()
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 2**10 }}-{{ 2**64 }}", f"1024-{2**64}"),
        ("{{ 'ab' * 3 }}{{ [0] * 2 }}", "ababab[0, 0]"),
        ("{{ range(5)|join(',') }}", "0,1,2,3,4"),
        ("{{ names|join(' ', attribute='n') }}", "x y"),
        ("{{ [1, 2, 3]|sum }}|{{ [[1], [2]]|sum(start=[]) }}", "6|[1, 2]"),
        ("{{ '%05d:%s'|format(42, 'x') }}|{{ '%-4s|' % 'ab' }}", "00042:x|ab  |"),
        ("{{ '{}:{:>4}'.format('p', 7) }}", "p:   7"),
        ("{{ 'a-b'.replace('-', '+') }}{{ 'x'.center(5) }}", "a+b  x  "),
        ("{{ 'l1\nl2'|indent(2, first=True) }}", "  l1\n  l2"),
        ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
        ("{% set ns = namespace(t=0) %}{% for i in range(4) %}{% set ns.t = ns.t + i %}"
         "{% endfor %}{{ ns.t }}", "6"),
        ("{% macro twice(x) %}{{ x }}{{ x }}{% endmacro %}{{ twice('ab') }}", "abab"),
        ("{{ 'x' * 65536 }}", "x" * MAX_VALUE),  # exactly the limit is fine
    ],
)
def test_ordinary_templates_render_as_before(source: str, expected: str) -> None:
    assert render(source, names=[{"n": "x"}, {"n": "y"}]) == expected


@pytest.mark.parametrize(
    ("source", "expect"),
    [
        ("{{ 'a' * 10**9 }}", "repeated string or list would be 1000000000 long"),
        ("{{ 10**9 * 'a' }}", "repeated string or list"),
        ("{{ 9**(9**9) }}", "bits; the limit is 4096 bits"),
        ("{{ (2**4000) * (2**4000) }}", "the limit is 4096 bits"),
        ("{{ 'x'.zfill(10**9) }}", "width 1000000000 is over the limit"),
        ("{{ 'x\t' * 60000 }}", "repeated string"),
        ("{{ ('\t' * 60000).expandtabs(1000) }}", "str.expandtabs"),
        ("{{ 'a'|center(10**9) }}", "width 1000000000"),
        ("{{ ('a\n' * 30000)|indent(100) }}", "indented string"),
        ("{{ '{:>999999999}'.format(1) }}", "width 999999999"),
        ("{{ ('{0}' * 20000).format('x' * 1000) }}", "formatted string"),
        ("{{ ('%s' * 20000) % (('x' * 1000),) }}", "formatted string"),
        ("{{ [1, 2]|batch(10**9)|list }}", "count 1000000000"),
        ("{{ ('x' * 60000).translate({120: 'yy'}) }}", "str.translate"),
        ("{{ (range(50000)|list) + (range(50000)|list) }}", "concatenation"),
        ("{{ [[0] * 60000, [0] * 60000]|sum(start=[]) }}", "concatenation"),
        ("{{ 'a'|tojson(indent=1000) }}", "tojson's indent"),
        ("{{ range(10**6)|list }}", "Range too big"),
        ("{% for i in range(MAX) %}{% endfor %}", "too much work"),
        ("{% for i in range(100) %}" + "x" * 50000 + "{% endfor %}", "produce too much text"),
        ("{% for i in range(100) %}{% set s = 'x' * 60000 %}{% endfor %}", "too much text"),
    ],
)
def test_limits_refuse_before_computing(source: str, expect: str) -> None:
    message = refused(source.replace("MAX", str(MAX_WORK + 1)))
    assert "template too costly" in message or "template failed" in message
    assert expect in message, message


def test_the_work_budget_is_shared_by_a_whole_config() -> None:
    """Many cheap templates add up: each uses a third of the budget, the fourth fails."""
    third = MAX_WORK // 3 - 10  # each loop also spends a call on range() and one on itself
    loop = f"{{% for i in range({third}) %}}{{% endfor %}}ok"
    services = {
        f"s{i}": {"pod": f"p{i}", "container": f"c{i}", "value": loop} for i in range(4)
    }
    with pytest.raises(TemplateError, match="too much work") as info:
        resolve_tree({"services": services}, CPU)
    assert info.value.path == ("services", "s3", "value")
    del services["s3"]
    assert resolve_tree({"services": services}, CPU)["services"]["s2"]["value"] == "ok"


def test_lipsum_is_gone_and_namespace_values_are_capped() -> None:
    assert "undefined name 'lipsum'" in refused("{{ lipsum(10**9) }}")
    message = refused(
        "{% set ns = namespace(s='x' * 40000) %}{% set ns.s = ns.s ~ ns.s %}{{ ns.s|length }}"
    )
    assert "namespace value 's'" in message


def test_an_unknown_filter_is_one_line_with_a_suggestion() -> None:
    message = refused("{{ 'x'|uper }}")
    assert "unknown filter 'uper' (did you mean 'upper'?)" in message
    assert "introspection" not in message
