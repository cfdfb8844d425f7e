"""The create bodies airpods sends to libpod are the ones podman-py sent for the same arguments."""

from __future__ import annotations

import pytest

from airpods.engine.args import container_kwargs
from airpods.engine.specgen import container_body, stripped
from airpods.spec import ConfigFile, ContainerSpec, Mount, PortMapping, SecretFile


def spec(**changes) -> ContainerSpec:
    base = dict(
        service="svc", kind="llama-server", image="localhost/airpods/llama-server:1-cpu",
        image_reason="test", accelerator="cpu", pod="airpods-svc", container="airpods-svc-server",
        network="airpods", network_aliases=("svc",),
        ports=(PortMapping("127.0.0.1", 8080, 8080),),
        mounts=(Mount("airpods_models", "/models", "ro"),
                Mount("/srv/prompts", "/prompts", "ro", is_bind=True, relabel=True),
                Mount("airpods_data", "/data", "rw")),
        env={"A": "1", "B": "two words"},
        command=("--model", "/models/m.gguf", "--port", "8080"),
        labels={"io.airpods.service": "svc", "io.airpods.managed": "true"},
    )
    base.update(changes)
    return ContainerSpec(**base)


EVERYTHING = dict(
    entrypoint=("/bin/sh", "-c"),
    secret_files=(SecretFile("airpods-svc-key", "/run/secrets/key", "k\n"),),
    config_files=(ConfigFile("airpods-svc-presets", "/etc/presets.ini", "[*]\n"),),
    devices=("/dev/kfd", "/dev/dri/renderD128"), group_add=("44", "993"),
    cap_drop=("ALL",), cap_add=("CHOWN", "SETUID"), security_opt=("no-new-privileges",),
    memory="4g", cpus=1.5,
)


@pytest.mark.parametrize("changes", [{}, EVERYTHING, {"memory": "512m"}, {"memory": "1073741824"},
                                     {"command": ()}, {"mounts": ()}])
def test_container_body_is_what_podman_py_sent(changes: dict) -> None:
    from podman.domain.containers_create import CreateMixin

    kwargs = container_kwargs(spec(**changes))
    assert container_body(kwargs) == stripped(CreateMixin._render_payload(dict(kwargs)))
