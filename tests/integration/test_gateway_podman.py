"""The gateway as the user runs it: the CONTAINER `airpods start gateway` creates, from the
locally built LiteLLM image (the pinned release), in front of a real llama-server container and
a stand-in remote in a container on the same Podman network that COUNTS the model requests it
receives (tests/gateway_stack.py, tests/remote_standin.py).

Keys and 401s, the private lane, failover when the local server is stopped, removed or killed
(every request answered, the median within 2 s and none over 5 s, not only the first) and the
return to local (within 60 s), a failing remote, and revoked keys. Only the container path
shows what a user sees: a recreated llama-server gets a new address on the network, and the
gateway must not keep dialling the old one (LiteLLM's aiohttp DNS cache; the gateway's env sets
AIOHTTP_TTL_DNS_CACHE), nor wait on it: a local connect is bounded to 1.5 s (the guard).
"""

from __future__ import annotations

import json
import statistics
import threading
import time

import httpx
import pytest

from tests.gateway_host import run_gateway
from tests.gateway_stack import (
    CHAT,
    LOCAL_ID,
    PRIVATE,
    REMOTE_ID,
    REMOTE_KEY,
    GatewayStack,
    served_by,
)
from tests.remote_standin import StandinRemote

# The goal is every fallback within 2 s (bench/bench_gateway.py measures and reports it). A test
# on a shared 2-core machine cannot hold every single request to that without flaking, so it
# holds the median to it and each request to 5 s: the fault this guards against (LiteLLM's
# 300 s DNS cache dialling a dead address) took 30-38 s a request.
FALLBACK_WITHIN_S = 2.0
FALLBACK_NEVER_OVER_S = 5.0
BACK_WITHIN_S = 60.0
REQUESTS_EACH = 5


@pytest.fixture(scope="module")
def stack(running_gateway: GatewayStack) -> GatewayStack:
    return running_gateway


def _fault(stack: GatewayStack, fault: str) -> None:
    if fault == "stop":
        out = stack.airpods("stop", "llamacpp", "--timeout", "1")
        assert out.returncode == 0, out.stderr
    elif fault == "remove":
        stack.penv.podman("rm", "-f", "-t", "0", "airpods-llamacpp-server", check=True)
    else:
        stack.penv.podman("kill", "--signal", "KILL", "airpods-llamacpp-server", check=True)


# --- one endpoint, keys -----------------------------------------------------------------------


def test_one_url_one_key_lists_local_and_remote_and_serves_locally(stack: GatewayStack) -> None:
    ports = stack.penv.podman("ps", "--filter", "name=^airpods-gateway-server$",
                              "--format", "{{.Ports}}", check=True).stdout.strip()
    assert ports == f"127.0.0.1:{stack.gateway_port}->4000/tcp", ports
    with stack.client() as client:
        ids = {m["id"] for m in client.get("/v1/models").json()["data"]}
    assert ids == {"tiny", "big-model"}
    before = stack.remote.count
    resp = stack.chat()
    assert resp.status_code == 200, resp.text
    assert served_by(resp) == LOCAL_ID
    assert resp.json()["usage"]["completion_tokens"] > 0
    # Local: no API cost (LiteLLM leaves the header out when the cost is 0/None).
    assert float(resp.headers.get("x-litellm-response-cost") or 0) == 0.0
    assert stack.remote.count == before
    # The remote, through the same URL and key, priced as configured.
    remote = stack.chat({**CHAT, "model": "big-model"})
    assert remote.status_code == 200, remote.text
    assert served_by(remote) == REMOTE_ID
    assert remote.json()["system_fingerprint"] == "standin"
    assert float(remote.headers["x-litellm-response-cost"]) == pytest.approx(5e-6 + 8e-6)


def test_keys_no_key_or_unknown_key_is_401_client_key_works(stack: GatewayStack) -> None:
    assert httpx.get(stack.url + "/v1/models", trust_env=False).status_code == 401
    assert stack.chat(key="not-a-key").status_code == 401
    assert stack.chat(key=stack.client_key("laptop")).status_code == 200
    # The llama-server behind it stays on loopback only.
    out = stack.airpods("start", "llamacpp", "--dry-run", "--json")
    [svc] = json.loads(out.stdout)["services"]
    assert {p["host_ip"] for p in svc["ports"]} == {"127.0.0.1"}


# --- local first, fallback every time, back ------------------------------------------------------


