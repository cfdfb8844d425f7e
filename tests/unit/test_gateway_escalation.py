"""The escalation model (`[services.gateway.escalation]`): what is rendered for LiteLLM's
complexity router, the one-line rule, usage records' tier and `usage --by route`, and every bad
input. The real gateway runs it in tests/integration/test_escalation_podman.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airpods.kinds import gateway_routes
from airpods.kinds.gateway_files import airpods_usage
from airpods.models import gateway_usage
from tests.unit.test_gateway import LOCAL, ON, REMOTE, _config, _gateway, assert_refused

REMOTE_MODEL = "llama3.1:8b"
ESC = f'[services.gateway.escalation]\nlocal = "{LOCAL}"\nfrontier = "{REMOTE_MODEL}"\n'
RULE = (f"auto: SIMPLE/MEDIUM -> {LOCAL} (local), COMPLEX/REASONING -> {REMOTE_MODEL} "
        f"(remote homelab); local down -> {REMOTE_MODEL}")


def test_auto_is_a_complexity_router_over_local_and_frontier(tmp_path: Path) -> None:
    text = (ON + REMOTE + ESC + f'overflow = "{REMOTE_MODEL}"\n'
            'tier_boundaries = { medium_complex = 0.25 }\ncode_keywords = ["def", "lambda"]\n'
            'keyword_tier_rules = [{ keywords = ["go big"], tier = "REASONING" }]\n')
    spec, _ = _gateway(text, tmp_path)
    config = _config(spec)
    auto = config["model_list"][-1]
    assert auto["model_name"] == "auto"
    assert auto["litellm_params"] == {"model": "auto_router/complexity_router",
                                      "complexity_router_config": {
        "tiers": {"SIMPLE": LOCAL, "MEDIUM": LOCAL, "COMPLEX": REMOTE_MODEL,
                  "REASONING": REMOTE_MODEL},
        "classifier_type": "heuristic", "default_model": LOCAL, "context_compaction": False,
        "max_tokens_from_tier_model": False,
        "tier_boundaries": {"simple_medium": 0.15, "medium_complex": 0.25,
                            "complex_reasoning": 0.6},
        "code_keywords": ["def", "lambda"],
        "keyword_tier_rules": [{"keywords": ["go big"], "tier": "REASONING"}]}}
    assert auto["model_info"]["airpods_backend"] == "escalation"
    assert auto["model_info"]["airpods_private"] is False
    settings = config["router_settings"]
    assert settings["fallbacks"] == [{"auto": [REMOTE_MODEL]}]
    assert settings["context_window_fallbacks"] == [{LOCAL: [REMOTE_MODEL]}]
    overflow = f"; prompt over the local context -> {REMOTE_MODEL}"
    assert spec.notes == (f"escalation {RULE}{overflow}",)


def test_no_escalation_renders_nothing_new(tmp_path: Path) -> None:
    spec, _ = _gateway(ON + REMOTE, tmp_path)
    config = _config(spec)
    assert all(m["model_info"]["airpods_backend"] != "escalation" for m in config["model_list"])
    assert "context_window_fallbacks" not in config["router_settings"]
    assert spec.notes == ()


def test_a_private_local_model_makes_auto_private(tmp_path: Path) -> None:
    text = ON + REMOTE + '[services.llamacpp]\nprivate = true\n' + ESC + 'name = "smart"\n'
    spec, _ = _gateway(text, tmp_path)
    config = _config(spec)
    auto = config["model_list"][-1]
    assert auto["model_name"] == "smart" and auto["model_info"]["airpods_private"] is True
    # Nothing reaches the frontier for it: no fallback, no overflow.
    assert config["router_settings"]["fallbacks"] == []
    assert "context_window_fallbacks" not in config["router_settings"]
    assert spec.notes == (f"escalation smart: every tier -> {LOCAL} (local, private: never "
                          "escalates)",)


def test_the_local_models_own_fallbacks_come_first_when_it_is_down(tmp_path: Path) -> None:
    text = (ON + TWO_REMOTES + ESC + f'[services.gateway.fallbacks]\n"{LOCAL}" = ["frontier"]\n')
    spec, _ = _gateway(text, tmp_path)
    rule = RULE.replace(f"local down -> {REMOTE_MODEL}", "local down -> frontier")
    assert spec.notes == (f"escalation {rule}",)
    [auto] = [r for r in gateway_routes.route_table(spec) if r["model"] == "auto"]
    assert auto["fallbacks"] == ["frontier"] and auto["where"] == LOCAL


def test_routes_now_shows_the_escalation_rule() -> None:
    table = [
        {"model": "tiny", "backend": "local", "where": "llamacpp", "private": False,
         "fallbacks": []},
        {"model": "big", "backend": "remote", "where": "homelab", "private": False,
         "fallbacks": []},
        {"model": "auto", "backend": "escalation", "where": "tiny", "private": False,
         "fallbacks": ["big"], "rule": "auto: ..."},
    ]
    up = gateway_routes.routes_now("gw", table, {"llamacpp": True})
    assert (up[2]["route"], up[2]["via"], up[2]["rule"]) == ("local", "tiny", "auto: ...")
    down = gateway_routes.routes_now("gw", table, {})
    assert (down[2]["route"], down[2]["via"]) == ("fallback", "big")
    private = gateway_routes.routes_now("gw", [table[0], {**table[2], "private": True}], {})
    assert (private[1]["route"], private[1]["via"]) == ("unavailable", None)


def test_usage_record_carries_the_tier_and_the_model_that_answered() -> None:
    kwargs = {"litellm_params": {"metadata": {
        "routing_decision": {"tier": "COMPLEX", "router_type": "complexity"},
        "model_info": {"id": "remote:homelab:llama3.1:8b", "airpods_backend": "remote",
                       "airpods_remote": "homelab"},
        "user_api_key_alias": "laptop", "model_group": "auto"}},
        "standard_logging_object": {"api_base": "http://x/v1", "model_group": "auto",
                                    "response_cost": 0.5}}
    record = airpods_usage.usage_record(kwargs, 1.0, 2.0, True)
    assert (record["model"], record["tier"], record["served"]) == ("auto", "COMPLEX",
                                                                   "llama3.1:8b")
    # The guard's stamp wins: LiteLLM clears its decision when a fallback routes again.
    kwargs["litellm_params"]["metadata"] |= {"airpods_tier": "private", "airpods_asked": "auto",
                                             "routing_decision": None}
    assert airpods_usage.usage_record(kwargs, 1.0, 2.0, True)["tier"] == "private"


def test_usage_by_route_groups_tier_and_answering_model() -> None:
    def line(**fields: object) -> bytes:
        base = {"ts": 1e9, "client": "laptop", "model": "auto", "backend": "local",
                "prompt_tokens": 3, "completion_tokens": 2, "cost": 0.0, "ok": True}
        return json.dumps(base | fields).encode()

    records = [gateway_usage.parse_record(x) for x in (
        line(tier="SIMPLE", served="tiny"), line(tier="SIMPLE", served="tiny"),
        line(tier="COMPLEX", served="big", backend="remote", cost=0.25),
        line(model="tiny", served="tiny"), line(tier="MEDIUM", served=None, ok=False),
    )]
    rows = {r.key: r for r in gateway_usage.group([r for r in records if r], "route")}
    assert rows["auto SIMPLE -> tiny"].requests == 2
    assert rows["auto COMPLEX -> big"].cost == pytest.approx(0.25)
    assert rows["tiny -> tiny"].requests == 1
    assert rows["auto MEDIUM -> -"].failed == 1
    assert "route" in gateway_usage.GROUPINGS


# --- bad input: one line, exit 2, nothing started ---------------------------------------------

TWO_REMOTES = REMOTE + ('[services.gateway.remotes.cloud]\nbase_url = "http://10.0.0.9:8000/v1"'
                        '\nmodels = ["frontier"]\n')
BAD = [
    ("local-names-a-remote", ON + TWO_REMOTES + '[services.gateway.escalation]\n'
     f'local = "{REMOTE_MODEL}"\nfrontier = "frontier"\n',
     "services.gateway.escalation.local", "`local` names a model a local server serves"),
    ("frontier-names-a-local", ON + REMOTE + '[services.gateway.escalation]\n'
     f'local = "{LOCAL}"\nfrontier = "{LOCAL}"\n',
     "services.gateway.escalation.frontier", "is a local model"),
    ("overflow-names-a-local", ON + REMOTE + ESC + f'overflow = "{LOCAL}"\n',
     "services.gateway.escalation.overflow", "is a local model"),
    ("unknown-local", ON + REMOTE + '[services.gateway.escalation]\nlocal = "nope"\n'
     f'frontier = "{REMOTE_MODEL}"\n', "services.gateway.escalation.local",
     "unknown model 'nope'"),
    ("unknown-frontier", ON + REMOTE + f'[services.gateway.escalation]\nlocal = "{LOCAL}"\n'
     'frontier = "gpt-9"\n', "services.gateway.escalation.frontier", "unknown model 'gpt-9'"),
    ("name-taken", ON + REMOTE + ESC + f'name = "{REMOTE_MODEL}"\n',
     "services.gateway.escalation.name", "already a gateway model's name"),
    ("missing-frontier", ON + REMOTE + f'[services.gateway.escalation]\nlocal = "{LOCAL}"\n',
     "services.gateway.escalation.frontier", "required key is missing"),
    ("unknown-key", ON + REMOTE + ESC + 'classifier_type = "llm"\n',
     "services.gateway.escalation.classifier_type", ""),
    ("boundaries-not-rising", ON + REMOTE + ESC + 'tier_boundaries = { simple_medium = 0.5 }\n',
     "services.gateway.escalation", "must rise"),
    ("boundary-out-of-range", ON + REMOTE + ESC + 'tier_boundaries = { complex_reasoning = 2 }\n',
     "services.gateway.escalation.tier_boundaries.complex_reasoning", ""),
    ("unknown-tier", ON + REMOTE + ESC + 'keyword_tier_rules = [{ keywords = ["x"], '
     'tier = "HARD" }]\n', "services.gateway.escalation.keyword_tier_rules[0].tier",
     "not a tier"),
    ("private-local-overflow", ON + REMOTE + '[services.llamacpp]\nprivate = true\n' + ESC
     + f'overflow = "{REMOTE_MODEL}"\n', "services.gateway.escalation.overflow",
     "never overflows"),
]


@pytest.mark.parametrize(("case", "text", "key_path", "expect"), BAD, ids=[b[0] for b in BAD])
def test_bad_escalation_is_one_line_exit_2_and_starts_nothing(
    case: str, text: str, key_path: str, expect: str, tmp_path: Path
) -> None:
    assert_refused(text, key_path, expect, tmp_path)
