"""Readiness against a real, scriptable local HTTP server (and a fake clock for the schedule)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from airpods.engine import readiness
from airpods.engine.probes import probe_many, probe_once
from airpods.engine.readiness import (
    ContainerState,
    ReadinessEvent,
    next_poll_interval,
    wait_ready,
)
from airpods.errors import LocalTransportError
from airpods.kinds.llama_server import expected_model_ids, serving
from airpods.localhttp import LocalHTTP, Reply
from airpods.record import replace
from airpods.spec import ContainerSpec, Health, SecretFile

LOADING_BODY = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}

# A script maps (path, headers, seconds since the server was created) -> (status, JSON body).
Script = Callable[[str, dict, float], "tuple[int, object]"]


class ScriptedServer:
    """A ThreadingHTTPServer on 127.0.0.1 whose answers a test scripts over time.

    The port is bound at construction but only listened on after `listen()` (or after
    `listen_after` seconds): a bound, non-listening TCP socket refuses connections on Linux, which
    is exactly what a container that has not started its server yet looks like from the host.
    """

    def __init__(self, script: Script, *, listen_after: float | None = 0.0, delay: float = 0.0):
        self.script = script
        self.delay = delay
        self.t0 = time.monotonic()
        self.requests: list[tuple[str, dict]] = []
        self.listening_at: float | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; without TCP_NODELAY, Nagle + delayed ACK
            # would add ~40 ms to every answer (llama-server's own server sets TCP_NODELAY).
            disable_nagle_algorithm = True

            def do_GET(self):  # noqa: N802 (http.server's naming)
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append((self.path, headers))
                if outer.delay:
                    time.sleep(outer.delay)
                status, body = outer.script(self.path, headers, time.monotonic() - outer.t0)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up (its timeout ran out)
                    self.wfile.write(data)

            def log_message(self, *args):
                pass

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass

        self.httpd = QuietServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.httpd.daemon_threads = True
        self.httpd.server_bind()
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        if listen_after == 0.0:
            self.listen()
        elif listen_after is not None:
            self._timer = threading.Timer(listen_after, self.listen)
            self._timer.start()

    def listen(self) -> None:
        self.httpd.server_activate()
        self.listening_at = time.monotonic()
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._timer:
            self._timer.cancel()
        if self._thread:
            self.httpd.shutdown()
        self.httpd.server_close()

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]


@pytest.fixture
def servers():
    made: list[ScriptedServer] = []

    def make(script: Script, **kw) -> ScriptedServer:
        srv = ScriptedServer(script, **kw)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.close()


def make_spec(
    port: int | None,
    *,
    kind: str = "generic",
    service: str = "svc",
    command: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    timeout_s: float = 10.0,
    interval_s: float = 1.0,
    path: str = "/health",
    health: bool = True,
) -> ContainerSpec:
    spec = ContainerSpec(
        service=service,
        kind=kind,
        image="localhost/test:latest",
        image_reason="test",
        accelerator="cpu",
        pod=f"airpods-{service}",
        container=f"airpods-{service}-server",
        network="airpods",
        network_aliases=(service,),
        ports=(),
        mounts=(),
        env=env or {},
        command=command,
        health=Health(path, 200, timeout_s, interval_s, port) if health else None,
    )
    if kind != "llama-server":
        return spec
    # The typed settings llama-server's hooks read, as rendering sets them from command_args
    # (here written as the argv they render to: `--flag value` pairs).
    args = {flag.lstrip("-").replace("-", "_"): value
            for flag, value in zip(command[::2], command[1::2], strict=True)}
    svc = SimpleNamespace(command_args=args, mode="single")
    return replace(spec, serving=serving(spec, svc))  # type: ignore[arg-type]


LLAMA_CMD = ("--model", "/models/tiny.gguf", "--alias", "tiny", "--port", "8080")


def running() -> ContainerState:
    return ContainerState(running=True, status="running")


def ready_after(t_ready: float, *, model_id: str = "tiny", models_after: float = 0.0) -> Script:
    """llama-server-like: 503 Loading model until t_ready, then 200; /v1/models lists model_id."""

    def script(path: str, headers: dict, t: float):
        if t < t_ready:
            return 503, LOADING_BODY
        if path == "/health":
            return 200, {"status": "ok"}
        if path == "/v1/models":
            data = [{"id": model_id, "object": "model"}] if t >= models_after else []
            return 200, {"object": "list", "data": data}
        return 404, {"error": "not found"}

    return script


class Recorder:
    def __init__(self):
        self.events: list[ReadinessEvent] = []

    def __call__(self, event: ReadinessEvent) -> None:
        self.events.append(event)

    def states(self) -> list[str]:
        return [e.state for e in self.events]


# ------------------------------------------------------------------------------------------
# wait_ready against a real server
# ------------------------------------------------------------------------------------------


def test_event_sequence_refused_then_loading_then_ready(servers):
    # Refuses for 0.3 s, then 503 "Loading model" until 0.7 s, then healthy with the model.
    srv = servers(ready_after(0.7), listen_after=0.3)
    rec = Recorder()
    head_start = time.monotonic() - srv.t0  # the server's clock started this much earlier
    result = wait_ready(
        make_spec(srv.port, kind="llama-server", command=LLAMA_CMD),
        container_state=running,
        on_event=rec,
    )
    assert result.ready and result.state == "ready"
    assert rec.states() == ["starting", "loading model", "ready"]
    assert rec.events[0].detail == "connection refused"
    assert rec.events[1].detail == "Loading model"
    assert "tiny" in rec.events[2].detail
    assert all(e.service == "svc" for e in rec.events)
    assert [e.elapsed_s for e in rec.events] == sorted(e.elapsed_s for e in rec.events)
    assert 0.7 - head_start <= result.elapsed_s < 1.5
    assert "/v1/models" in srv.paths()


def test_generic_service_needs_only_expected_status(servers):
    srv = servers(lambda p, h, t: (200, {}) if p == "/api/tags" else (404, {}))
    result = wait_ready(
        make_spec(srv.port, kind="ollama", path="/api/tags"), container_state=running
    )
    assert result.ready and result.detail == "HTTP 200"
    assert srv.paths() == ["/api/tags"]  # no /v1/models check for other kinds


def test_unexpected_status_is_starting_with_http_detail(servers):
    srv = servers(lambda p, h, t: (500, {}) if t < 0.3 else (200, {}))
    rec = Recorder()
    result = wait_ready(make_spec(srv.port), container_state=running, on_event=rec)
    assert result.ready
    assert rec.events[0].state == "starting" and rec.events[0].detail == "HTTP 500"


def test_models_empty_then_listed(servers):
    # /health is 200 at once, but the model shows up in /v1/models only at 0.4 s.
    srv = servers(ready_after(0.0, models_after=0.4))
    rec = Recorder()
    head_start = time.monotonic() - srv.t0  # the server's clock started this much earlier
    result = wait_ready(
        make_spec(srv.port, kind="llama-server", command=LLAMA_CMD),
        container_state=running,
        on_event=rec,
    )
    assert result.ready
    assert rec.states() == ["loading model", "ready"]
    assert "'tiny'" in rec.events[0].detail and "listed: none" in rec.events[0].detail
    assert result.elapsed_s >= 0.4 - head_start


def test_wrong_model_listed_is_not_ready(servers):
    srv = servers(ready_after(0.0, model_id="other"))
    result = wait_ready(
        make_spec(srv.port, kind="llama-server", command=LLAMA_CMD, timeout_s=0.4),
        container_state=running,
    )
    assert not result.ready and result.state == "timeout"
    assert "loading model" in result.detail and "'other'" in result.detail


@pytest.mark.parametrize(
    ("command", "model_id"),
    [
        (("-m", "/models/a.gguf", "-a", "short"), "short"),
        (("--model=/models/a.gguf", "--alias=eq"), "eq"),
        (("--model", "/models/a.gguf"), "/models/a.gguf"),
        (("-m", "/models/a.gguf"), "a.gguf"),  # basename accepted too
    ],
)
def test_model_id_from_alias_or_model_path(servers, command, model_id):
    srv = servers(ready_after(0.0, model_id=model_id))
    result = wait_ready(
        make_spec(srv.port, kind="llama-server", command=command, timeout_s=2),
        container_state=running,
    )
    assert result.ready, result


def test_api_key_sent_to_models_endpoint(servers):
    def script(path, headers, t):
        if path == "/health":
            return 200, {"status": "ok"}  # /health needs no key
        if headers.get("authorization") != "Bearer s3cret":
            return 401, {"error": {"code": 401, "message": "Invalid API Key"}}
        return 200, {"object": "list", "data": [{"id": "tiny"}]}

    srv = servers(script)
    spec = make_spec(
        srv.port,
        kind="llama-server",
        command=LLAMA_CMD,
        env={"LLAMA_API_KEY": "s3cret"},
        timeout_s=2,
    )
    assert wait_ready(spec, container_state=running).ready
    by_path = dict(srv.requests)
    assert "authorization" not in by_path["/health"]
    assert by_path["/v1/models"]["authorization"] == "Bearer s3cret"

    # Without the key (or with a wrong one) it never becomes ready, and says why.
    for env in ({}, {"LLAMA_API_KEY": "nope"}):
        spec = make_spec(srv.port, kind="llama-server", command=LLAMA_CMD, env=env, timeout_s=0.3)
        result = wait_ready(spec, container_state=running)
        assert result.state == "timeout" and "HTTP 401" in result.detail


def test_container_exit_mid_wait_returns_failed_fast(servers):
    srv = servers(lambda p, h, t: (503, LOADING_BODY))  # loads forever
    exit_at = time.monotonic() + 0.6

    def container_state():
        if time.monotonic() >= exit_at:
            return ContainerState(running=False, exit_code=137, status="exited")
        return running()

    rec = Recorder()
    result = wait_ready(
        make_spec(srv.port, kind="llama-server", command=LLAMA_CMD),
        container_state=container_state,
        on_event=rec,
    )
    noticed_after = time.monotonic() - exit_at
    print(f"container exit noticed after {noticed_after * 1000:.0f} ms")
    assert result.state == "failed" and not result.ready
    assert result.detail == "container exited with code 137" and result.exit_code == 137
    assert rec.states() == ["loading model", "failed"]
    assert noticed_after < 1.0


def test_container_already_stopped(servers):
    srv = servers(ready_after(0.0))
    result = wait_ready(
        make_spec(srv.port), container_state=lambda: ContainerState(False, None, "created")
    )
    assert result.state == "failed" and "created" in result.detail
    assert srv.requests == []


def test_timeout_reports_last_state(servers):
    srv = servers(lambda p, h, t: (503, LOADING_BODY))
    rec = Recorder()
    t0 = time.monotonic()
    result = wait_ready(
        make_spec(srv.port, kind="llama-server", timeout_s=60),
        container_state=running,
        on_event=rec,
        timeout_s=0.5,
    )
    took = time.monotonic() - t0
    assert result.state == "timeout" and not result.ready
    assert "loading model" in result.detail and "Loading model" in result.detail
    assert rec.states() == ["loading model", "timeout"]
    assert 0.5 <= took < 0.9


def test_timeout_while_refused():
    # Nothing ever listens on the port.
    srv = ScriptedServer(lambda p, h, t: (200, {}), listen_after=None)
    try:
        result = wait_ready(make_spec(srv.port, timeout_s=0.3), container_state=running)
    finally:
        srv.close()
    assert result.state == "timeout" and "connection refused" in result.detail


@pytest.mark.parametrize("t_ready", [0.3, 1.0, 1.8])
def test_latency_ready_noticed_quickly(servers, t_ready):
    srv = servers(ready_after(t_ready))
    spec = make_spec(srv.port, kind="llama-server", command=LLAMA_CMD)
    healthy_at = srv.t0 + t_ready
    result = wait_ready(spec, container_state=running)
    latency = time.monotonic() - healthy_at
    print(f"server healthy at {t_ready:.1f}s -> noticed after {latency * 1000:.0f} ms")
    assert result.ready
    assert 0 <= latency < 0.25


def test_no_health_check_is_ready_when_running():
    result = wait_ready(make_spec(None, health=False), container_state=running)
    assert result.ready and "no health check" in result.detail
    result = wait_ready(make_spec(None), container_state=running)  # no published port
    assert result.ready and "no published port" in result.detail


def test_keyboard_interrupt_propagates_and_closes_own_client(servers, monkeypatch):
    srv = servers(lambda p, h, t: (503, LOADING_BODY))
    made: list[LocalHTTP] = []
    real = readiness.new_client

    def tracking(*a, **kw):
        made.append(real(*a, **kw))
        return made[-1]

    monkeypatch.setattr(readiness, "new_client", tracking)

    def interrupted(_s):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wait_ready(make_spec(srv.port), container_state=running, sleep=interrupted)
    assert made and made[0].is_closed


def test_heartbeat_repeats_current_state(servers):
    srv = servers(lambda p, h, t: (503, LOADING_BODY))
    rec = Recorder()
    wait_ready(
        make_spec(srv.port, kind="llama-server"),
        container_state=running,
        on_event=rec,
        timeout_s=0.7,
        heartbeat_s=0.2,
    )
    assert rec.states().count("loading model") >= 3
    assert rec.states()[-1] == "timeout"


# ------------------------------------------------------------------------------------------
# Schedule, on a fake clock with a scripted client (no sockets)
# ------------------------------------------------------------------------------------------


def answer(status: int, body: object) -> Reply:
    return Reply(status, "", json.dumps(body).encode())


class ScriptedClient:
    """What readiness needs of a client (`get`), answering from `handler(url)`."""

    def __init__(self, handler: Callable[[str], Reply]) -> None:
        self.handler = handler

    def get(self, url: str, *, headers=None, timeout=None) -> Reply:
        return self.handler(url)


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        assert s > 0
        self.sleeps.append(s)
        self.now += s


def test_schedule_fast_start_then_backs_off_to_cap():
    clock = FakeClock()
    polls: list[float] = []
    watches: list[float] = []

    def handler(url: str) -> Reply:
        polls.append(clock.now)
        if clock.now >= 600:  # a 10-minute model load
            return answer(200, {"status": "ok"})
        return answer(503, LOADING_BODY)

    def container_state():
        watches.append(clock.now)
        return running()

    with contextlib.nullcontext(ScriptedClient(handler)) as client:
        result = wait_ready(
            make_spec(1234, timeout_s=900),
            container_state=container_state,
            clock=clock,
            sleep=clock.sleep,
            client=client,
        )
    assert result.ready
    gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
    # 10 ms apart during the first 5 s (a fast load is seen within ~10 ms), never more than
    # the 1 s cap
    assert all(g == pytest.approx(0.01) for a, g in zip(polls, gaps, strict=False) if a < 4.99)
    assert max(gaps) <= 1.0 + 1e-9
    assert gaps[-1] == pytest.approx(1.0)
    # lateness: always within max(10 ms, 4 % of elapsed)
    assert all(g <= max(0.01, 0.04 * a) + 1e-9 for a, g in zip(polls[1:], gaps, strict=False))
    print(f"10-minute load: {len(polls)} polls, {len(watches)} container checks")
    # ~500 in the fast first 5 s, then ~1/s: not hammering
    assert len(polls) < 1200
    assert result.elapsed_s - 600 <= 1.0 + 1e-9
    assert max(b - a for a, b in zip(watches, watches[1:], strict=False)) <= 0.5


def test_schedule_respects_custom_interval_and_watch_cadence():
    # health.interval_s = 5 s: polls back off to 5 s apart, yet the container is still checked
    # every WATCH_EVERY_S, so its exit at t = 200 s is noticed at once, not at the next poll.
    clock = FakeClock()
    polls: list[float] = []
    watches: list[float] = []

    def handler(url):
        polls.append(clock.now)
        return answer(503, LOADING_BODY)

    def container_state():
        watches.append(clock.now)
        return running() if clock.now < 200 else ContainerState(False, 139, "exited")

    with contextlib.nullcontext(ScriptedClient(handler)) as client:
        result = wait_ready(
            make_spec(1234, interval_s=5.0, timeout_s=900),
            container_state=container_state,
            clock=clock,
            sleep=clock.sleep,
            client=client,
        )
    assert result.state == "failed" and result.exit_code == 139
    assert 200 <= result.elapsed_s <= 200 + readiness.WATCH_EVERY_S + 1e-9
    gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
    assert max(gaps) == pytest.approx(5.0)
    assert max(b - a for a, b in zip(watches, watches[1:], strict=False)) <= 0.5


def test_timeout_is_exact_on_fake_clock():
    clock = FakeClock()
    polls: list[float] = []

    def handler(url):
        polls.append(clock.now)
        raise LocalTransportError("connection refused")

    with contextlib.nullcontext(ScriptedClient(handler)) as client:
        result = wait_ready(
            make_spec(1234, timeout_s=30),
            container_state=running,
            clock=clock,
            sleep=clock.sleep,
            client=client,
        )
    assert result.state == "timeout"
    assert result.elapsed_s == pytest.approx(30.0)
    assert polls[-1] == pytest.approx(30.0)  # one last poll right at the deadline
    assert "starting: connection refused" in result.detail


def test_next_poll_interval():
    assert next_poll_interval(0.01, 0.0, 1.0) == pytest.approx(0.01)
    assert next_poll_interval(0.01, 4.9, 1.0) == pytest.approx(0.01)
    assert next_poll_interval(0.01, 5.0, 1.0) == pytest.approx(0.015)
    assert next_poll_interval(0.08, 5.0, 1.0) == pytest.approx(0.12)
    assert next_poll_interval(0.01, 1.0, 0.005) == pytest.approx(0.005)
    assert next_poll_interval(0.2, 10.0, 1.0) == pytest.approx(0.3)
    assert next_poll_interval(0.9, 300.0, 1.0) == pytest.approx(1.0)
    assert next_poll_interval(0.9, 300.0, 0.5) == pytest.approx(0.5)


def test_expected_model_ids():
    def ids(command=(), env=None):
        return expected_model_ids(make_spec(1, kind="llama-server", command=command, env=env))

    assert ids(LLAMA_CMD) == ("tiny",)
    assert ids(("-a", "x,y")) == ("x", "y")
    assert ids(("-m", "/models/m.gguf")) == ("/models/m.gguf", "m.gguf")
    assert ids(env={"LLAMA_ARG_MODEL": "m.gguf"}) == ("m.gguf",)
    assert ids(("-m", "/m/a.gguf"), env={"LLAMA_ARG_ALIAS": "al"}) == ("al",)
    assert ids() == ()


# ------------------------------------------------------------------------------------------
# probe_once / probe_many
# ------------------------------------------------------------------------------------------


def test_probe_once_states(servers):
    ok = servers(ready_after(0.0))
    loading = servers(lambda p, h, t: (503, LOADING_BODY))
    broken = servers(lambda p, h, t: (500, {}))
    refused = servers(lambda p, h, t: (200, {}), listen_after=None)
    with LocalHTTP(timeout=1.0) as client:

        def probe(port, **kw):
            return probe_once(make_spec(port, **kw), client)

        assert probe(ok.port, kind="llama-server", command=LLAMA_CMD)[0] == "ready"
        assert probe(loading.port, kind="llama-server") == ("loading model", "Loading model")
        assert probe(broken.port) == ("unhealthy", "HTTP 500")
        assert probe(refused.port) == ("starting", "connection refused")
        assert probe(None, health=False) == ("unknown", "no health check")


def test_probe_many_runs_in_parallel(servers):
    delay = 0.4
    srvs = [servers(ready_after(0.0), delay=delay) for _ in range(4)]
    specs = [make_spec(s.port, service=f"s{i}") for i, s in enumerate(srvs)]
    t0 = time.monotonic()
    states = probe_many(specs, timeout_s=2.0)
    took = time.monotonic() - t0
    print(f"probe_many over 4 servers ({delay}s each): {took * 1000:.0f} ms")
    assert states == {f"s{i}": ("ready", "HTTP 200") for i in range(4)}
    assert took < 2 * delay  # about max(single), not the 1.6 s sum
    assert probe_many([]) == {}


def test_probe_many_timeout_bounds_a_hung_service(servers):
    hung = servers(ready_after(0.0), delay=1.5)
    fine = servers(ready_after(0.0))
    t0 = time.monotonic()
    states = probe_many(
        [make_spec(hung.port, service="hung"), make_spec(fine.port, service="ok")], timeout_s=0.3
    )
    assert time.monotonic() - t0 < 1.0
    assert states["ok"] == ("ready", "HTTP 200")
    assert states["hung"][0] == "starting" and "no answer" in states["hung"][1]


def test_api_key_flag_wins_over_env_as_in_llama_server() -> None:
    from airpods import kinds

    llama = kinds.get("llama-server")
    spec = make_spec(8080, kind="llama-server", command=("--api-key", "from-flag,second"),
                     env={"LLAMA_API_KEY": "from-env"})
    assert llama.api_key(spec) == "from-flag"
    assert llama.api_key(make_spec(8080, kind="llama-server",
                                   env={"LLAMA_API_KEY": "from-env"})) == "from-env"
    # Once rendered, the keys live in the mounted secret file, one per line.
    final = llama.finalize(spec)
    assert "LLAMA_API_KEY" not in final.env and "--api-key" not in final.command
    assert final.command[-2:] == ("--api-key-file", "/run/secrets/llama-api-key")
    assert final.secret_files == (
        SecretFile("airpods-svc-llama-api-key", "/run/secrets/llama-api-key",
                   "from-flag\nsecond\n"),
    )
    assert llama.api_key(final) == "from-flag"
