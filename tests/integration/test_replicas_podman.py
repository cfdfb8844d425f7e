"""`replicas = 2` on a llama-server, on real Podman: two containers of the tiny model started
by `airpods start`, both answering, and the gateway CONTAINER balancing them (least-busy) and
routing around a killed one.

The stack is tests/gateway_stack.py's (llamacpp as `tiny`, the counting stand-in remote as
`big-model`, `tiny` falling back to it) with `replicas = 2`: llamacpp on stack.port and
llamacpp-2 on stack.port + 1. Which deployment answered is LiteLLM's x-litellm-model-id header.
"""

from __future__ import annotations

import collections
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.gateway_stack import CHAT, LOCAL_ID, GatewayStack, gateway_stack, served_by
from tests.stack_config import TINY_ARGS

SECOND_ID = "local:llamacpp-2:tiny"
WITHIN_S = 2.0  # a dead replica is routed around within this (issue 22)
BALANCE_REQUESTS = 40
PARALLEL = 4
LONG = {**CHAT, "max_tokens": 96}


@pytest.fixture(scope="module")
def stack(podman_env, llama_image, litellm_image, tiny_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replicas")
    with gateway_stack(podman_env, llama_image, litellm_image, tiny_model, tmp,
                       replicas=2) as stack:
        stack.start("gateway")
        yield stack


def _direct(stack: GatewayStack, port: int) -> httpx.Response:
    key = stack.config_get("services.llamacpp.env.LLAMA_API_KEY")
    return httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=CHAT,
                      headers={"Authorization": f"Bearer {key}"}, timeout=30, trust_env=False)


