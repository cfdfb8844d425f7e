"""`export kube` / `export quadlet` of the gateway, through the real CLI: its config.yaml and the
modules airpods ships travel as mounted files, every key (master, llama-server's, a remote's
from the environment, the clients file) only in Secrets / Podman secrets; the Kubernetes YAML
validates strictly and the quadlet keys are the documented ones (as tests/unit/test_export.py
checks them). Open WebUI with `via_gateway` reaches it by its Service name."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.unit.test_export import (
    QUADLET_KEYS_4_7,
    SYSTEMD_KEYS,
    UNIT_SECTION,
    parse_unit,
    validate,
)

REPO = Path(__file__).resolve().parents[2]
REMOTE_KEY = "hk-remote-secret-0123456789"
CONFIG = """\
[services.gateway]
enabled = true
[services.gateway.remotes.homelab]
base_url = "http://192.168.1.20:11434/v1"
api_key_env = "HOMELAB_KEY"
models = ["llama3.1:8b"]
price_in = 1.5
[services.gateway.fallbacks]
"qwen2.5-0.5b-instruct-q4_k_m" = ["llama3.1:8b"]
[services.gateway.clients.open_webui]
[services.open-webui]
via_gateway = true
depends_on = ["llamacpp", "gateway"]
"""
FILES = {"config.yaml", "airpods_guard.py", "airpods_usage.py"}


def airpods(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIRPODS_", "HOMELAB"))}
    environ.update(XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"),
                   XDG_CACHE_HOME=str(tmp_path / "cache"), AIRPODS_ACCELERATOR="cpu", **env)
    return subprocess.run([sys.executable, "-m", "airpods", "--config", str(config), *args],
                          env=environ, capture_output=True, text=True, timeout=60, cwd=REPO)


def test_kube_export_carries_config_modules_and_keys_as_secrets(tmp_path: Path) -> None:
    out = tmp_path / "stack.yaml"
    result = airpods(tmp_path, "export", "kube", "gateway", "open-webui", "-o", str(out),
                     HOMELAB_KEY=REMOTE_KEY)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    checked = validate(tmp_path, text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    docs = [d for d in yaml.safe_load_all(text) if d]
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    files = {k: base64.b64decode(v).decode() for d in secrets.values()
             for k, v in d["data"].items()}
    assert set(files) >= FILES and files["env.AIRPODS_REMOTE_KEY_0"] == REMOTE_KEY
    assert {"env.LITELLM_MASTER_KEY", "airpods-clients.json"} <= set(files)
    config = json.loads(files["config.yaml"].split("\n", 1)[1])
    assert "airpods_usage.usage_logger" in config["litellm_settings"]["callbacks"]
    assert files["airpods_usage.py"] == (
        REPO / "airpods" / "kinds" / "gateway_files" / "airpods_usage.py").read_text()
    # No key in clear anywhere but the (base64) Secret documents.
    others = yaml.safe_dump_all([d for d in docs if d["kind"] != "Secret"])
    keys = [files["env.LITELLM_MASTER_KEY"], REMOTE_KEY]
    assert not any(k in others or k in text for k in keys)
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    pod = deployments["airpods-gateway"]["spec"]["template"]["spec"]
    [gw] = pod["containers"]
    mounts = {m["mountPath"]: m for m in gw["volumeMounts"]}
    assert mounts["/run/secrets"]["readOnly"] is True
    assert mounts["/var/lib/airpods"]["readOnly"] is False  # the usage records
    assert gw["ports"][0]["containerPort"] == 4000 and gw["ports"][0]["hostIP"] == "127.0.0.1"
    [webui] = deployments["airpods-open-webui"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in webui["env"]}
    assert env["OPENAI_API_BASE_URLS"]["value"] == "http://gateway:4000/v1"
    assert "secretKeyRef" in env["OPENAI_API_KEYS"]["valueFrom"]
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    assert "gateway" in services  # Open WebUI's URL resolves to it


def test_quadlet_export_mounts_every_file_as_a_podman_secret(tmp_path: Path) -> None:
    units = tmp_path / "units"
    result = airpods(tmp_path, "export", "quadlet", "gateway", "-o", str(units), "--json",
                     HOMELAB_KEY=REMOTE_KEY)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert REMOTE_KEY not in result.stdout
    entries = parse_unit((units / "airpods-gateway-server.container").read_text())
    for section, key, _ in entries:
        allowed = (QUADLET_KEYS_4_7["Container"] if section == UNIT_SECTION[".container"]
                   else SYSTEMD_KEYS[section])
        assert key in allowed, f"[{section}] {key}="
    mounted = {v.split("target=")[1].split(",")[0] for s, k, v in entries if k == "Secret"}
    remote_file = "/run/secrets/env.AIRPODS_REMOTE_KEY_0"  # airpods' name, not HOMELAB_KEY
    assert {f"/run/secrets/{f}" for f in FILES} | {remote_file} <= mounted
    volumes = [v for s, k, v in entries if k == "Volume"]
    assert any(v.endswith(":/var/lib/airpods:rw") for v in volumes), volumes
    written = {Path(s["file"]).name: Path(s["file"]) for s in data["secrets"]}
    remote = next(p for n, p in written.items() if "remote-key-0" in n)
    assert REMOTE_KEY in remote.read_text()
    assert not any(REMOTE_KEY in p.read_text() for p in units.glob("*.container"))


def test_an_unset_remote_key_refuses_the_export_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "stack.yaml"
    result = airpods(tmp_path, "export", "kube", "gateway", "-o", str(out))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "HOMELAB_KEY" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
