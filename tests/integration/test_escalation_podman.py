"""The `auto` model and context overflow, through the real gateway container (LiteLLM 1.106.12's
complexity router), a real llama-server (`tiny`, 256-token context) and the counting stand-in
remote (`big-model` the frontier, `overflow-model` the overflow target).

One stack for the module (tests/gateway_stack.py); the last test restarts the gateway with the
local model private.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.escalation_prompts import ESCALATION_TOML, PROMPTS, backend_for
from tests.gateway_stack import LOCAL_ID, PRIVATE, REMOTE_ID, GatewayStack, gateway_stack, served_by

OVERFLOW_ID = "remote:homelab:overflow-model"
LLAMA_ARGS = 'alias = "tiny"\nthreads = 1\nctx_size = 256\nmetrics = true\n'
# About 2,000 tokens for the tiny model's byte-level vocabulary (one a character, nearly).
LONG = "please repeat these words back to me " * 55
TIER = "x-airpods-tier"


@pytest.fixture(scope="module")
def stack(podman_env, llama_image: str, litellm_image: str, tiny_model: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    tmp = tmp_path_factory.mktemp("escalation")
    with gateway_stack(podman_env, llama_image, litellm_image, tiny_model, tmp,
                       gateway_settings=ESCALATION_TOML, llama_args=LLAMA_ARGS,
                       remote_models=("big-model", "overflow-model")) as running:
        running.start("gateway")
        yield running


def _ask(stack: GatewayStack, prompt: str, model: str = "auto", headers: dict | None = None,
         max_tokens: int = 2):
    body = {"model": model, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens}
    return stack.chat(body, headers=headers, timeout=120)


def test_each_prompt_gets_its_tier_and_backend(stack: GatewayStack) -> None:
    before = stack.remote.count
    wrong = []
    for prompt, tier in PROMPTS:
        resp = _ask(stack, prompt)
        want = LOCAL_ID if backend_for(tier) == "local" else REMOTE_ID
        got = (resp.status_code, resp.headers.get(TIER), served_by(resp),
               resp.headers.get("x-airpods-backend"))
        if got != (200, tier, want, backend_for(tier)):
            wrong.append(f"{prompt[:50]!r}: want {tier} {want}, got {got} {resp.text[:200]}")
    assert not wrong, "\n".join(wrong) + "\n" + stack.gateway_log()
    frontier = sum(backend_for(tier) == "remote" for _, tier in PROMPTS)
    assert stack.remote.count - before == frontier
    assert len(PROMPTS) >= 20


def test_a_streamed_request_is_routed_and_named_alike(stack: GatewayStack) -> None:
    """Open WebUI streams: the tier and the backend are in the streamed answer's headers too."""
    cases = [next((p, t) for p, t in PROMPTS if t == tier) for tier in ("SIMPLE", "REASONING")]
    for prompt, tier in cases:
        body = {"model": "auto", "messages": [{"role": "user", "content": prompt}],
                "max_tokens": 2, "stream": True}
        with stack.client(timeout=120) as client, \
                client.stream("POST", "/v1/chat/completions", json=body) as resp:
            text = "".join(resp.iter_text())
            assert resp.status_code == 200, text
            assert resp.headers.get(TIER) == tier, resp.headers
            want = LOCAL_ID if backend_for(tier) == "local" else REMOTE_ID
            assert served_by(resp) == want and "[DONE]" in text


def test_usage_by_route_counts_each_tier_and_what_it_cost(stack: GatewayStack) -> None:
    records = [r for r in stack.wait_records(len(PROMPTS)) if r["model"] == "auto"]
    assert {r["tier"] for r in records} >= {"SIMPLE", "MEDIUM", "COMPLEX", "REASONING"}
    out = stack.airpods("usage", "--by", "route", "--json")
    assert out.returncode == 0, out.stderr
    rows = {row["key"]: row for row in json.loads(out.stdout)["rows"]}
    want = {}
    for _, tier in PROMPTS:
        key = f"auto {tier} -> {'tiny' if backend_for(tier) == 'local' else 'big-model'}"
        want[key] = want.get(key, 0) + 1
    for key, count in want.items():
        assert rows[key]["requests"] >= count, (key, rows)
    assert rows["auto COMPLEX -> big-model"]["cost"] > 0
    assert rows["auto SIMPLE -> tiny"]["cost"] == 0 and rows["auto SIMPLE -> tiny"]["no_api_cost"]
    text = stack.airpods("usage", "--by", "route")
    assert "auto REASONING -> big-model" in text.stdout, text.stdout


def test_private_request_to_auto_stays_local_whatever_its_tier(stack: GatewayStack) -> None:
    before = stack.remote.count
    for prompt, tier in PROMPTS:
        if backend_for(tier) != "remote":
            continue
        resp = _ask(stack, prompt, headers=PRIVATE)
        assert resp.status_code == 200, resp.text
        assert served_by(resp) == LOCAL_ID and resp.headers.get(TIER) == "private"
    assert stack.remote.count == before