@pytest.mark.parametrize("fault", ["stop", "remove", "kill-9"])
def test_local_down_falls_back_every_time_then_returns(stack: GatewayStack, fault: str) -> None:
    stack.local_again(BACK_WITHIN_S)
    _fault(stack, fault)
    try:
        _falls_back_every_time(stack, fault)
    finally:
        stack.start("llamacpp")  # a new container: a new address on the network
    back = stack.wait_local(BACK_WITHIN_S)
    print(f"{fault}: back to local {back:.1f} s after start returned")
    if fault == "stop":
        status = json.loads(stack.airpods("status", "llamacpp", "--json").stdout)
        route = next(r for r in status["routes"] if r["model"] == "tiny")
        assert (route["route"], route["via"]) == ("local", "llamacpp")


def test_first_request_after_stop_of_a_recreated_server_falls_back_in_time(
    stack: GatewayStack,
) -> None:
    """The sequence that hung 30-45 s a request: llama-server killed and started again (a new
    container, a new address), local traffic on one keep-alive client, `airpods stop`, and a
    request at once. The gateway still dialled the stopped server's address, where nobody
    answers, with LiteLLM's connect timeout = the whole request's (600 s). The guard bounds a
    local connect (model_info.airpods_connect_s): the fallback answers within 2 s."""
    took = []
    with stack.client(timeout=30) as client:
        for _ in range(3):
            stack.local_again(BACK_WITHIN_S)
            _fault(stack, "kill-9")
            stack.start("llamacpp")
            stack.wait_local(BACK_WITHIN_S)
            for _ in range(2):
                assert served_by(client.post("/v1/chat/completions", json=CHAT)) == LOCAL_ID
            _fault(stack, "stop")
            t0 = time.monotonic()
            try:
                resp = client.post("/v1/chat/completions", json=CHAT)
            except httpx.TimeoutException:
                pytest.fail(f"no answer within 30 s after stop; so far {took}")
            took.append(round(time.monotonic() - t0, 2))
            assert resp.status_code == 200 and served_by(resp) == REMOTE_ID, resp.text
    print(f"\nfirst request after stop: {took} s")
    assert statistics.median(took) < FALLBACK_WITHIN_S, took
    assert max(took) < FALLBACK_NEVER_OVER_S, took
    stack.local_again(BACK_WITHIN_S)


def _falls_back_every_time(stack: GatewayStack, fault: str) -> None:
    before = stack.remote.count
    took = []
    for _ in range(REQUESTS_EACH):
        t0 = time.monotonic()
        resp = stack.chat(timeout=30)
        took.append(time.monotonic() - t0)
        assert resp.status_code == 200, resp.text
        assert served_by(resp) == REMOTE_ID  # the header names who answered
        time.sleep(0.5)
    shown = (fault, [round(t, 2) for t in took])
    assert statistics.median(took) < FALLBACK_WITHIN_S, shown
    assert max(took) < FALLBACK_NEVER_OVER_S, shown
    assert stack.remote.count == before + REQUESTS_EACH
    if fault == "stop":
        status = json.loads(stack.airpods("status", "llamacpp", "--json").stdout)
        route = next(r for r in status["routes"] if r["model"] == "tiny")
        assert (route["route"], route["via"]) == ("fallback", "big-model")
    # Private: never to the remote, whatever the model; a clear 503 instead.
    for body in (CHAT, {**CHAT, "model": "big-model"}, {**CHAT, "model": "no-such-model"}):
        private = stack.chat(body, headers=PRIVATE)
        assert private.status_code == 503, private.text
        assert "private" in private.json()["error"]["message"]
    assert stack.remote.count == before + REQUESTS_EACH
    print(f"\n{fault}: fallback {[round(t, 2) for t in took]} s")


def test_private_header_fails_closed(stack: GatewayStack) -> None:
    stack.local_again(BACK_WITHIN_S)
    _fault(stack, "stop")
    try:
        before = stack.remote.count
        odd = [[("X-Airpods-Private", v)] for v in ("2", "private", "", "TRUE")]
        for headers in [*odd, [("x-airpods-private", "0"), ("X-Airpods-Private", "1")]]:
            private = stack.chat(headers=headers)  # type: ignore[arg-type]
            assert private.status_code == 503, (headers, private.text)
        assert stack.remote.count == before
        resp = stack.chat(headers={"X-Airpods-Private": "false"})  # an explicit no
        assert resp.status_code == 200 and served_by(resp) == REMOTE_ID
        assert stack.remote.count == before + 1
    finally:
        stack.start("llamacpp")


