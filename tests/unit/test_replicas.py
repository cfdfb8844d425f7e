"""`replicas = N` on a llama-server: the copies the loader makes, their names and ports, the
gateway's deployments of one model, `status` routes and which services a name selects.

Pure (no Podman): the servers run in tests/integration/test_replicas_podman.py. Bad values are rows
of tests/unit/test_bad_configs.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from airpods.config.loader import load_config_text
from airpods.host import HostFacts
from airpods.kinds import gateway as g
from airpods.kinds import gateway_routes
from airpods.kinds.render import render_service
from airpods.replica_names import group, replica_of
from airpods.resolved import Resolved, ServiceEntry, Settings, select_services
from airpods.secrets import SecretStore

HOST = HostFacts(accelerator="cpu", reason="test", physical_cores=4, logical_cores=8)
TWO = '[services.llamacpp]\nreplicas = 3\n[services.open-webui]\nenabled = false\n'
GATEWAY = '[services.gateway]\nenabled = true\n'
MODEL = "qwen2.5-0.5b-instruct-q4_k_m"


def _load(text: str, tmp_path: Path, store: SecretStore | None = None):
    return load_config_text(tmp_path / "config.toml", text, host=HOST, environ={},
                            secrets=store or SecretStore(tmp_path / "secrets")).config


def test_replica_one_is_unchanged_and_the_copies_get_names_and_the_next_ports(
        tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")  # the same generated key for both
    plain = _load('[services.open-webui]\nenabled = false\n', tmp_path, store)
    cfg = _load(TWO, tmp_path, store)
    one, two, three = (cfg.services[n] for n in ("llamacpp", "llamacpp-2", "llamacpp-3"))
    # Replica 1 renders exactly as without replicas: nothing running today is recreated.
    spec = render_service("llamacpp", one, cfg, HOST)
    before = render_service("llamacpp", plain.services["llamacpp"], plain, HOST)
    assert spec.config_hash == before.config_hash
    assert [(s.pod, s.container, s.network_aliases, [p.host for p in s.ports])
            for s in (one, two, three)] == [
        ("airpods-llamacpp", "airpods-llamacpp-server", ["llamacpp"], [8080]),
        ("airpods-llamacpp-2", "airpods-llamacpp-2-server", ["llamacpp-2"], [8081]),
        ("airpods-llamacpp-3", "airpods-llamacpp-3-server", ["llamacpp-3"], [8082])]
    # The rest is replica 1's: the one model volume (read-only), the flags, the key.
    for copy in (two, three):
        assert copy.volumes == one.volumes and copy.volumes["models"].mode == "ro"
        assert copy.command_args == one.command_args and copy.env == one.env
    assert list(cfg.services).index("llamacpp-2") == list(cfg.services).index("llamacpp") + 1
    rendered = render_service("llamacpp-2", two, cfg, HOST)
    assert rendered.health is not None and rendered.health.host_port == 8081
    assert [f.name for f in rendered.secret_files] == ["airpods-llamacpp-2-llama-api-key"]


def test_names_the_user_chose_get_the_replica_number(tmp_path: Path) -> None:
    cfg = _load('[services.llamacpp]\nreplicas = 2\npod = "llm"\ncontainer = "llm-c"\n'
                'network_aliases = ["llm"]\n[services.open-webui]\nenabled = false\n', tmp_path)
    two = cfg.services["llamacpp-2"]
    assert (two.pod, two.container, two.network_aliases) == ("llm-2", "llm-c-2", ["llm-2"])


def test_which_service_is_a_copy(tmp_path: Path) -> None:
    cfg = _load(TWO, tmp_path)
    assert replica_of(cfg.services, "llamacpp-2") == "llamacpp"
    assert replica_of(cfg.services, "llamacpp-3") == "llamacpp"
    for other in ("llamacpp", "llamacpp-4", "llamacpp-02", "llamacpp-ui", "gateway", "-2"):
        assert replica_of(cfg.services, other) is None, other
    assert group(cfg.services, "llamacpp-3") == "llamacpp"
    assert group(cfg.services, "gateway") == "gateway"


def test_the_gateway_lists_each_replica_as_a_deployment_of_one_model(tmp_path: Path) -> None:
    cfg = _load(TWO + GATEWAY, tmp_path)
    spec = render_service("gateway", cfg.services["gateway"], cfg, HOST)
    [text] = [f.value for f in spec.config_files if f.target == g.CONFIG_TARGET]
    config = json.loads(text.split("\n", 1)[1])
    local = [m for m in config["model_list"] if m["model_info"]["airpods_backend"] == "local"]
    assert [(m["model_name"], m["model_info"]["id"], m["litellm_params"]["api_base"])
            for m in local] == [
        (MODEL, f"local:llamacpp:{MODEL}", "http://llamacpp:8080/v1"),
        (MODEL, f"local:llamacpp-2:{MODEL}", "http://llamacpp-2:8080/v1"),
        (MODEL, f"local:llamacpp-3:{MODEL}", "http://llamacpp-3:8080/v1")]
    # A dead one is cooled down at once and the request retried on the others.
    assert {m["litellm_params"]["num_retries"] for m in local} == {4}
    assert {m["model_info"]["allowed_fails"] for m in local} == {0}
    # One key for all three: passed once.
    assert {m["litellm_params"]["api_key"] for m in local} == {"os.environ/AIRPODS_LOCAL_KEY_0"}
    assert config["router_settings"]["routing_strategy"] == "least-busy"


def test_a_lone_server_keeps_its_settings_and_the_strategy_is_passed_through(
        tmp_path: Path) -> None:
    cfg = _load(GATEWAY + 'routing_strategy = "simple-shuffle"\n'
                '[services.open-webui]\nenabled = false\n', tmp_path)
    spec = render_service("gateway", cfg.services["gateway"], cfg, HOST)
    [text] = [f.value for f in spec.config_files if f.target == g.CONFIG_TARGET]
    config = json.loads(text.split("\n", 1)[1])
    [local] = [m for m in config["model_list"] if m["model_info"]["airpods_backend"] == "local"]
    assert "num_retries" not in local["litellm_params"]
    assert "allowed_fails" not in local["model_info"]
    assert config["router_settings"]["routing_strategy"] == "simple-shuffle"
    assert config["router_settings"]["num_retries"] == 0  # local first: fallback at once


def test_routes_name_each_deployment_and_a_down_replica_is_served_by_another() -> None:
    table = [
        {"model": "tiny", "deployment": "local:a:tiny", "backend": "local", "where": "a",
         "private": False, "fallbacks": ["big"]},
        {"model": "tiny", "deployment": "local:a-2:tiny", "backend": "local", "where": "a-2",
         "private": False, "fallbacks": ["big"]},
        {"model": "big", "deployment": "remote:r:big", "backend": "remote", "where": "r",
         "private": False, "fallbacks": []},
    ]

    def routes(ready: dict[str, bool]) -> list[tuple]:
        return [(r["deployment"], r["route"], r["via"])
                for r in gateway_routes.routes_now("gw", table, ready)]

    assert routes({"a": True, "a-2": True})[:2] == [("local:a:tiny", "local", "a"),
                                                    ("local:a-2:tiny", "local", "a-2")]
    assert routes({"a": False, "a-2": True})[:2] == [("local:a:tiny", "local", "a-2"),
                                                     ("local:a-2:tiny", "local", "a-2")]
    assert routes({})[:2] == [("local:a:tiny", "fallback", "big"),
                              ("local:a-2:tiny", "fallback", "big")]


def _resolved(entries: list[ServiceEntry]) -> Resolved:
    return Resolved(Settings("n", 1.0, 1, 1), {e.name: e for e in entries}, {}, HOST,
                    Path("/nonexistent"))


def test_naming_a_service_takes_its_replicas_along_and_a_replica_alone() -> None:
    resolved = _resolved([
        ServiceEntry("llamacpp", True, "llama-server", "p1", "c1"),
        ServiceEntry("llamacpp-2", True, "llama-server", "p2", "c2", replica_of="llamacpp"),
        ServiceEntry("gateway", True, "gateway", "p3", "c3"),
    ])
    assert select_services(resolved, ("llamacpp",)) == ["llamacpp", "llamacpp-2"]
    assert select_services(resolved, ("llamacpp-2",)) == ["llamacpp-2"]
    assert select_services(resolved, ("llamacpp", "llamacpp-2")) == ["llamacpp", "llamacpp-2"]
    assert select_services(resolved, ()) == ["llamacpp", "llamacpp-2", "gateway"]
