"""`models search` on the loopback hub: GGUF repos by downloads, the best-fitting quant, and a
one-day on-disk cache (issue 14)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from airpods.config.tiers import Budget
from airpods.hub.client import Hub
from airpods.models.search import CACHE_TTL_S, search
from tests.hf_server import FakeHub
from tests.tiny_model import write_tiny_gguf

GB = 10**9
SEARCH_KEYS = {"query", "cached", "usable_bytes", "hits"}
HIT_KEYS = {"repo", "downloads", "quant", "file", "size_bytes", "quants"}


def room(usable: int) -> Budget:
    return Budget(int(usable / 0.8), usable, "RAM", 0.2)


@pytest.fixture
def hub(tmp_path: Path):
    with FakeHub() as fake:
        fake.listed("acme/Qwen-7B-GGUF", "q7-Q8_0.gguf", 8 * GB)
        fake.listed("acme/Qwen-7B-GGUF", "q7-Q4_K_M.gguf", 5 * GB)
        fake.listed("acme/Qwen-32B-GGUF", "q32-Q4_K_M.gguf", 20 * GB)
        fake.add("acme/Qwen-docs", "README.md", write_tiny_gguf(tmp_path / "x.gguf"))
        fake.listed("other/Llama-GGUF", "l-Q4_K_M.gguf", GB)
        fake.downloads.update({"acme/Qwen-7B-GGUF": 500, "acme/Qwen-32B-GGUF": 900})
        yield fake


def test_hits_by_downloads_with_the_best_fitting_quant(hub: FakeHub, tmp_path: Path) -> None:
    doc = search("qwen", Hub(endpoint=hub.url, token=""), room(10 * GB), directory=tmp_path / "c")
    assert set(doc) == SEARCH_KEYS and doc["cached"] is False
    assert [h["repo"] for h in doc["hits"]] == ["acme/Qwen-32B-GGUF", "acme/Qwen-7B-GGUF"]
    assert all(set(h) == HIT_KEYS for h in doc["hits"])
    big, seven = doc["hits"]
    assert (big["quant"], big["downloads"]) == (None, 900)  # 20 GB fits nowhere in 10
    assert (seven["quant"], seven["size_bytes"]) == ("Q8_0", 8 * GB)
    assert seven["quants"] == ["Q4_K_M", "Q8_0"]
    smaller = search("qwen", Hub(endpoint=hub.url, token=""), room(6 * GB),
                     directory=tmp_path / "c")
    assert smaller["hits"][1]["quant"] == "Q4_K_M"  # fit per run, from the cached listing


def test_the_cache_answers_for_a_day(hub: FakeHub, tmp_path: Path) -> None:
    client = Hub(endpoint=hub.url, token="")
    search("qwen", client, room(GB), directory=tmp_path / "c")
    asked = len(hub.requests)
    again = search("qwen", client, room(GB), directory=tmp_path / "c")
    assert again["cached"] is True and len(hub.requests) == asked  # no hub call
    [entry] = list((tmp_path / "c").iterdir())
    old = time.time() - CACHE_TTL_S - 60
    os.utime(entry, (old, old))
    stale = search("qwen", client, room(GB), directory=tmp_path / "c")
    assert stale["cached"] is False and len(hub.requests) > asked


def test_a_corrupt_cache_entry_is_a_miss(hub: FakeHub, tmp_path: Path) -> None:
    client = Hub(endpoint=hub.url, token="")
    search("llama", client, room(GB), directory=tmp_path / "c")
    [entry] = list((tmp_path / "c").iterdir())
    entry.write_text("{not json")
    doc = search("llama", client, room(GB), directory=tmp_path / "c")
    assert doc["cached"] is False and doc["hits"][0]["repo"] == "other/Llama-GGUF"
    assert json.loads(entry.read_text())["format"] == 1


def test_models_search_cli_json(hub: FakeHub, tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from airpods.cli import cli

    for key, sub in (("XDG_CONFIG_HOME", "cfg"), ("XDG_DATA_HOME", "data"),
                     ("XDG_CACHE_HOME", "cache")):
        monkeypatch.setenv(key, str(tmp_path / sub))
    monkeypatch.setenv("AIRPODS_ACCELERATOR", "cpu")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    result = CliRunner().invoke(cli, ["models", "search", "qwen-7b", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == SEARCH_KEYS and [h["repo"] for h in doc["hits"]] == ["acme/Qwen-7B-GGUF"]
    assert (tmp_path / "cache" / "airpods" / "hub-search").is_dir()
    text = CliRunner().invoke(cli, ["models", "search", "qwen-7b"])
    assert "acme/Qwen-7B-GGUF  500 downloads  best fit:" in text.stdout
    bad = CliRunner().invoke(cli, ["models", "search", " "])
    assert bad.exit_code != 0
