"""The planner: desired specs + actual state → ordered steps (pure)."""

from __future__ import annotations

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
    assert plan.changes_anything()


def test_running_with_same_hash_is_kept() -> None:
    plan = make_plan([spec()], actual={"llamacpp": actual()}, images_present={"localhost/x:1"},
                     volumes_present={"models"}, network_present=True)
    assert actions(plan) == [("keep", "llamacpp"), ("wait", "llamacpp")]
    assert not plan.changes_anything()


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
