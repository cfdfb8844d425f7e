"""The planner: desired specs + actual state → ordered steps (pure)."""

from __future__ import annotations

import pytest

from airpods.engine.plan import make_plan
from airpods.spec import Actual, ContainerSpec, Health, Mount, PortMapping


def spec(name: str = "llamacpp", digest: str = "h1", image: str = "localhost/x:1") -> ContainerSpec:
    return ContainerSpec(
        service=name, kind="llama-server", image=image, image_reason="test", accelerator="cpu",
        pod=f"{name}-pod", container=f"{name}-ctr", network="airpods", network_aliases=(name,),
        ports=(PortMapping("127.0.0.1", 8080, 8080),),
        mounts=(Mount("models", "/models", "ro"), Mount("/srv/x", "/x", "rw", is_bind=True)),
        env={}, command=("--port", "8080"),
        health=Health("/health", 200, 10, 1, 8080), config_hash=digest,
    )


def actual(name: str = "llamacpp", digest: str = "h1", state: str = "running") -> Actual:
    return Actual(service=name, container=f"{name}-ctr", pod=f"{name}-pod", state=state,
                  config_hash=digest, image="localhost/x:1")


def actions(plan) -> list[tuple[str, str]]:
    return [(s.action, s.target) for s in plan.steps]


def test_fresh_start_creates_everything_in_order() -> None:
    plan = make_plan([spec()], actual={}, images_present=set(), volumes_present=set(),
                     network_present=False)
    assert actions(plan) == [
        ("pull", "localhost/x:1"), ("create-network", "airpods"), ("create-volume", "models"),
        ("create", "llamacpp"), ("start", "llamacpp"), ("wait", "llamacpp"),
    ]


def test_running_with_same_hash_is_kept() -> None:
    plan = make_plan([spec()], actual={"llamacpp": actual()}, images_present={"localhost/x:1"},
                     volumes_present={"models"}, network_present=True)
    assert actions(plan) == [("keep", "llamacpp"), ("wait", "llamacpp")]


def test_changed_config_recreates_only_that_service() -> None:
    plan = make_plan(
        [spec("llamacpp", "new"), spec("other", "h1")],
        actual={"llamacpp": actual("llamacpp", "old"), "other": actual("other", "h1")},
        images_present={"localhost/x:1"}, volumes_present={"models"}, network_present=True,
        wait=False,
    )
    assert actions(plan) == [
        ("remove", "llamacpp"), ("create", "llamacpp"), ("start", "llamacpp"), ("keep", "other"),
    ]
    assert plan.of("remove")[0].reason == "configuration changed"


def test_exited_container_is_recreated_and_bind_mounts_need_no_volume() -> None:
    plan = make_plan([spec()], actual={"llamacpp": actual(state="exited")},
                     images_present={"localhost/x:1"}, volumes_present={"models"},
                     network_present=True)
    assert actions(plan)[:3] == [("remove", "llamacpp"), ("create", "llamacpp"),
                                 ("start", "llamacpp")]
    assert "exited" in plan.steps[0].reason
    assert not plan.of("create-volume")


def bare_pod(name: str = "llamacpp", digest: str = "h1", state: str = "running") -> Actual:
    """What an interrupted start leaves: the pod (and its infra container), no service container."""
    return Actual(service=name, container="", pod=f"{name}-pod", state=state, config_hash=digest,
                  image="localhost/x:1", ports=(("127.0.0.1", 8080, 8080),))


def test_pod_without_container_is_removed_then_recreated_even_with_the_same_hash() -> None:
    # Its infra container is running and carries the service's labels (hash included): keeping
    # it would leave the service without a server; creating beside it would hit its name.
    plan = make_plan([spec()], actual={"llamacpp": bare_pod()},
                     images_present={"localhost/x:1"}, volumes_present={"models"},
                     network_present=True)
    assert actions(plan) == [("remove", "llamacpp"), ("create", "llamacpp"),
                             ("start", "llamacpp"), ("wait", "llamacpp")]
    assert plan.steps[0].reason == "pod llamacpp-pod has no container"


def test_created_but_never_started_container_is_recreated() -> None:
    plan = make_plan([spec()], actual={"llamacpp": actual(state="created")},
                     images_present={"localhost/x:1"}, volumes_present={"models"},
                     network_present=True, wait=False)
    assert actions(plan) == [("remove", "llamacpp"), ("create", "llamacpp"),
                             ("start", "llamacpp")]
    assert "created" in plan.steps[0].reason


def test_ports_held_by_the_services_own_bare_pod_do_not_refuse_the_start() -> None:
    import socket

    from airpods.engine.apply import check_ports
    from airpods.errors import PortInUse
    from airpods.record import replace

    with socket.socket() as holder:  # the bare pod's conmon holds the port like this
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        wanted = replace(spec(), ports=(PortMapping("127.0.0.1", port, 8080),))
        left = replace(bare_pod(), ports=(("127.0.0.1", port, 8080),))
        plan = make_plan([wanted], actual={"llamacpp": left}, images_present={"localhost/x:1"},
                         volumes_present={"models"}, network_present=True)
        assert actions(plan)[:2] == [("remove", "llamacpp"), ("create", "llamacpp")]
        assert check_ports(plan, {"llamacpp": left}) is None  # the pod goes before the create
        # The port is really taken: held by anything else, the same plan is refused.
        with pytest.raises(PortInUse) as info:
            check_ports(plan, {})
        assert info.value.port == port
