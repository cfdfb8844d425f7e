"""Run the gateway airpods renders as a HOST process: the real LiteLLM proxy from PyPI (pinned,
tests/litellm_env.py) with the config.yaml, modules and key files of the rendered ContainerSpec.

Only what a container gives differently is swapped: each in-network URL (http://llamacpp:8080/v1)
for the published host URL, the /run/secrets/* paths for files in a temp dir, and the usage file
path. Everything else (model list, fallbacks, auth, private lane) is what `start` would mount.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from airpods.kinds import gateway as g
from airpods.spec import ContainerSpec
from tests.litellm_env import ensure_litellm_venv

START_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HostGateway:
    url: str  # http://127.0.0.1:PORT
    master_key: str
    config_path: Path
    log: Path
    proc: subprocess.Popen

    def client(self, key: str | None = None, timeout: float = 60) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.master_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, trust_env=False)


def materialize(
    spec: ContainerSpec, workdir: Path, urls: Mapping[str, str], edit: object = None
) -> tuple[Path, dict[str, str]]:
    """Write the spec's files into `workdir`; (config path, the environment LiteLLM gets).

    `urls` maps in-network base URLs to host ones; `edit(config_dict)` may change the config
    (a hand-built mistake, to prove the guard does not rely on validation)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(spec.env)
    for f in spec.config_files:
        path = workdir / Path(f.target).name
        text = f.value
        if f.target == g.CONFIG_TARGET:
            for inner, outer in urls.items():
                text = text.replace(json.dumps(inner), json.dumps(outer))
            if callable(edit):
                data = json.loads(text.split("\n", 1)[1])
                edit(data)
                text = json.dumps(data, indent=2)
        path.write_text(text)
    for f in spec.secret_files:
        if f.target.startswith(g.ENV_PREFIX):
            env[f.target.removeprefix(g.ENV_PREFIX)] = f.value
        elif f.target == g.KEYS_TARGET:
            keys = workdir / "airpods-clients.json"
            keys.write_text(f.value)
            keys.chmod(0o600)
            env["AIRPODS_GATEWAY_CLIENTS"] = str(keys)
    env["AIRPODS_USAGE_FILE"] = str(workdir / "usage.jsonl")
    return workdir / "config.yaml", env


@contextlib.contextmanager
def run_gateway(
    spec: ContainerSpec,
    workdir: Path,
    urls: Mapping[str, str],
    extra_env: Mapping[str, str] = (),  # type: ignore[assignment]
    edit: object = None,
) -> Iterator[HostGateway]:
    venv = ensure_litellm_venv()
    if g.REMOTE_KEYS in spec.deferred:  # as `start` does: remotes' keys from the environment
        spec = g.with_remote_keys(spec, dict(extra_env))
    config, env = materialize(spec, workdir, urls, edit)
    port = free_port()
    log = workdir / "litellm.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "LITELLM"))}
    full_env |= {**env, **dict(extra_env), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                 "NO_PROXY": "*", "no_proxy": "*", "PYTHONUNBUFFERED": "1"}
    argv = [str(venv / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1",
            "--port", str(port)]
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=full_env,
                                cwd=workdir, start_new_session=True)
    gw = HostGateway(f"http://127.0.0.1:{port}", env.get(g.MASTER_VARIABLE, ""), config, log,
                     proc)
    try:
        _wait_ready(gw)
        yield gw
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_ready(gw: HostGateway) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if gw.proc.poll() is not None:
            raise AssertionError(f"litellm exited ({gw.proc.returncode}):\n{_tail(gw.log)}")
        with contextlib.suppress(httpx.TransportError):
            resp = httpx.get(gw.url + "/health/liveliness", timeout=2, trust_env=False)
            if resp.status_code == 200:
                return
        time.sleep(0.5)
    raise AssertionError(f"litellm not ready in {START_TIMEOUT_S}s:\n{_tail(gw.log)}")


def _tail(path: Path, lines: int = 60) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""
