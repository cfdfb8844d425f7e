"""The `--json` shapes scripts rely on (docs/json.md): keys pinned, exit codes pinned.

Podman is replaced by a fake adapter only where a command needs one to answer (status, models
list, doctor's gathering); the shapes come from the real commands. Any key added, removed or
renamed fails here: update docs/json.md in the same change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from airpods.cli import cli
from tests.fake_podman import use_fake_podman

STATUS_SERVICE_KEYS = {"name", "kind", "enabled", "state", "health", "healthy", "url", "image",
                       "accelerator", "uptime_s", "model", "config_current", "detail"}
STATUS_HOST_KEYS = {"accelerator", "reason", "notes"}
STATUS_ROUTE_KEYS = {"gateway", "model", "backend", "private", "route", "via", "deployment",
                     "state", "private_ok"}
DRY_RUN_SERVICE_KEYS = {"service", "kind", "image", "image_reason", "accelerator", "pod",
                        "container", "network", "network_aliases", "ports", "volumes", "env",
                        "command", "entrypoint", "devices", "group_add", "health_url",
                        "config_hash", "notes", "podman"}
MODELS_LIST_KEYS = {"volume", "configured", "models"}
MODEL_KEYS = {"name", "size", "architecture", "quantization", "parameters", "context_length",
              "last_used", "used_by", "damaged"}
MODEL_INFO_KEYS = MODEL_KEYS | {"memory", "fits"}
MEMORY_KEYS = {"weights_bytes", "kv_cache_bytes", "total_bytes"}
FITS_KEYS = {"ram", "vram", "advice"}
DOCTOR_KEYS = {"ok", "blocking", "checks", "notes"}
DOCTOR_CHECK_KEYS = {"name", "status", "found", "fix"}
EXPORT_KUBE_KEYS = {"format", "services", "output", "documents", "secrets", "commands", "notes"}
EXPORT_QUADLET_KEYS = {"format", "services", "output", "units", "secrets", "commands", "notes"}
EXPORT_SECRET_KEYS = {"name", "usage", "file"}
RECOMMEND_KEYS = {"host", "usable", "ctx", "tiers", "auto"}
RECOMMEND_HOST_KEYS = {"memory_bytes", "vram_bytes", "gpu_name", "accelerator", "physical_cores"}
RECOMMEND_USABLE_KEYS = {"where", "total_bytes", "usable_bytes", "headroom"}
RECOMMEND_TIER_KEYS = {"tier", "repo", "file", "quant", "parameters", "estimate_bytes",
                       "headroom_bytes", "fast_enough", "licence", "commercial_use", "auto"}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"),
              "XDG_CACHE_HOME": str(tmp_path / "cache"), "AIRPODS_ACCELERATOR": "cpu"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def run(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def test_status_json(env, monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_podman(monkeypatch)
    code, data = run("status", "llamacpp", "--json")
    assert set(data) == {"services", "host", "routes"}
    assert data["routes"] == []  # no gateway enabled
    [row] = data["services"]
    assert set(row) == STATUS_SERVICE_KEYS | {"memory"}  # llama-server: memory
    assert row["memory"] == {"estimate_bytes": None, "fits": None}  # no volume yet
    assert set(data["host"]) == STATUS_HOST_KEYS
    assert (row["state"], row["health"], row["healthy"]) == ("absent", "stopped", False)
    assert code == 1  # a requested service that is not ready


def _gateway_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tables: str) -> dict:
    """`status gateway --json` (exit 1: llamacpp is stopped) with a remote `big` and `tables`."""
    use_fake_podman(monkeypatch)
    monkeypatch.setattr("airpods.engine.probes.probe_many",
                        lambda specs, **kw: {s.service: ("stopped", "") for s in specs})
    config = tmp_path / "gw.toml"
    config.write_text('[services.gateway]\nenabled = true\n'
                      '[services.gateway.remotes.r]\nbase_url = "http://192.0.2.1/v1"\n'
                      f'models = ["big"]\n{tables}')
    code, data = run("--config", str(config), "status", "gateway", "--json")
    assert code == 1
    return data


def test_status_json_routes(env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _gateway_status(tmp_path, monkeypatch, '[services.gateway.fallbacks]\n'
                           '"qwen2.5-0.5b-instruct-q4_k_m" = ["big"]\n')
    local, remote = data["routes"]
    assert all(set(r) == STATUS_ROUTE_KEYS for r in data["routes"])
    assert (local["model"], local["route"], local["via"]) == (
        "qwen2.5-0.5b-instruct-q4_k_m", "fallback", "big")
    assert (remote["backend"], remote["route"], remote["via"]) == ("remote", "remote", "r")


def test_start_dry_run_json(env) -> None:
    code, data = run("start", "llamacpp", "--dry-run", "--json")
    assert code == 0
    assert set(data) == {"dry_run", "services"} and data["dry_run"] is True
    [svc] = data["services"]
    assert set(svc) == DRY_RUN_SERVICE_KEYS
    assert set(svc["ports"][0]) == {"host_ip", "host", "container", "protocol"}
    assert set(svc["volumes"][0]) == {"source", "target", "mode", "bind"}


def test_models_list_json(env, monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_podman(monkeypatch)
    code, data = run("models", "list", "--json")
    assert code == 0
    assert set(data) >= MODELS_LIST_KEYS
    assert data["models"] == []


def test_models_list_and_info_json_per_model(env, tmp_path: Path, monkeypatch) -> None:
    from tests.tiny_model import write_tiny_gguf

    volume = tmp_path / "volume"
    volume.mkdir()
    write_tiny_gguf(volume / "qwen2.5-0.5b-instruct-q4_k_m.gguf")
    use_fake_podman(monkeypatch, volume_dir=volume)
    code, data = run("models", "list", "--json")
    assert code == 0 and set(data) == MODELS_LIST_KEYS
    [model] = data["models"]
    assert set(model) == MODEL_KEYS
    # Every service whose config names it, enabled or not (llamacpp-ui shares the model).
    assert model["used_by"] == ["llamacpp", "llamacpp-ui"] and model["last_used"] is None
    code, info = run("models", "info", "qwen2.5-0.5b-instruct-q4_k_m.gguf", "--json")
    assert code == 0 and set(info) == MODEL_INFO_KEYS
    assert set(info["memory"]) == MEMORY_KEYS and set(info["fits"]) == FITS_KEYS
    assert info["memory"]["total_bytes"] == (
        info["memory"]["weights_bytes"] + info["memory"]["kv_cache_bytes"])


def test_doctor_json(env, monkeypatch: pytest.MonkeyPatch) -> None:
    from airpods.cli import doctor as doctor_module

    checks = [doctor_module.Check("podman", "ok", "podman 5.0.0, rootless"),
              doctor_module.Check("ulimits", "warn", "low", "raise them"),
              doctor_module.Check("port 127.0.0.1:8080 (llamacpp)", "fail", "in use", "stop it")]
    monkeypatch.setattr(doctor_module, "gather", lambda app, note, pull_check=False: checks)
    code, data = run("doctor", "--json")
    assert set(data) == DOCTOR_KEYS
    assert all(set(c) == DOCTOR_CHECK_KEYS for c in data["checks"])
    assert data["ok"] is False and data["blocking"] == ["port 127.0.0.1:8080 (llamacpp)"]
    assert code == 1
    monkeypatch.setattr(doctor_module, "gather", lambda app, note, pull_check=False: checks[:2])
    code, data = run("doctor", "--json")
    assert (code, data["ok"], data["blocking"]) == (0, True, [])


def test_export_kube_json(env, tmp_path: Path) -> None:
    code, data = run("export", "kube", "llamacpp", "--json")
    assert code == 0
    assert set(data) == EXPORT_KUBE_KEYS | {"yaml"}  # `yaml` only without --output
    assert data["format"] == "kube" and data["output"] is None
    assert all(set(d) == {"kind", "name"} for d in data["documents"])
    assert all(set(s) == EXPORT_SECRET_KEYS for s in data["secrets"])
    code, data = run("export", "kube", "llamacpp", "--json", "-o", str(tmp_path / "k.yaml"),
                     "--podman-secrets", str(tmp_path / "ps"))
    assert code == 0 and set(data) == EXPORT_KUBE_KEYS
    assert data["secrets"][0]["file"].startswith(str(tmp_path / "ps"))


def test_export_quadlet_json(env, tmp_path: Path) -> None:
    code, data = run("export", "quadlet", "--json", "-o", str(tmp_path / "units"))
    assert code == 0
    assert set(data) == EXPORT_QUADLET_KEYS and data["format"] == "quadlet"
    assert "airpods-llamacpp-server.container" in data["units"]
    assert all(set(s) == EXPORT_SECRET_KEYS for s in data["secrets"])


def test_usage_errors_exit_2_with_one_line(env) -> None:
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "airpods", "export", "kube", "nope", "--json"],
                            env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "unknown service 'nope'" in result.stderr


def test_models_recommend_json(env) -> None:
    code, data = run("models", "recommend", "--ctx", "2048", "--json")
    assert code == 0 and set(data) == RECOMMEND_KEYS and data["ctx"] == 2048
    assert set(data["host"]) == RECOMMEND_HOST_KEYS
    assert set(data["usable"]) == RECOMMEND_USABLE_KEYS
    assert all(set(t) == RECOMMEND_TIER_KEYS for t in data["tiers"])
    assert [t["tier"] for t in data["tiers"] if t["auto"]] == ([data["auto"]] if data["auto"]
                                                              else [])


def test_status_json_memory_of_a_model_in_the_volume(env, tmp_path: Path, monkeypatch) -> None:
    from tests.tiny_model import write_tiny_gguf

    volume = tmp_path / "volume"
    volume.mkdir()
    write_tiny_gguf(volume / "qwen2.5-0.5b-instruct-q4_k_m.gguf")
    use_fake_podman(monkeypatch, volume_dir=volume)
    code, data = run("status", "llamacpp", "--json")
    memory = data["services"][0]["memory"]
    assert set(memory) == {"estimate_bytes", "fits"}
    assert memory["fits"] is True and memory["estimate_bytes"] > 0


USAGE_KEYS = {"days", "since", "by", "rows", "total", "servers", "servers_total", "notes",
              "tips"}
USAGE_ROW_KEYS = {"key", "requests", "failed", "local", "remote", "prompt_tokens",
                  "completion_tokens", "cost", "no_api_cost", "cost_unknown"}
USAGE_TIP_KEYS = {"kind", "text", "subject", "requests"}
USAGE_SERVER_KEYS = {"service", "model", "runs", "prompt_tokens", "completion_tokens", "cost",
                     "no_api_cost"}


def test_usage_json(env) -> None:
    import time

    from airpods.models.usage import UsageDB, Use

    directory = Path(env["XDG_DATA_HOME"]) / "airpods" / "gateway" / "gateway"
    directory.mkdir(parents=True)
    record = {"ts": time.time(), "client": "master", "model": "tiny", "backend": "local",
              "remote": None, "deployment": "http://llamacpp:8080/v1", "prompt_tokens": 3,
              "completion_tokens": 2, "latency_ms": 5.0, "cost": 0.0, "ok": True}
    (directory / "usage.jsonl").write_text(json.dumps(record) + "\n")
    UsageDB().record("stop", [Use("v", "tiny.gguf", "llamacpp")], tokens={"llamacpp": (3, 2)})
    for by in ("model", "backend", "client", "route"):
        code, data = run("usage", "--by", by, "--json")
        assert code == 0 and set(data) == USAGE_KEYS and data["by"] == by
        [row] = data["rows"]
        assert set(row) == USAGE_ROW_KEYS and row["no_api_cost"] is True
        assert set(data["total"]) == USAGE_ROW_KEYS - {"key"}
        assert [set(s) for s in data["servers"]] == [USAGE_SERVER_KEYS]
        assert set(data["servers_total"]) == {"prompt_tokens", "completion_tokens"}
    assert row["key"] == "tiny -> -"  # route: a record without `tier` or `served`


def test_usage_json_by_route_names_tier_and_answering_model(env) -> None:
    import time

    directory = Path(env["XDG_DATA_HOME"]) / "airpods" / "gateway" / "gateway"
    directory.mkdir(parents=True)
    record = {"ts": time.time(), "client": "master", "model": "auto", "backend": "remote",
              "remote": "homelab", "deployment": "http://x/v1", "prompt_tokens": 3,
              "completion_tokens": 2, "latency_ms": 5.0, "cost": 0.5, "ok": True,
              "tier": "COMPLEX", "served": "big"}
    (directory / "usage.jsonl").write_text(json.dumps(record) + "\n")
    code, data = run("usage", "--by", "route", "--json")
    assert code == 0
    [row] = data["rows"]
    assert set(row) == USAGE_ROW_KEYS
    assert (row["key"], row["remote"], row["cost"]) == ("auto COMPLEX -> big", 1, 0.5)


def test_status_json_routes_escalation(env, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    data = _gateway_status(tmp_path, monkeypatch, '[services.gateway.escalation]\n'
                           'local = "qwen2.5-0.5b-instruct-q4_k_m"\nfrontier = "big"\n')
    [auto] = [r for r in data["routes"] if r["model"] == "auto"]
    assert set(auto) == STATUS_ROUTE_KEYS | {"rule"}
    assert (auto["backend"], auto["route"], auto["via"]) == ("escalation", "fallback", "big")
    assert auto["rule"].startswith("auto: SIMPLE/MEDIUM -> qwen2.5-0.5b-instruct-q4_k_m (local)")
