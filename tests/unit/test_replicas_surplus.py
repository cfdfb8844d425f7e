"""Which containers `start` recognises as surplus replicas (`replicas = N` lowered): the pure
choice of airpods/engine/surplus.py, and the label a rendered replica carries for it. The
containers are stopped for real in tests/integration/test_replicas_surplus_podman.py."""

from __future__ import annotations

from pathlib import Path

from airpods.config.loader import load_config_text
from airpods.engine.surplus import surplus_replicas
from airpods.host import HostFacts
from airpods.kinds.render import render_service
from airpods.record import replace
from airpods.secrets import SecretStore
from airpods.spec import LABEL_REPLICA_OF, Actual, ContainerSpec, config_hash

HOST = HostFacts(accelerator="cpu", reason="test", physical_cores=4, logical_cores=8)


def _spec(service: str, replica_of: str = "") -> ContainerSpec:
    return ContainerSpec(service=service, kind="llama-server", image="i", image_reason="r",
                         accelerator="cpu", pod=f"p-{service}", container=f"c-{service}",
                         network="n", network_aliases=(), ports=(), mounts=(), env={},
                         command=(), replica_of=replica_of)


def _running(service: str, replica_of: str = "") -> Actual:
    return Actual(service=service, container=f"c-{service}", pod=f"p-{service}",
                  state="running", config_hash="h", image="i", replica_of=replica_of)


def test_a_rendered_replica_is_labelled_with_its_service_and_replica_one_is_not(
        tmp_path: Path) -> None:
    cfg = load_config_text(tmp_path / "config.toml", "[services.llamacpp]\nreplicas = 2\n",
                           host=HOST, environ={}, secrets=SecretStore(tmp_path / "s")).config
    one = render_service("llamacpp", cfg.services["llamacpp"], cfg, HOST)
    two = render_service("llamacpp-2", cfg.services["llamacpp-2"], cfg, HOST)
    assert two.labels[LABEL_REPLICA_OF] == "llamacpp" and two.replica_of == "llamacpp"
    assert LABEL_REPLICA_OF not in one.labels and LABEL_REPLICA_OF not in \
        render_service("open-webui", cfg.services["open-webui"], cfg, HOST).labels
    # Hashed: a replica started before the label existed is recreated once, with it.
    assert config_hash(replace(two, replica_of="")) != two.config_hash


def test_replicas_past_the_count_are_surplus_with_one_line_each() -> None:
    specs = [_spec("llamacpp"), _spec("gateway")]  # replicas = 3 lowered to 1
    actual = {"llamacpp": _running("llamacpp"), "gateway": _running("gateway"),
              "llamacpp-3": _running("llamacpp-3", "llamacpp"),
              "llamacpp-2": _running("llamacpp-2", "llamacpp")}
    found = surplus_replicas(specs, actual, {"llamacpp", "gateway"})
    assert [(a.service, line) for a, line in found] == [
        ("llamacpp-2", "llamacpp-2: no longer in services.llamacpp.replicas = 1"),
        ("llamacpp-3", "llamacpp-3: no longer in services.llamacpp.replicas = 1")]
    # 3 lowered to 2: only the third goes, and the line says 2.
    specs.append(_spec("llamacpp-2", "llamacpp"))
    found = surplus_replicas(specs, actual, {"llamacpp", "llamacpp-2", "gateway"})
    assert [(a.service, line) for a, line in found] == [
        ("llamacpp-3", "llamacpp-3: no longer in services.llamacpp.replicas = 2")]


def test_nothing_that_is_not_a_surplus_replica_of_a_service_being_started() -> None:
    actual = {
        # a copy of another service, not started now (`start llamacpp` leaves it alone)
        "other-2": _running("other-2", "other"),
        # named like a replica but no replica: a service deleted from the config (`stop` removes
        # it), or another airpods container
        "llamacpp-4": _running("llamacpp-4"),
        # once a replica, now declared in the configuration: converged as that service
        "llamacpp-2": _running("llamacpp-2", "llamacpp"),
    }
    specs = [_spec("llamacpp"), _spec("llamacpp-2")]
    assert surplus_replicas(specs, actual, {"llamacpp", "llamacpp-2", "other"}) == []
    # `start llamacpp-2` alone starts no replica's service: llamacpp's copies are not its own.
    assert surplus_replicas([_spec("llamacpp-2", "llamacpp")],
                            {"llamacpp-3": _running("llamacpp-3", "llamacpp")},
                            {"llamacpp", "llamacpp-2"}) == []


def test_a_port_a_surplus_replica_holds_does_not_refuse_the_start() -> None:
    """Removed before anything is created: e.g. replicas = 3 lowered to 1 and another service
    moved onto replica 3's port in the same edit."""
    import socket

    import pytest

    from airpods.engine.apply import check_ports
    from airpods.engine.plan import make_plan
    from airpods.errors import PortInUse
    from airpods.spec import PortMapping

    with socket.socket() as holder:  # replica 3's conmon holds it like this
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        wanted = replace(_spec("other"), ports=(PortMapping("127.0.0.1", port, 8080),))
        plan = make_plan([wanted], actual={}, images_present={"i"}, volumes_present=set(),
                         network_present=True)
        third = replace(_running("llamacpp-3", "llamacpp"), ports=(("127.0.0.1", port, 8080),))
        assert check_ports(plan, {}, [third]) is None
        with pytest.raises(PortInUse):
            check_ports(plan, {})
