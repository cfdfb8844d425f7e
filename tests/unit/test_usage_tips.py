"""Cost you can act on: a remote with no price is "cost unknown" (never $0 or "no API cost"),
and `airpods usage` ends with at most three tips computed from the records.

Pure logic over records, then the real CLI over real record files (the gateway container
writes such records in tests/integration/test_gateway_usage.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airpods.host import HostFacts
from airpods.kinds.gateway_files import airpods_usage as callback
from airpods.models.gateway_usage import Row, group, parse_record, total
from airpods.models.usage_tips import MAX_TIPS, catalogue_larger_tier, tips

NOW = time.time()
TINY = "qwen2.5-0.5b-instruct-q4_k_m"  # the catalogue's tiny tier, as its alias names it


def rec(**over: object) -> dict:
    base = {"ts": NOW, "client": "master", "model": "tiny", "backend": "remote",
            "remote": "cloud", "prompt_tokens": 10, "completion_tokens": 5, "latency_ms": 800.0,
            "cost": 0.002, "ok": True, "priced": True}
    return {**base, **over}


def parsed(*records: dict):
    out = [parse_record(json.dumps(r).encode()) for r in records]
    assert all(r is not None for r in out)
    return out


# --- the record says whether the remote had a price --------------------------------------------


def test_the_callback_records_a_remote_without_a_price() -> None:
    kwargs = {"standard_logging_object": {"api_base": "http://x:1/v1", "response_cost": 0.0},
              "model_info": {"airpods_backend": "remote", "airpods_remote": "cloud",
                             "airpods_priced": False}}
    assert callback.usage_record(kwargs, NOW - 1, NOW, ok=True)["priced"] is False
    kwargs["model_info"]["airpods_priced"] = True
    assert callback.usage_record(kwargs, NOW - 1, NOW, ok=True)["priced"] is True
    kwargs["model_info"] = {"airpods_backend": "local"}
    assert callback.usage_record(kwargs, NOW - 1, NOW, ok=True)["priced"] is None


@pytest.mark.parametrize(("record", "unknown"), [
    (rec(priced=False, cost=0.0), True),
    (rec(priced=True, cost=0.0), False),  # priced, and free (a price of 0 is a price)
    ({k: v for k, v in rec(cost=0.0).items() if k != "priced"}, True),  # before `priced`
    ({k: v for k, v in rec(cost=0.5).items() if k != "priced"}, False),
    (rec(priced=False, ok=False, cost=0.0), False),  # failed: nothing answered, nothing billed
    (rec(backend="local", remote=None, priced=None, cost=0.0), False),
])
def test_which_answers_have_an_unknown_cost(record: dict, unknown: bool) -> None:
    [r] = parsed(record)
    assert r.cost_unknown is unknown


def test_rows_count_unknown_costs_and_the_table_never_says_zero() -> None:
    from airpods.cli.usage import _cost

    records = parsed(rec(priced=False, cost=0.0), rec(priced=False, cost=0.0),
                     rec(remote="paid", model="m2", cost=0.25),
                     rec(backend="local", remote=None, model="local-m", priced=None, cost=0.0))
    by_model = {r.key: r for r in group(records, "model")}
    assert by_model["tiny"].unknown == 2 and by_model["tiny"].as_json()["cost_unknown"] == 2
    assert _cost(by_model["tiny"]) == "cost unknown"
    assert _cost(by_model["m2"]) == "$0.2500"
    assert _cost(by_model["local-m"]) == "no API cost"
    everything = total(group(records, "model"))
    assert _cost(everything) == "$0.2500 + unknown"
    assert _cost(Row("x")) == "no API cost"


def test_an_unpriced_remote_is_marked_in_the_gateway_config(tmp_path: Path) -> None:
    from airpods.config.loader import load_config_text
    from airpods.kinds import gateway as g
    from airpods.kinds.render import render_service
    from airpods.secrets import SecretStore

    text = ('[services.gateway]\nenabled = true\n'
            + "".join(f'[services.gateway.remotes.{n}]\nbase_url = "http://{n}:1/v1"\n'
                      f'models = ["{n}-m"]\n{price}\n'
                      for n, price in (("none", ""), ("free", "price_in = 0"),
                                       ("paid", "price_out = 2.5"))))
    host = HostFacts(accelerator="cpu", reason="t", physical_cores=2, logical_cores=2)
    cfg = load_config_text(tmp_path / "c.toml", text, host=host, environ={},
                           secrets=SecretStore(tmp_path / "s")).config
    spec = render_service("gateway", cfg.services["gateway"], cfg, host)
    [f] = [f for f in spec.config_files if f.target == g.CONFIG_TARGET]
    models = json.loads(f.value.split("\n", 1)[1])["model_list"]
    priced = {m["model_name"]: m["model_info"]["airpods_priced"] for m in models
              if m["model_info"]["airpods_backend"] == "remote"}
    assert priced == {"none-m": False, "free-m": True, "paid-m": True}
    paid = next(m for m in models if m["model_name"] == "paid-m")["litellm_params"]
    assert paid["output_cost_per_token"] == pytest.approx(2.5e-6)
    assert paid["input_cost_per_token"] == 0.0


# --- tips ----------------------------------------------------------------------------------------


def test_no_tier_in_the_records_no_stay_local_tip() -> None:
    assert [t["kind"] for t in tips(parsed(rec(), rec()))] == []


def test_simple_requests_sent_away_would_have_stayed_local() -> None:
    records = parsed(rec(tier="SIMPLE", cost=0.1), rec(tier="simple", cost=0.15),
                     rec(tier="medium", cost=0.05), rec(tier="complex", cost=3.0),
                     rec(tier="reasoning", cost=4.0),
                     rec(tier="simple", backend="local", remote=None, priced=None, cost=0.0))
    [tip] = tips(records)
    assert tip["kind"] == "stay_local" and tip["subject"] == "cloud" and tip["requests"] == 3
    assert tip["text"] == ("3 requests to remote cloud were classified simple or medium: about "
                           "$0.3000 would have stayed local")


def test_a_remote_without_a_price_is_named() -> None:
    records = parsed(rec(priced=False, cost=0.0), rec(priced=False, cost=0.0, remote="lan"),
                     rec(priced=False, cost=0.0, remote="lan"))
    found = tips(records)
    assert [(t["kind"], t["subject"], t["requests"]) for t in found] == [
        ("no_price", "lan", 2), ("no_price", "cloud", 1)]
    assert found[0]["text"].startswith("remote lan has no price set: its cost shows as unknown")
    # An unpriced remote's simple requests: how much they cost is unknown, not $0.
    [stay, _] = tips(parsed(rec(priced=False, cost=0.0, tier="simple")))
    assert "their cost is unknown" in stay["text"] and "$" not in stay["text"]


def test_a_larger_tier_only_when_one_fits() -> None:
    records = parsed(*[rec(backend="local", remote=None, priced=None, cost=0.0, model=TINY,
                           latency_ms=ms) for ms in (1000.0, 3000.0, 2000.0)])
    [tip] = tips(records, lambda model: ("large", "org/repo:Q4_K_M") if model == TINY else None)
    assert tip == {"kind": "larger_tier", "subject": TINY, "requests": 3, "text": (
        f"local model {TINY} answered 3 requests in p50 2.00 s: a larger tier fits this machine "
        "(large, org/repo:Q4_K_M; `airpods models recommend`)")}
    assert tips(records, lambda model: None) == []


def test_at_most_three_tips() -> None:
    records = parsed(*[rec(remote=f"r{i}", priced=False, cost=0.0) for i in range(5)])
    assert len(tips(records, lambda model: ("x", "y"))) == MAX_TIPS == 3


def _host(memory_gb: int, cores: int, vram_gb: int | None = None) -> HostFacts:
    return HostFacts(accelerator="cuda" if vram_gb else "cpu", reason="t", physical_cores=cores,
                     logical_cores=cores, memory_bytes=memory_gb * 2**30,
                     vram_bytes=vram_gb * 2**30 if vram_gb else None)


def test_the_catalogue_decides_honestly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no user catalogue
    # This development machine's shape (2 cores, no GPU): bigger tiers fit in RAM, but none is
    # fast enough here, so no tip.
    assert catalogue_larger_tier(lambda: _host(24, 2))(TINY) is None
    # A GPU with 24 GB: the largest tier that fits (32B) is suggested, for the tiny model only.
    larger = catalogue_larger_tier(lambda: _host(64, 8, vram_gb=24))
    tier, ref = larger(TINY)
    assert tier == "xxl" and ref.startswith("bartowski/Qwen2.5-32B-Instruct-GGUF:")
    assert larger("tiny") is None  # not a catalogue model: nothing to compare with
    asked = []
    assert catalogue_larger_tier(lambda: asked.append(1))("tiny") is None and asked == []


# --- the CLI over real records -----------------------------------------------------------------


def test_usage_prints_cost_unknown_and_the_tips(tmp_path: Path) -> None:
    data = tmp_path / "data"
    folder = data / "airpods" / "gateway" / "gateway"
    folder.mkdir(parents=True)
    lines = [rec(priced=False, cost=0.0, tier="simple", model="big"),
             rec(priced=False, cost=0.0, model="big"),
             rec(backend="local", remote=None, priced=None, cost=0.0)]
    (folder / "usage.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRPODS_")}
    env |= {"XDG_DATA_HOME": str(data), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
            "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def usage(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "airpods", "usage", *args], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    text = usage("--by", "backend")
    [remote_row] = [ln for ln in text.splitlines() if ln.startswith("remote")]
    assert remote_row.endswith("cost unknown") and "$0" not in remote_row, text
    [total_row] = [ln for ln in text.splitlines() if ln.startswith("total")]
    assert total_row.endswith("cost unknown"), text
    tip_lines = text.split("tips:\n", 1)[1].splitlines()
    assert tip_lines == [
        "  - 1 request to remote cloud was classified simple or medium: they would have "
        "stayed local (their cost is unknown: no price set)",
        "  - remote cloud has no price set: its cost shows as unknown (2 requests; set price_in "
        "and price_out in [services.gateway.remotes.cloud])"], text
    doc = json.loads(usage("--json"))
    assert [t["kind"] for t in doc["tips"]] == ["stay_local", "no_price"]
    assert all(set(t) == {"kind", "text", "subject", "requests"} for t in doc["tips"])
    assert doc["total"]["cost_unknown"] == 2 and doc["total"]["no_api_cost"] is False
