"""Cost you can act on, through the real gateway CONTAINER: a remote with no price set answers,
its record says so, and `airpods usage` shows "cost unknown" (never $0) and a tip naming it.

tests/gateway_stack.py's stack with the stand-in remote's prices removed from the TOML before
the gateway starts; the same remote priced is tests/integration/test_gateway_usage.py's.
"""

from __future__ import annotations

import json

import pytest

from tests.gateway_stack import CHAT, REMOTE_ID, gateway_stack, served_by


@pytest.fixture(scope="module")
def stack(podman_env, llama_image, litellm_image, tiny_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tips")
    with gateway_stack(podman_env, llama_image, litellm_image, tiny_model, tmp) as stack:
        text = stack.config.read_text()
        assert "price_in = 1.0\nprice_out = 2.0\n" in text
        stack.config.write_text(text.replace("price_in = 1.0\nprice_out = 2.0\n", ""))
        stack.start("gateway")
        yield stack


def test_an_unpriced_remote_is_cost_unknown_with_a_tip(stack) -> None:
    before = len(stack.records())
    for body in (CHAT, {**CHAT, "model": "big-model"}, {**CHAT, "model": "big-model"}):
        resp = stack.chat(body)
        assert resp.status_code == 200, resp.text
    assert served_by(resp) == REMOTE_ID
    records = stack.wait_records(before + 3)[before:]
    remote = [r for r in records if r["backend"] == "remote"]
    assert len(remote) == 2 and all(r["priced"] is False for r in remote), records
    assert all(r["priced"] is None for r in records if r["backend"] == "local"), records
    out = stack.airpods("usage", "--by", "backend")
    assert out.returncode == 0, out.stderr
    [row] = [ln for ln in out.stdout.splitlines() if ln.startswith("remote")]
    assert row.endswith("cost unknown") and "$" not in row, out.stdout
    assert ("remote homelab has no price set: its cost shows as unknown (2 requests"
            in out.stdout), out.stdout
    doc = json.loads(stack.airpods("usage", "--json").stdout)
    assert doc["total"]["cost_unknown"] == 2
    assert [(t["kind"], t["subject"], t["requests"]) for t in doc["tips"]] == [
        ("no_price", "homelab", 2)]