def test_start_runs_both_replicas_on_consecutive_ports(stack: GatewayStack) -> None:
    out = stack.airpods("status", "llamacpp", "--json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    rows = {s["name"]: s for s in status["services"]}
    assert set(rows) == {"llamacpp", "llamacpp-2"}, rows  # naming llamacpp takes its replica
    assert rows["llamacpp"]["url"] == f"http://127.0.0.1:{stack.port}"
    assert rows["llamacpp-2"]["url"] == f"http://127.0.0.1:{stack.port + 1}"
    assert all(r["state"] == "running" and r["health"] == "ready" for r in rows.values()), rows
    names = stack.penv.podman("ps", "--format", "{{.Names}}", check=True).stdout.split()
    assert {"airpods-llamacpp-server", "airpods-llamacpp-2-server"} <= set(names)
    # One model volume, mounted read-only in both.
    mounts = stack.penv.podman("inspect", "--format", "{{range .Mounts}}{{.Name}}:{{.RW}} {{end}}",
                               "airpods-llamacpp-server", "airpods-llamacpp-2-server",
                               check=True).stdout.split()
    assert len(set(mounts)) == 1 and mounts[0].endswith(":false"), mounts
    for port in (stack.port, stack.port + 1):  # both answer, with the one key
        resp = _direct(stack, port)
        assert resp.status_code == 200, resp.text
        assert resp.json()["usage"]["completion_tokens"] > 0
    routes = [r for r in status["routes"] if r["model"] == "tiny"]
    assert {r["deployment"] for r in routes} == {LOCAL_ID, SECOND_ID}, routes
    assert {(r["route"], r["via"]) for r in routes} == {("local", "llamacpp"),
                                                          ("local", "llamacpp-2")}, routes


def test_a_replica_is_addressed_by_its_name(stack: GatewayStack) -> None:
    logs = stack.airpods("logs", "llamacpp-2", "-n", "20")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.strip(), "replica 2's own log"
    out = stack.airpods("stop", "llamacpp-2", "--timeout", "1")
    assert out.returncode == 0 and "llamacpp-2" in out.stdout + out.stderr, out.stderr
    try:
        status = json.loads(stack.airpods("status", "--json").stdout)
        states = {s["name"]: s["state"] for s in status["services"]}
        assert states["llamacpp"] == "running" and states["llamacpp-2"] != "running", states
        text = stack.airpods("status").stdout  # one line per deployment, replica 1 serving
        assert f"tiny [{SECOND_ID}] -> local (llamacpp)" in text, text
    finally:
        stack.start("llamacpp-2")


def _spread(stack: GatewayStack, n: int, body: dict | None = None,
            parallel: int = PARALLEL) -> tuple[collections.Counter, list[float]]:
    def one(_: int) -> tuple[str, float]:
        t0 = time.monotonic()
        resp = stack.chat(body, timeout=60)
        assert resp.status_code == 200, resp.text
        return served_by(resp), time.monotonic() - t0

    with ThreadPoolExecutor(parallel) as pool:
        done = list(pool.map(one, range(n)))
    return collections.Counter(d for d, _ in done), [t for _, t in done]


def test_gateway_spreads_requests_over_both(stack: GatewayStack) -> None:
    """least-busy (the default) sends each request to the deployment with the fewest in flight,
    the first on a tie: requests that overlap spread, so they are made long enough to overlap."""
    before = stack.remote.count
    split, took = _spread(stack, BALANCE_REQUESTS, LONG)
    print(f"\nleast-busy, {BALANCE_REQUESTS} requests {PARALLEL} at a time: {dict(split)}; "
          f"median {statistics.median(took) * 1000:.0f} ms")
    assert set(split) == {LOCAL_ID, SECOND_ID}, split
    assert min(split.values()) >= BALANCE_REQUESTS // 10, split
    assert stack.remote.count == before  # balanced locally, never sent away


@pytest.mark.parametrize("victim", ["llamacpp", "llamacpp-2"])
def test_a_killed_replica_is_routed_around(stack: GatewayStack, victim: str) -> None:
    survivor = SECOND_ID if victim == "llamacpp" else LOCAL_ID
    before = stack.remote.count
    stack.penv.podman("kill", "--signal", "KILL", f"airpods-{victim}-server", check=True)
    try:
        took, who = [], []
        for _ in range(10):
            t0 = time.monotonic()
            resp = stack.chat(timeout=30)
            took.append(time.monotonic() - t0)
            assert resp.status_code == 200, resp.text
            who.append(served_by(resp))
        print(f"\n{victim} killed: {[round(t, 2) for t in took]} s by {collections.Counter(who)}")
        assert max(took) < WITHIN_S, took
        assert set(who) == {survivor}, who
        assert stack.remote.count == before  # the other replica answered, not the fallback
        # Under load too: every request answered, by the survivor (one server with one
        # thread now takes all PARALLEL at once: the time is its queue, reported, held to 5 s).
        split, loaded = _spread(stack, 12)
        print(f"under load ({PARALLEL} at a time): median {statistics.median(loaded):.2f} s, "
              f"max {max(loaded):.2f} s")
        assert set(split) == {survivor} and max(loaded) < 5.0, (split, loaded)
    finally:
        stack.start(victim)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # both serve again once it is back (its cooldown ends)
        split, _ = _spread(stack, 8)
        if len(split) == 2:
            break
        time.sleep(1)
    assert len(split) == 2, split


def test_routing_strategy_is_passed_to_litellm(stack: GatewayStack) -> None:
    """simple-shuffle picks at random: even one request at a time reaches both."""
    out = stack.airpods("config", "set", "services.gateway.routing_strategy", "simple-shuffle")
    assert out.returncode == 0, out.stderr
    stack.start("gateway")
    split, took = _spread(stack, BALANCE_REQUESTS, parallel=1)
    print(f"\nsimple-shuffle, {BALANCE_REQUESTS} requests one at a time: {dict(split)}; "
          f"median {statistics.median(took) * 1000:.0f} ms")
    assert set(split) == {LOCAL_ID, SECOND_ID}, split
    assert min(split.values()) >= BALANCE_REQUESTS // 5, split  # 50 % expected; 20 % at least


# --- refused in one line, exit 2, nothing started ------------------------------------------------


def _lone_config(podman_env, llama_image, tmp_path, tiny_model, port: int, settings: str,
                 args: str = TINY_ARGS):
    import secrets
    import subprocess
    import sys

    from tests.gateway_stack import network_of
    from tests.stack_config import airpods_env, llama_config

    config = tmp_path / "config.toml"
    config.write_text(llama_config(llama_image, port, f"airpods_it_rep_{secrets.token_hex(3)}",
                                   network=network_of(podman_env), settings=settings, args=args))
    env = airpods_env(podman_env.env, tmp_path)

    def airpods(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "airpods", "--config", str(config), *argv],
                              env=env, capture_output=True, text=True, timeout=300)

    assert airpods("models", "add", str(tiny_model)).returncode == 0
    return airpods