def test_private_crash_mid_stream_never_reaches_the_remote(stack: GatewayStack) -> None:
    stack.local_again(BACK_WITHIN_S)
    before = stack.remote.count
    chunks: list[str] = []
    reader, got_first = _long_stream(stack, chunks, headers=PRIVATE)
    assert got_first.wait(60)
    stack.penv.podman("kill", "--signal", "KILL", "airpods-llamacpp-server")
    reader.join(90)
    assert not reader.is_alive()
    assert not any("standin" in c for c in chunks)
    assert stack.remote.count == before
    stack.local_again(BACK_WITHIN_S)


def _long_stream(stack: GatewayStack, chunks: list[str], headers: dict | None = None,
                 errors: list[BaseException] | None = None,
                 timeout: float = 60) -> tuple[threading.Thread, threading.Event]:
    """A streamed request for `tiny` that is still going when the test acts (a reader thread)."""
    from tests.tiny_model import SPECIAL_TOKENS, _vocab

    tokens = _vocab()[0]
    # Random weights end early on an end token: bias them away so the stream keeps going.
    bias = {str(tokens.index(t)): -100 for t in SPECIAL_TOKENS}
    body = {**CHAT, "max_tokens": 1900, "stream": True, "logit_bias": bias}
    got_first = threading.Event()

    def consume() -> None:
        try:
            with stack.client(timeout=timeout) as client, client.stream(
                "POST", "/v1/chat/completions", json=body, headers=headers or {}
            ) as resp:
                for line in resp.iter_lines():
                    chunks.append(line)
                    got_first.set()
        except httpx.HTTPError as exc:
            if errors is not None:
                errors.append(exc)
        finally:
            got_first.set()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    return reader, got_first


def test_recreated_on_a_new_address_while_streaming_no_request_hangs(
    stack: GatewayStack,
) -> None:
    """Streams in flight and new requests while llama-server is removed and created again
    (a new address): each ends, answered or with an error, well within its timeout."""
    stack.local_again(BACK_WITHIN_S)
    old_ip = _address(stack)
    timeout = 60.0
    t0 = time.monotonic()
    ended: dict[str, tuple[float, str]] = {}

    def note(label: str, outcome: str) -> None:
        ended[label] = (round(time.monotonic() - t0, 2), outcome)

    def one_request(label: str) -> None:
        try:  # answered, by either deployment, or a clean error: both end the request
            resp = stack.chat(timeout=timeout)
            note(label, f"{resp.status_code} {served_by(resp)}")
        except httpx.HTTPError as exc:
            note(label, type(exc).__name__)

    def stream(label: str) -> threading.Thread:
        errors: list[BaseException] = []
        reader, got_first = _long_stream(stack, [], errors=errors, timeout=timeout)
        assert got_first.wait(60)

        def watch() -> None:
            reader.join(timeout + 5)
            note(label, type(errors[0]).__name__ if errors else "ended")

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        return watcher

    workers = [stream("stream-1"), stream("stream-2")]
    t0 = time.monotonic()
    stack.penv.podman("rm", "-f", "-t", "0", "airpods-llamacpp-server", check=True)
    note("removed", "")
    for i in range(3):
        workers.append(threading.Thread(target=one_request, args=(f"during-{i}",), daemon=True))
        workers[-1].start()
    stack.start("llamacpp")
    note("started", "")
    for i in range(3):
        workers.append(threading.Thread(target=one_request, args=(f"after-{i}",), daemon=True))
        workers[-1].start()
    for worker in workers:
        worker.join(timeout + 10)
    # The bound: no request outlives its timeout. (Before the guard bounded a local
    # connect, requests sent the moment the old container went took ~40 s: bench/README.)
    slow = {k: v for k, v in ended.items()  # ended by its timeout at the latest (+ slack)
            if v[0] > timeout + 5 and k not in ("removed", "started")}
    assert len(ended) == 10 and not slow, (ended, stack.gateway_log(80))
    print(f"\nrecreated ({old_ip} -> {_address(stack)}): {ended}")
    stack.local_again(BACK_WITHIN_S)


def _address(stack: GatewayStack) -> str:
    out = stack.penv.podman("inspect", "--format", "{{json .NetworkSettings.Networks}}",
                            "airpods-llamacpp-server", check=True).stdout
    return ",".join(n.get("IPAddress", "") for n in json.loads(out).values())


# --- revoked keys; a fallback configured by mistake ----------------------------------------------


@pytest.mark.parametrize("field", ["api_base", "base_url", "user_config"])
def test_a_request_may_not_pick_its_backend_in_the_container(
    stack: GatewayStack, field: str
) -> None:
    """The locally built image refuses a body that names its own backend with a 400 naming the
    field (tests/integration/test_gateway_holes.py checks the same on the host process)."""
    before = stack.remote.count
    resp = stack.chat({**CHAT, "model": "big-model", field: "http://127.0.0.1:9/v1"})
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["error"]["message"] and "not allowed" in resp.text
    assert stack.remote.count == before


