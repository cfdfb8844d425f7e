"""`airpods usage` and the records it reads: the gateway callback's record building and file
writing (pure parts; the real LiteLLM proxy runs it in tests/integration/test_gateway_usage.py),
the defensive reader, grouping, and the command's output and bad input.

Hostile usage files run the real CLI in a subprocess with a timeout, so a hang fails the test.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

from airpods.cli import cli
from airpods.models import gateway_usage as gu
from airpods.models.usage import UsageDB, Use

REPO = Path(__file__).resolve().parents[2]
NOW = time.time()
CALLBACK = REPO / "airpods" / "kinds" / "gateway_files" / "airpods_usage.py"


def _load_callback() -> ModuleType:
    """The shipped file as LiteLLM loads it: a module beside its config, not part of airpods."""
    spec = importlib.util.spec_from_file_location("airpods_usage_under_test", CALLBACK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


callback = _load_callback()


def rec(**over: object) -> dict:
    base = {"ts": NOW, "client": "laptop", "model": "tiny", "backend": "local", "remote": None,
            "deployment": "http://llamacpp:8080/v1", "prompt_tokens": 10,
            "completion_tokens": 5, "latency_ms": 3.5, "cost": 0.0, "ok": True}
    return {**base, **over}


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    directory = tmp_path / "data" / "airpods" / "gateway" / "gateway"
    directory.mkdir(parents=True)
    return directory / "usage.jsonl"


def write(path: Path, *records: dict, tail: bytes = b"") -> None:
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + tail)


# --- the callback's record (what LiteLLM hands a logger, as its source shapes it) -------------


def litellm_kwargs(**slo_over: object) -> dict:
    slo = {"model_group": "fallback-remote", "api_base": "http://127.0.0.1:9/v1",
           "prompt_tokens": 12, "completion_tokens": 7, "response_cost": 0.00019,
           "startTime": NOW - 0.25, "endTime": NOW,
           "metadata": {"user_api_key_alias": "open-webui"}, **slo_over}
    return {
        "standard_logging_object": slo,
        "model_info": {"id": "remote:homelab:fallback-remote", "airpods_backend": "remote",
                       "airpods_remote": "homelab"},
        "litellm_params": {"metadata": {"original_model_group": "tiny",
                                        "model_group": "fallback-remote"}},
    }


def test_record_takes_each_field_from_where_litellm_puts_it() -> None:
    start = dt.datetime.fromtimestamp(NOW - 1)
    got = callback.usage_record(litellm_kwargs(), start, dt.datetime.now(), ok=True)
    assert got == {"ts": round(NOW, 3), "client": "open-webui", "model": "tiny",
                   "backend": "remote", "remote": "homelab",
                   "deployment": "http://127.0.0.1:9/v1", "prompt_tokens": 12,
                   "completion_tokens": 7, "latency_ms": 250.0, "cost": 0.00019, "ok": True,
                   "tier": None, "served": "fallback-remote", "priced": True}


def test_record_of_a_local_answer_costs_nothing_whatever_litellm_priced() -> None:
    kwargs = litellm_kwargs(response_cost=3.0)
    kwargs["model_info"] = {"airpods_backend": "local"}
    got = callback.usage_record(kwargs, None, None, ok=True)
    assert (got["backend"], got["remote"], got["cost"]) == ("local", None, 0.0)


def test_record_of_a_failure_before_routing_has_no_backend() -> None:
    kwargs = {"model": "nope", "standard_logging_object": {"response_cost": float("nan")}}
    got = callback.usage_record(kwargs, None, None, ok=False)
    assert (got["model"], got["backend"], got["cost"], got["ok"]) == ("nope", None, 0.0, False)
    assert got["prompt_tokens"] == 0 and got["client"] is None
    # A refused key: LiteLLM has looked the model up, but nothing was sent anywhere.
    refused = {"model": "m", "model_info": {"airpods_backend": "remote", "airpods_remote": "r"}}
    got = callback.usage_record(refused, None, None, ok=False)
    assert (got["backend"], got["remote"], got["deployment"]) == (None, None, None)
    assert not callback.worth_recording(got)  # no key matched: not written at all
    unknown_model = callback.usage_record(
        {"model": "nope", "standard_logging_object": {"metadata": {"user_api_key_alias": "ci"}}},
        None, None, ok=False)
    assert callback.worth_recording(unknown_model) and unknown_model["client"] == "ci"


def test_append_is_one_line_per_record_0600_and_refuses_a_symlink(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    callback.append_record(str(path), rec())
    callback.append_record(str(path), rec(model="b"))
    lines = path.read_bytes().splitlines()
    assert [json.loads(x)["model"] for x in lines] == ["tiny", "b"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    link = tmp_path / "link.jsonl"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        callback.append_record(str(link), rec())
    assert not (tmp_path / "elsewhere").exists()


def test_a_full_file_is_set_aside_and_every_record_is_still_counted(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(callback, "ROTATE_BYTES", 600)
    for i in range(20):
        callback.append_record(str(data), rec(model=f"m{i % 4}", prompt_tokens=i))
    aside = sorted(data.parent.glob("usage-*.jsonl"))
    assert len(aside) >= 3 and data.stat().st_size < 600 + 300
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in aside)
    # Two workers rotating the same full file: the second finds it gone, nothing is overwritten.
    callback.rotate_if_full(str(aside[0]))
    callback.rotate_if_full(str(aside[0]))
    lines = [json.loads(x) for p in data.parent.glob("usage*.jsonl")
             for x in p.read_bytes().splitlines()]
    assert sorted(r["prompt_tokens"] for r in lines) == list(range(20))
    out = json.loads(run_cli(tmp_path, "--json").stdout)
    assert out["total"]["requests"] == 20 and out["total"]["prompt_tokens"] == sum(range(20))
    assert out["notes"] == []


def test_a_set_aside_file_older_than_the_window_is_not_read(tmp_path: Path, data: Path) -> None:
    old = data.parent / "usage-20250101T000000-1-abcdef.jsonl"
    write(old, rec(model="old", ts=NOW - 40 * 86400))
    os.utime(old, (NOW - 40 * 86400, NOW - 40 * 86400))
    recent = data.parent / "usage-20261201T000000-1-abcdef.jsonl"
    write(recent, rec(model="recent", ts=NOW - 86400))
    write(data, rec(model="live"))
    reading = gu.Reading()
    files = gu.usage_files(data.parent.parent, reading, since=NOW - 30 * 86400)
    assert files == [recent, data]
    assert [r["key"] for r in json.loads(run_cli(tmp_path, "--json", "--days", "60")
                                         .stdout)["rows"]] == ["live", "old", "recent"]
    link = data.parent / "usage-20261202T000000-1-abcdef.jsonl"
    link.symlink_to(recent)
    out = json.loads(run_cli(tmp_path, "--json").stdout)
    assert sorted(r["key"] for r in out["rows"]) == ["live", "recent"]
    assert any(str(link) in note and "symlink" in note for note in out["notes"])


# --- reading ----------------------------------------------------------------------------------


def test_reader_skips_garbage_wrong_types_and_a_torn_last_line(data: Path) -> None:
    write(data, rec(), rec(prompt_tokens=-1), rec(ok="yes"), rec(ts=float("inf")),
          rec(cost=float("nan")), rec(model="b", prompt_tokens=True),
          tail=b"\x00\xff garbage\n[1,2]\n" + json.dumps(rec(model="torn"))[:30].encode())
    reading = gu.read_all(data.parent.parent, since=0)
    assert [r.model for r in reading.records] == ["tiny"]
    assert reading.notes == [f"{data}: 7 unreadable lines skipped"]


def test_reader_skips_an_overlong_line_and_keeps_reading(data: Path) -> None:
    write(data, rec(model="a"))
    with data.open("ab") as f:
        f.write(b"x" * (gu.MAX_LINE * 3) + b"\n")
        f.write(json.dumps(rec(model="b")).encode() + b"\n")
    assert [r.model for r in gu.read_all(data.parent.parent, 0).records] == ["a", "b"]


def test_reader_window_by_days(data: Path) -> None:
    write(data, rec(ts=NOW - 3 * 86400, model="old"), rec(model="new"))
    reading = gu.read_all(data.parent.parent, gu.since_days(2, now=NOW))
    assert [r.model for r in reading.records] == ["new"]


def test_grouping_and_total() -> None:
    records = [gu.parse_record(json.dumps(r).encode()) for r in (
        rec(), rec(backend="remote", remote="homelab", cost=0.5, prompt_tokens=100),
        rec(model="big", backend="remote", remote="cloud", cost=1.25, client="ci"),
        rec(model="x", backend=None, ok=False, prompt_tokens=0, completion_tokens=0),
        rec(cost=9.0))]  # a local record claiming a cost: local is never charged
    by_model = {r.key: r for r in gu.group(records, "model")}
    assert by_model["tiny"].requests == 3 and by_model["tiny"].cost == 0.5
    assert by_model["tiny"].prompt_tokens == 120 and not by_model["tiny"].no_api_cost
    assert by_model["x"].failed == 1 and by_model["x"].no_api_cost
    by_backend = {r.key: r for r in gu.group(records, "backend")}
    assert set(by_backend) == {"local", "remote", "-"}
    assert by_backend["local"].no_api_cost and by_backend["local"].cost == 0.0
    assert by_backend["remote"].cost == 1.75
    [first, *_] = gu.group(records, "client")
    assert first.key == "ci"  # the costliest first
    sum_row = gu.total(gu.group(records, "model"))
    assert (sum_row.requests, sum_row.failed, sum_row.cost) == (5, 1, 1.75)
    assert sum_row.prompt_tokens == 10 + 100 + 10 + 0 + 10


# --- the command --------------------------------------------------------------------------------


def test_usage_json_and_table(data: Path) -> None:
    write(data, rec(), rec(model="big", backend="remote", remote="cloud", cost=0.125,
                           prompt_tokens=1000, completion_tokens=200, client="ci"))
    UsageDB().record("stop", [Use("airpods_llamacpp_models", "tiny.gguf", "llamacpp")],
                     tokens={"llamacpp": (40, 20)})
    UsageDB().record("stop", [Use("airpods_llamacpp_models", "old.gguf", "llamacpp")],
                     at=NOW - 90 * 86400, tokens={"llamacpp": (1, 1)})
    result = CliRunner().invoke(cli, ["usage", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [r["key"] for r in out["rows"]] == ["big", "tiny"]
    assert out["rows"][1]["no_api_cost"] is True and out["rows"][0]["cost"] == 0.125
    assert out["total"]["prompt_tokens"] == 1010 and out["total"]["cost"] == 0.125
    assert out["servers"] == [{"service": "llamacpp", "model": "tiny.gguf", "runs": 1,
                               "prompt_tokens": 40, "completion_tokens": 20, "cost": 0.0,
                               "no_api_cost": True}]
    assert out["servers_total"] == {"prompt_tokens": 40, "completion_tokens": 20}
    text = CliRunner().invoke(cli, ["usage", "--by", "backend"]).stdout
    assert "local" in text and "no API cost" in text and "$0.1250" in text
    assert "tiny.gguf" in text and "total" in text


@pytest.mark.parametrize("args", [["--days", "nan"], ["--days", "-1"], ["--days", "0"],
                                  ["--days", "1e300"], ["--days", "inf"], ["--by", "colour"]])
def test_bad_input_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # issue 23: --by too
    if args[0] == "--by":
        assert "must be one of model, backend, client" in result.stderr


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    return subprocess.run([sys.executable, "-m", "airpods", "usage", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("case", ["fifo", "symlink", "directory", "huge", "binary"])
def test_a_hostile_usage_file_neither_hangs_nor_tracebacks(tmp_path: Path, data: Path,
                                                           case: str) -> None:
    if case == "fifo":
        os.mkfifo(data)
    elif case == "symlink":
        secret = tmp_path / "secret.jsonl"
        write(secret, rec(model="not-mine"))
        data.symlink_to(secret)
    elif case == "directory":
        data.mkdir()
    elif case == "huge":
        with data.open("wb") as f:  # sparse: no disk; NUL bytes, no newline anywhere
            f.truncate(gu.MAX_BYTES + 4096)
        with data.open("ab") as f:
            f.write(b"\n" + json.dumps(rec(model="last")).encode() + b"\n")
    else:
        data.write_bytes(os.urandom(200_000))
    result = run_cli(tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = json.loads(result.stdout)
    models = [r["key"] for r in out["rows"]]
    assert models == (["last"] if case == "huge" else [])
    assert out["notes"] and all(str(data) in note for note in out["notes"])


def test_a_fifo_usage_database_is_not_opened(tmp_path: Path, data: Path) -> None:
    os.mkfifo(tmp_path / "data" / "airpods" / "usage.sqlite3")
    result = run_cli(tmp_path)
    assert result.returncode == 0 and "llama-server tokens not shown" in result.stderr


def test_damaged_records_are_skipped_with_a_note(tmp_path: Path, data: Path) -> None:
    """Issue 23: costs of 1e308 summed to inf (`Infinity` in --json), 4,300-digit token counts
    and a huge time were an internal error. Each is a damaged record: skipped, counted."""
    huge = "9" * 4300
    data.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in (
        rec(), rec(cost=1e308, backend="remote"), rec(cost=1e308, backend="remote")))
        + json.dumps(rec()).replace('"prompt_tokens": 10', f'"prompt_tokens": {huge}').encode()
        + b"\n" + json.dumps(rec()).replace(f'"ts": {NOW}', f'"ts": {huge}').encode() + b"\n")
    result = run_cli(tmp_path, "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    out = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} in --json"))
    assert [(r["key"], r["requests"]) for r in out["rows"]] == [("tiny", 1)]
    assert out["notes"] == [f"{data}: 4 unreadable lines skipped"]
    table = run_cli(tmp_path)
    assert table.returncode == 0 and "4 unreadable lines skipped" in table.stderr, table.stderr