def _pods(podman_env) -> list[str]:
    return podman_env.podman("pod", "ps", "--format", "{{.Name}}", check=True).stdout.split()


def test_a_replica_port_held_is_one_line_exit_2_nothing_started(
        podman_env, llama_image, tiny_model, tmp_path) -> None:
    import socket

    from tests.sandbox import free_port_run

    port = free_port_run(2)
    airpods = _lone_config(podman_env, llama_image, tmp_path, tiny_model, port, "replicas = 2")
    before = _pods(podman_env)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port + 1))
        holder.listen()
        out = airpods("start", "llamacpp")
    try:
        assert out.returncode == 2, out.stderr
        [line] = [ln for ln in out.stderr.splitlines() if ln.startswith("airpods:")]
        assert "services.llamacpp.replicas" in line and f"port {port + 1}" in line, line
        assert "Traceback" not in out.stderr
        assert _pods(podman_env) == before  # neither replica was created
    finally:
        airpods("stop", "--remove-volumes", "--yes", "llamacpp")


def test_replicas_that_do_not_fit_together_are_refused(podman_env, llama_image, tiny_model,
                                                        tmp_path) -> None:
    """One server fits, two do not: the fit check counts every replica."""
    from airpods.fit import RAM_HEADROOM, kv_bytes_per_token
    from airpods.gguf_meta import read_meta
    from airpods.host import ram_total
    from tests.sandbox import free_port_run

    per_token = kv_bytes_per_token(read_meta(tiny_model))
    budget = int((ram_total() or 0) * (1 - RAM_HEADROOM))
    ctx = int(budget * 0.6) // per_token  # one needs 60 % of what may be used; two, 120 %
    port = free_port_run(2)
    airpods = _lone_config(podman_env, llama_image, tmp_path, tiny_model, port, "replicas = 2",
                           args=f"threads = 1\nctx_size = {ctx}\n")
    before = _pods(podman_env)
    try:
        out = airpods("start", "llamacpp")
        assert out.returncode == 2, out.stderr
        [line] = [ln for ln in out.stderr.splitlines() if ln.startswith("airpods:")]
        assert line.startswith("airpods: services.llamacpp.replicas: 2 servers of tiny.gguf "
                               "need 2 x "), line
        assert "set services.llamacpp.replicas to at most 1" in line, line
        print(f"\n{line}")
        assert _pods(podman_env) == before
        # The dry run counts every replica too: the same line, the same exit code (each
        # server's own estimate, which fits, is still printed).
        for argv in (("--dry-run",), ("--dry-run", "--json")):
            dry = airpods("start", "llamacpp", *argv)
            assert dry.returncode == 2, dry.stdout + dry.stderr
            assert [ln for ln in dry.stderr.splitlines() if ln.startswith("airpods:")] == [line]
        assert dry.stdout.startswith("{") and "Traceback" not in dry.stderr
        assert "llamacpp-2: tiny.gguf" in airpods("start", "llamacpp", "--dry-run").stdout
        # doctor too: a blocking check (exit 1), with the fix.
        doctor = airpods("doctor")
        [fit] = [ln for ln in doctor.stdout.splitlines()
                 if ln.startswith("FAIL") and "2 replicas together" in ln]
        assert doctor.returncode == 1 and "start refuses" in fit, doctor.stdout
        assert "at most 1" in doctor.stdout, doctor.stdout
        print(fit)
        assert _pods(podman_env) == before
        # One server of it is not refused (the per-server check only warns): dry-run says so.
        single = airpods("config", "set", "services.llamacpp.replicas", "1")
        assert single.returncode == 0, single.stderr
        dry = airpods("start", "llamacpp", "--dry-run")
        assert dry.returncode == 0 and "fits in RAM" in dry.stdout, dry.stdout + dry.stderr
    finally:
        airpods("stop", "--remove-volumes", "--yes", "llamacpp")