def test_status_and_dry_run_show_the_rule_in_one_line(stack: GatewayStack) -> None:
    rule = ("auto: SIMPLE/MEDIUM -> tiny (local), COMPLEX/REASONING -> big-model "
            "(remote homelab); local down -> big-model; prompt over the local context -> "
            "overflow-model")
    status = stack.airpods("status")
    assert f"gateway: {rule}" in status.stdout.splitlines(), status.stdout
    routes = json.loads(stack.airpods("status", "--json").stdout)["routes"]
    [auto] = [r for r in routes if r["model"] == "auto"]
    assert auto["backend"] == "escalation" and auto["route"] == "local" and auto["rule"] == rule
    dry = stack.airpods("start", "--dry-run", "gateway")
    assert dry.returncode == 0, dry.stderr
    notes = [line for line in dry.stdout.splitlines() if line.strip().startswith("note:")]
    assert [line.split("note:", 1)[1].strip() for line in notes] == [f"escalation {rule}"]


def test_a_prompt_longer_than_the_local_context_goes_to_the_overflow_model(
    stack: GatewayStack,
) -> None:
    before = stack.remote.count
    direct = _ask(stack, LONG, model="tiny")
    assert direct.status_code == 200, direct.text
    # context_window_fallbacks, not the plain `tiny -> big-model` fallback.
    assert served_by(direct) == OVERFLOW_ID, direct.headers
    via_auto = _ask(stack, "hello " * 400)
    assert via_auto.status_code == 200, via_auto.text
    assert via_auto.headers.get(TIER) in ("SIMPLE", "MEDIUM")
    assert served_by(via_auto) == OVERFLOW_ID, via_auto.headers
    assert stack.remote.count == before + 2
    # The local server still answers short prompts (it was not put in cooldown).
    assert served_by(_ask(stack, "hi")) == LOCAL_ID


def test_a_private_prompt_longer_than_the_local_context_is_413_never_escalated(
    stack: GatewayStack,
) -> None:
    before = stack.remote.count
    for model in ("tiny", "auto"):
        resp = _ask(stack, LONG, model=model, headers=PRIVATE)
        assert resp.status_code == 413, resp.text
        assert "longer than the local context" in resp.text, resp.text
    assert stack.remote.count == before


def test_local_down_simple_requests_go_to_the_frontier_private_get_503(
    stack: GatewayStack,
) -> None:
    # As test_gateway_podman's failover test does: local answers right before the fault (the
    # first request after `stop` once hung in the container gateway: issue 21's open part).
    stack.local_again()
    stopped = stack.airpods("stop", "llamacpp", "--timeout", "1")
    assert stopped.returncode == 0, stopped.stderr
    try:
        before = stack.remote.count
        for _ in range(2):  # the first finds local refused, the second finds it cooling down
            resp = _ask(stack, "hi")
            assert resp.status_code == 200, resp.text
            assert served_by(resp) == REMOTE_ID and resp.headers.get(TIER) == "SIMPLE"
        assert stack.remote.count == before + 2
        # LiteLLM clears its routing decision when the fallback routes again: the record of the
        # answer still carries the tier (the guard's stamp).
        answered = [r for r in stack.wait_records(0) if r["model"] == "auto" and r["ok"]]
        assert (answered[-1]["tier"], answered[-1]["served"]) == ("SIMPLE", "big-model")
        private = _ask(stack, "hi", headers=PRIVATE)
        assert private.status_code == 503, private.text
        assert stack.remote.count == before + 2
        routes = json.loads(stack.airpods("status", "--json").stdout)["routes"]
        [auto] = [r for r in routes if r["model"] == "auto"]
        assert (auto["route"], auto["via"]) == ("fallback", "big-model")
    finally:
        stack.local_again()


def test_a_private_local_model_makes_auto_private(stack: GatewayStack) -> None:
    text = stack.config.read_text()
    private = (text.replace('tiny = ["big-model"]\n', "")
               .replace('overflow = "overflow-model"\n', "")
               .replace("[services.llamacpp]\n", "[services.llamacpp]\nprivate = true\n", 1))
    stack.config.write_text(private)
    stack.start("gateway")
    before = stack.remote.count
    for prompt, tier in PROMPTS:
        if backend_for(tier) == "remote":
            resp = _ask(stack, prompt)
            assert resp.status_code == 200, resp.text
            assert served_by(resp) == LOCAL_ID and resp.headers.get(TIER) == "private"
    assert stack.remote.count == before
    status = stack.airpods("status")
    assert "gateway: auto: every tier -> tiny (local, private: never escalates)" in status.stdout
