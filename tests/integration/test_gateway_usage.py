"""The gateway's usage records, for real: the gateway CONTAINER `airpods start` creates from the
locally built LiteLLM image, in front of a real llama-server container and a stand-in remote
with prices (tests/gateway_stack.py). Requests go through it with the master key and a client
key; the records it appends (bind-mounted usage directory) must carry the response's own token
counts, cost 0 for local and the price for the remote, the backend and the client's name;
`airpods usage` must sum them beside the llama-server tokens that `stop` records. A `kill -9`
of the gateway container mid-run or mid-stream loses at most the request in flight, the client
gets a clean error, and the records survive the restart.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from tests.gateway_stack import GatewayStack

PRICE_IN, PRICE_OUT = 1.0, 2.0  # per million tokens (tests/stack_config.GATEWAY_TABLES)
STANDIN_USAGE = (5, 4)  # what tests/remote_standin.py answers
FIELDS = {"ts", "client", "model", "backend", "remote", "deployment", "prompt_tokens",
          "completion_tokens", "latency_ms", "cost", "ok", "tier", "served", "priced"}


@pytest.fixture(scope="module")
def stack(running_gateway: GatewayStack) -> GatewayStack:
    return running_gateway


def chat(stack: GatewayStack, model: str, key: str, stream: bool = False) -> dict:
    body: dict = {"model": model, "messages": [{"role": "user", "content": "Say hi"}],
                  "max_tokens": 6, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{stack.url}/v1/chat/completions"
    if not stream:
        r = httpx.post(url, json=body, headers=headers, timeout=60, trust_env=False)
        assert r.status_code == 200, r.text
        return r.json()
    usage: dict = {}
    with httpx.stream("POST", url, json=body, headers=headers, timeout=60,
                      trust_env=False) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                usage = json.loads(line[6:]).get("usage") or usage
    return {"usage": usage}


def tokens(usage: dict) -> tuple[int, int]:
    return usage["prompt_tokens"], usage["completion_tokens"]


def test_records_match_the_responses_and_usage_sums_them(stack: GatewayStack) -> None:
    laptop, master = stack.client_key("laptop"), stack.master_key
    start = len(stack.records())
    remote_before = stack.remote.count
    local = chat(stack, "tiny", master)
    streamed = chat(stack, "tiny", laptop, stream=True)
    priced = chat(stack, "big-model", laptop)
    refused = httpx.post(f"{stack.url}/v1/chat/completions", trust_env=False, timeout=30,
                         headers={"Authorization": "Bearer not-a-key"},
                         json={"model": "big-model", "messages": []})
    stack.wait_records(start + 3)
    time.sleep(1)  # a record for the refused request would be written by now
    got = stack.records()[start:]
    assert refused.status_code == 401
    assert stack.remote.count == remote_before + 1
    assert len(got) == 3, (got, stack.gateway_log())  # a refused key is no request
    assert all(set(r) == FIELDS for r in got)
    first, second, third = got
    # No escalation model here: no tier; `served` names the model that answered.
    assert [(r["tier"], r["served"]) for r in got] == [
        (None, "tiny"), (None, "tiny"), (None, "big-model")]
    # The local answers: llama-server's own token counts, no cost, its URL; the client's name.
    assert (first["model"], first["backend"], first["client"]) == ("tiny", "local", "master")
    assert (second["model"], second["backend"], second["client"]) == ("tiny", "local", "laptop")
    assert (tokens(first), tokens(second)) == (tokens(local["usage"]), tokens(streamed["usage"]))
    assert all(r["cost"] == 0 and r["remote"] is None and r["ok"] for r in (first, second))
    assert first["deployment"] == "http://llamacpp:8080/v1"  # the in-network address
    # The remote: its usage, priced per million tokens.
    assert (third["model"], third["backend"], third["remote"]) == (
        "big-model", "remote", "homelab")
    assert tokens(third) == tokens(priced["usage"]) == STANDIN_USAGE
    assert third["cost"] == pytest.approx((5 * PRICE_IN + 4 * PRICE_OUT) / 1e6)
    assert third["deployment"] == stack.remote.base_url and third["client"] == "laptop"
    assert all(r["latency_ms"] > 0 and abs(r["ts"] - time.time()) < 600 for r in got)

    # `stop` records llama-server's own counters; `usage` shows both, apart.
    stopped = stack.airpods("stop", "llamacpp")
    assert stopped.returncode == 0, stopped.stderr
    try:
        out = stack.airpods("usage", "--json")
        assert out.returncode == 0, out.stderr
        summary = json.loads(out.stdout)
        rows = {r["key"]: r for r in summary["rows"]}
        assert rows["tiny"]["no_api_cost"] and rows["tiny"]["requests"] >= 2
        assert rows["big-model"]["cost"] >= third["cost"]
        every = stack.records()
        assert summary["total"]["prompt_tokens"] == sum(r["prompt_tokens"] for r in every)
        [server] = summary["servers"]
        assert server["service"] == "llamacpp"
        assert server["completion_tokens"] >= (first["completion_tokens"]
                                               + second["completion_tokens"])
        by_client = json.loads(stack.airpods("usage", "--by", "client", "--json").stdout)
        clients = {r["key"]: r["requests"] for r in by_client["rows"]}
        assert clients["laptop"] >= 2 and clients["master"] >= 1
        text = stack.airpods("usage", "--by", "backend").stdout
        assert "no API cost" in text and "remote" in text, text
    finally:
        stack.start("llamacpp")


def test_kill_9_loses_at_most_the_request_in_flight(stack: GatewayStack) -> None:
    laptop = stack.client_key("laptop")
    start = len(stack.records())
    answered = 0
    done = threading.Event()

    def load() -> None:
        nonlocal answered
        while not done.is_set():
            try:
                chat(stack, "big-model", laptop)
            except (httpx.HTTPError, AssertionError):
                return
            answered += 1

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    deadline = time.monotonic() + 60
    while answered < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    stack.penv.podman("kill", "--signal", "KILL", "airpods-gateway-server", check=True)
    done.set()
    worker.join(timeout=30)
    assert answered >= 15
    before = stack.records()  # every line parses: no torn record
    # At most the one request being answered when the gateway died is missing.
    assert answered - 1 <= len(before) - start <= answered + 1, (answered, len(before) - start)

    stack.start("gateway")
    chat(stack, "tiny", laptop)
    after = stack.wait_records(len(before) + 1)
    assert after[: len(before)] == before  # the restart kept every record
    assert len(after) == len(before) + 1 and after[-1]["backend"] == "local"
    out = stack.airpods("usage", "--json")
    assert json.loads(out.stdout)["total"]["requests"] == len(after)


def test_gateway_killed_mid_stream_is_a_clean_error_and_keeps_finished_records(
    stack: GatewayStack,
) -> None:
    from tests.tiny_model import SPECIAL_TOKENS, _vocab

    laptop = stack.client_key("laptop")
    start = len(stack.records())
    for _ in range(3):  # finished requests, local and remote
        chat(stack, "tiny", laptop)
        chat(stack, "big-model", laptop)
    finished = stack.wait_records(start + 6)
    assert len(finished) == start + 6
    tokens_ = _vocab()[0]
    bias = {str(tokens_.index(t)): -100 for t in SPECIAL_TOKENS}
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 1900, "stream": True, "logit_bias": bias}
    got_first = threading.Event()
    outcome: list[object] = []

    def consume() -> None:
        try:
            with stack.client(laptop, timeout=60) as client, client.stream(
                    "POST", "/v1/chat/completions", json=body) as resp:
                for _line in resp.iter_lines():
                    got_first.set()
            outcome.append("ended")
        except httpx.HTTPError as exc:
            outcome.append(exc)
        finally:
            got_first.set()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    assert got_first.wait(60)
    t0 = time.monotonic()
    stack.penv.podman("kill", "--signal", "KILL", "airpods-gateway-server", check=True)
    reader.join(30)
    assert not reader.is_alive(), "the client hangs on a dead gateway"
    took = time.monotonic() - t0
    assert outcome and isinstance(outcome[0], httpx.TransportError), outcome  # no [DONE]
    assert took < 10, took
    assert stack.records()[: len(finished)] == finished  # every finished request kept
    stack.start("gateway")
    chat(stack, "tiny", laptop)
    assert stack.wait_records(len(finished) + 1)[: len(finished)] == finished