def test_removed_client_is_revoked_and_a_new_one_gets_a_new_key(stack: GatewayStack) -> None:
    phone = stack.client_key("phone")
    assert stack.chat(key=phone).status_code == 200
    original = stack.config.read_text()
    stack.config.write_text(original.replace("[services.gateway.clients.phone]\n", ""))
    try:
        stack.start("gateway")  # the keys file changed: the container is recreated
        assert stack.chat(key=phone).status_code == 401
        assert stack.chat(key=stack.client_key("laptop")).status_code == 200
    finally:
        stack.config.write_text(original)
    stack.start("gateway")
    renewed = stack.client_key("phone")  # the table is back: a new key, never the revoked one
    assert renewed != phone
    assert stack.chat(key=phone).status_code == 401
    assert stack.chat(key=renewed).status_code == 200


def test_mistaken_fallback_on_private_model_stays_local(stack: GatewayStack) -> None:
    """A hand-built config (validation bypassed): the model is private AND has a fallback, and
    a remote deployment shares its name. The guard alone must keep it local. A unit-speed
    check of the rendered config: LiteLLM runs as a host process on it (tests/gateway_host.py),
    the only way to hand it a config airpods would refuse to render."""
    from airpods.resolving import resolve
    from airpods.secrets import SecretStore

    def mistake(config: dict) -> None:
        for entry in config["model_list"]:
            if entry["model_name"] == "tiny":
                entry["model_info"]["airpods_private"] = True
        remote = next(e for e in config["model_list"] if e["model_name"] == "big-model")
        twin = json.loads(json.dumps(remote))
        twin["model_name"] = "tiny"
        twin["model_info"]["id"] = "remote:homelab:tiny-twin"
        config["model_list"].append(twin)
        assert config["router_settings"]["fallbacks"] == [{"tiny": ["big-model"]}]

    with pytest.MonkeyPatch.context() as mp:
        for key in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
            mp.setenv(key, stack.env[key])
        mp.setenv("AIRPODS_NO_CACHE", "1")
        spec = resolve(stack.config, environ={}, secrets=SecretStore()).specs["gateway"]
    stack.local_again(BACK_WITHIN_S)
    # The host process reaches a loopback stand-in (it counts too) in place of the container's.
    with StandinRemote(["big-model"], api_key=REMOTE_KEY) as remote, run_gateway(
            spec, stack.tmp / "mistake",
            {"http://llamacpp:8080/v1": f"http://127.0.0.1:{stack.port}/v1",
             stack.remote.base_url: remote.base_url},
            {"STANDIN_KEY": REMOTE_KEY}, mistake) as gw:
        before = remote.count
        for _ in range(3):  # local up: the twin must never be picked
            with gw.client() as client:
                resp = client.post("/v1/chat/completions", json=CHAT)
            assert resp.status_code == 200 and served_by(resp) == LOCAL_ID, resp.text
        _fault(stack, "stop")
        try:
            with gw.client() as client:
                resp = client.post("/v1/chat/completions", json=CHAT)
            assert resp.status_code == 503, resp.text
            assert remote.count == before
        finally:
            stack.start("llamacpp")


# --- a remote that fails -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["500", "hang", "garbage"])
def test_failing_remote_is_a_clear_error_and_local_keeps_serving(
    stack: GatewayStack, mode: str
) -> None:
    stack.local_again(BACK_WITHIN_S)
    stack.remote.mode = mode
    try:
        result: list[httpx.Response] = []
        call = threading.Thread(target=lambda: result.append(
            stack.chat({**CHAT, "model": "big-model"}, timeout=60)))
        call.start()
        # While the remote misbehaves, local requests are served.
        local = stack.chat()
        assert local.status_code == 200 and served_by(local) == LOCAL_ID
        call.join(60)
        assert result, "the gateway did not answer"
        resp = result[0]
        assert resp.status_code >= 400, resp.text
        assert resp.json()["error"]["message"]
    finally:
        stack.remote.mode = "ok"
    # A failing deployment is skipped for cooldown_time (10 s); then the remote is used again.
    deadline = time.monotonic() + 30
    while stack.chat({**CHAT, "model": "big-model"}).status_code != 200:
        assert time.monotonic() < deadline, "the remote was not used again after its cooldown"
        time.sleep(1)
