"""Kinds implement what they use: the base Kind has one hook (`defaults`), the rest come in
capability groups (airpods/kinds/capabilities.py), and a new kind is one class plus a registry
line. The kind below lives only in this file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airpods import kinds
from airpods.config.loader import load_config
from airpods.host import HostFacts
from airpods.kinds import registry
from airpods.kinds.base import Kind, instance_defaults
from airpods.secrets import SecretStore
from airpods.spec import ContainerSpec
from tests.specs import render_all

CPU = HostFacts(accelerator="cpu", reason="test", physical_cores=4, logical_cores=8)


class Echo(Kind, kinds.HasApi):
    """A tiny kind: an image on one port, and an API key clients send."""

    name = "echo-test"

    def defaults(self, service: str) -> dict[str, Any]:
        return {**instance_defaults(service), "image": "localhost/echo:1",
                "ports": [{"host": 18999, "container": 80}],
                "health": {"path": "/", "expected_status": 200, "timeout_s": 5,
                           "interval_s": 1.0}}

    def api_key(self, spec: ContainerSpec) -> str | None:
        return spec.env.get("ECHO_KEY")


@pytest.fixture
def echo() -> Iterator[None]:
    registry.register(Echo())  # the one registry line a new kind needs
    yield
    del registry._REGISTRY[Echo.name]


def _hooks(cls: type) -> set[str]:
    return {n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}


def test_the_base_kind_has_one_hook_and_the_groups_hold_the_rest() -> None:
    assert _hooks(Kind) == {"defaults"}
    grouped = [h for cap in kinds.CAPABILITIES for h in sorted(_hooks(cap))]
    assert len(grouped) == len(set(grouped)) == 24  # each hook in exactly one group
    # The generic kind knows nothing beyond the base; Ollama only joins a backend list.
    assert not any(isinstance(kinds.get("generic"), cap) for cap in kinds.CAPABILITIES)
    assert [c.__name__ for c in kinds.CAPABILITIES
            if isinstance(kinds.get("ollama"), c)] == ["JoinsBackends"]


def test_a_kind_defined_in_one_file_loads_renders_and_answers_its_capability(
    echo: None, tmp_path: Path
) -> None:
    user = tmp_path / "config.toml"
    user.write_text('[services.e]\nkind = "echo-test"\nenv = { ECHO_KEY = "k-123" }\n')
    loaded = load_config(user, host=CPU, secrets=SecretStore(tmp_path / "secrets"))
    [spec] = render_all(loaded.config, loaded.host, ["e"])
    assert (spec.kind, spec.image, spec.pod) == ("echo-test", "localhost/echo:1", "airpods-e")
    assert spec.ports[0].host_port == 18999 and spec.health and spec.health.path == "/"
    assert spec.command == () and spec.serving is None
    api = kinds.capable("echo-test", kinds.HasApi)
    assert api is not None and api.api_key(spec) == "k-123"
    assert api.ready_check(spec) is None  # a group's hook it does not override: its default
    for cap in (kinds.ServesModels, kinds.RoutesModels, kinds.Renders, kinds.Defers,
                kinds.OwnsKeys, kinds.AddsStatus, kinds.JoinsBackends):
        assert kinds.capable("echo-test", cap) is None
    # What asks for a capability it lacks gets "none", not a call into a no-op.
    from airpods.models.services import serving

    assert serving(spec) is None
