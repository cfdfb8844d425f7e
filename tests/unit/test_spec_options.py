"""Every pass-through option of ContainerSpec (airpods.spec.PodmanOption) reaches every place
that turns a spec into Podman's terms: the adapter's create arguments and libpod body, the
`--dry-run` podman line, the quadlet unit, and the kube Deployment or, where Kubernetes has no
field for it, a note. A new option is checked here with no new test code: its `example` is set.
"""

from __future__ import annotations

import pytest

from airpods.cli.output import podman_cli_lines
from airpods.engine.args import container_kwargs
from airpods.engine.specgen import _FORMS, container_body, stripped
from airpods.export.kube import render_kube
from airpods.export.quadlet import quote_word, render_quadlet
from airpods.record import replace
from airpods.spec import ContainerSpec, Mount, PortMapping, config_hash, podman_options

OPTIONS = podman_options()


def base() -> ContainerSpec:
    return ContainerSpec(
        service="svc", kind="generic", image="localhost/x:1", image_reason="test",
        accelerator="rocm", pod="airpods-svc", container="airpods-svc-server",
        network="airpods", network_aliases=("svc",), ports=(PortMapping("127.0.0.1", 9, 9),),
        mounts=(Mount("airpods_data", "/data", "rw"),), env={}, command=("run",),
    )


def every_option() -> ContainerSpec:
    return replace(base(), **{name: option.example for name, option in OPTIONS})


def test_every_option_has_an_example_and_a_known_body_form() -> None:
    assert [name for name, _ in OPTIONS][:7] == [
        "devices", "group_add", "cap_drop", "cap_add", "security_opt", "memory", "cpus"]
    for name, option in OPTIONS:
        assert option.example, name
        assert option.body_form in _FORMS, name
        assert option.flag.startswith("--"), name


def test_the_adapter_sends_every_option_as_podman_py_would() -> None:
    from podman.domain.containers_create import CreateMixin

    kwargs = container_kwargs(every_option())
    for name, option in OPTIONS:
        assert kwargs[option.kwarg] == option.to_kwarg(option.example), name
    assert container_body(kwargs) == stripped(CreateMixin._render_payload(dict(kwargs)))


@pytest.mark.parametrize(("name", "option"), OPTIONS, ids=[n for n, _ in OPTIONS])
def test_dry_run_prints_the_flag(name: str, option) -> None:
    run = podman_cli_lines(every_option(), values=())[-1]
    items = option.example if isinstance(option.example, tuple) else (option.to_kwarg(
        option.example),)
    for item in items:
        assert f"{option.flag} {option.text(item)}" in run, name
    assert option.flag not in podman_cli_lines(base(), values=())[-1]


@pytest.mark.parametrize(("name", "option"), OPTIONS, ids=[n for n, _ in OPTIONS])
def test_quadlet_carries_the_option(name: str, option) -> None:
    unit = render_quadlet([every_option()], network="airpods").units["airpods-svc-server.container"]
    lines = unit.splitlines()
    if option.quadlet or option.quadlet_items:
        keys = {option.quadlet, *(v.partition("=")[0] for v in option.quadlet_items.values())}
        assert any(line.partition("=")[0] in keys for line in lines), name
    else:
        assert any(line.startswith(f"PodmanArgs={option.flag} ") for line in lines), name
    bare = render_quadlet([base()], network="airpods").units["airpods-svc-server.container"]
    assert f"{option.flag} " not in bare and (not option.quadlet or option.quadlet not in bare)


def test_kube_carries_or_names_every_option() -> None:
    from airpods.export.kube import _CARRIED

    export = render_kube([every_option()])
    for name, option in OPTIONS:
        if name not in _CARRIED:
            assert any(f"`{option.flag} " in note for note in export.notes), name
            assert f"`{option.flag} " in export.text(), name
    # An item of a carried option that Kubernetes cannot hold is named too.
    odd = replace(every_option(), security_opt=("no-new-privileges", "label=disable"))
    assert any("--security-opt label=disable" in note for note in render_kube([odd]).notes)


def test_an_unset_field_added_later_leaves_the_hash_alone() -> None:
    """A new option at its default must not recreate every container on upgrade."""
    from airpods.record import asdict, field, record

    later = record(type("Later", (ContainerSpec,), {
        "__annotations__": {"added_later": "str | None"}, "added_later": field(default=None)}))
    today = base()
    assert config_hash(later(**asdict(today))) == config_hash(today)
    assert config_hash(later(**asdict(today), added_later="1g")) != config_hash(today)
    # Today's fields hash as they always did, set or not (the pins in test_spec_outputs_pinned).
    assert config_hash(replace(today, memory=None)) == config_hash(today)
    assert config_hash(replace(today, memory="1g")) != config_hash(today)


def test_quote_word_is_used_for_podman_args() -> None:
    odd = replace(base(), memory="1 g")
    unit = render_quadlet([odd], network="airpods").units["airpods-svc-server.container"]
    assert f"PodmanArgs=--memory {quote_word('1 g')}" in unit
