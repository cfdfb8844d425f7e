"""A throwaway airpods stack for the Podman benchmarks: isolated Podman, local image, tiny model.

    with bench_stack(extra_llama=3) as st:    # prints where it lives; cleans up at the end
        st.airpods("start", "llamacpp")       # CompletedProcess; check=True raises on failure
        st.podman_cli("pod", "ps")            # argv for the sandbox's local-mode podman CLI

The sandbox itself (tests/sandbox.py) is shared with the integration tests. Nothing here
touches the default Podman storage, the user's airpods config or data: XDG_CONFIG_HOME,
XDG_DATA_HOME and XDG_CACHE_HOME point inside the sandbox dir, which is removed at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.sandbox import (  # noqa: E402
    PodmanEnv,
    build_llama_image,
    free_ports,
    isolated_podman,
    write_tiny_model,
)
from tests.stack_config import airpods_env, llama_config  # noqa: E402

VOLUME = "airpods_bench_models"
NETWORK = "airpods-bench"
MODEL_ALIAS = "tiny"

# One more llama-server instance, added in TOML only (as a user would), on its own port.
EXTRA_LLAMA = """
[services.{name}]
kind = "llama-server"
image = "{image}"
default_model = "tiny.gguf"
pod = "airpods-{name}"
container = "airpods-{name}-server"
network_aliases = ["{name}"]
generated_secrets = ["LLAMA_API_KEY"]
ports = [{{ host = {port}, container = 8080 }}]
volumes = {{ models = {{ source = "{volume}", target = "/models", mode = "ro" }} }}
health = {{ path = "/health", expected_status = 200, timeout_s = 120, interval_s = 1.0 }}

[services.{name}.command_args]
model = "/models/{{{{ default_model }}}}"
alias = "{alias}"
ctx_size = 256
host = "0.0.0.0"
port = 8080
n_gpu_layers = 0
threads = 1
"""


def _airpods_cmd() -> list[str]:
    """The installed console script next to this Python (what a user runs), else -m airpods."""
    script = Path(sys.executable).parent / "airpods"
    return [str(script)] if script.exists() else [sys.executable, "-m", "airpods"]


@dataclass
class BenchStack:
    penv: PodmanEnv
    image: str
    model: Path
    config: Path
    env: dict[str, str]
    ports: dict[str, int]  # service name -> published host port
    airpods_cmd: list[str] = field(default_factory=_airpods_cmd)

    @property
    def port(self) -> int:
        return self.ports["llamacpp"]

    def base_url(self, service: str = "llamacpp") -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def airpods_argv(self, *args: str) -> list[str]:
        return [*self.airpods_cmd, "--config", str(self.config), *args]

    @property
    def base_env(self) -> dict[str, str] | None:
        """`env` running the BEFORE tree's airpods (bench_base()), or None when none is set."""
        base = bench_base()
        return None if base is None else {**self.env, "PYTHONPATH": str(base)}

    def airpods(
        self, *args: str, check: bool = True, timeout: float = 180,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = self.airpods_argv(*args)
        proc = subprocess.run(argv, env=self.env if env is None else env, capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{shlex.join(argv)} exited {proc.returncode}\n"
                               f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
        return proc

    def api_key(self, service: str = "llamacpp") -> str:
        return self.airpods("config", "get", f"services.{service}.env.LLAMA_API_KEY").stdout.strip()

    def podman_cli(self, *args: str) -> list[str]:
        """argv of the local-mode podman CLI on the sandbox storage (run with cli_env)."""
        return self.penv.cli_argv(*args)

    def podman_remote(self, *args: str) -> list[str]:
        """argv of the podman CLI through the sandbox's REST service (run with cli_env)."""
        return self.penv.remote_argv(*args)

    @property
    def cli_env(self) -> dict[str, str]:
        return self.penv.cli_env()

    def dry_run(self, service: str = "llamacpp") -> dict:
        out = self.airpods("start", service, "--dry-run", "--json").stdout
        return json.loads(out)["services"][0]


@contextlib.contextmanager
def bench_stack(extra_llama: int = 0) -> Iterator[BenchStack]:
    """An isolated Podman + image + tiny model in a volume + a user config; all removed after.

    ``extra_llama`` more llama-server services (``llamacpp-2`` ...) are added to the config,
    each on its own free port, all serving the same tiny model.
    """
    t0 = time.monotonic()
    with isolated_podman(prefix="airpods-bench-") as penv:
        image = build_llama_image(penv)
        work = penv.base / "bench"
        model = write_tiny_model(work / "models")
        names = ["llamacpp", *(f"llamacpp-{i}" for i in range(2, extra_llama + 2))]
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        text = llama_config(image, ports["llamacpp"], VOLUME, network=NETWORK)
        for i, name in enumerate(names[1:], start=2):
            text += EXTRA_LLAMA.format(name=name, image=image, port=ports[name], volume=VOLUME,
                                       alias=f"{MODEL_ALIAS}-{i}")
        config = work / "config.toml"
        config.write_text(text)
        env = airpods_env(penv.env, work)
        env.pop("AIRPODS_CONFIG", None)
        # Fresh bytecode, as a pip install (or any checkout without PYTHONDONTWRITEBYTECODE)
        # has: written on the first (warm-up) run, inside the sandbox, never into the repo.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        st = BenchStack(penv, image, model, config, env, ports)
        st.airpods("models", "add", str(model))
        print(f"sandbox: {penv.base} (podman {penv.subnet}), image {image}, "
              f"ready in {time.monotonic() - t0:.1f}s; {load_note()}", flush=True)
        try:
            yield st
        finally:
            st.airpods("stop", "--timeout", "1", check=False)
            print(f"measured; {load_note()}; removing the sandbox", flush=True)


def bench_base() -> Path | None:
    """AIRPODS_BENCH_BASE: a checkout of an earlier revision (`git worktree add /tmp/perf-base
    REV`) whose airpods the benchmarks run as BEFORE rows, in turns with this tree's, with the
    same interpreter and venv (its package shadows this one through PYTHONPATH)."""
    base = os.environ.get("AIRPODS_BENCH_BASE")
    if not base:
        return None
    path = Path(base).resolve()
    if not (path / "airpods" / "__init__.py").is_file():
        raise SystemExit(f"AIRPODS_BENCH_BASE={base}: no airpods package there")
    return path


def before(name: str) -> str:
    """The row name of the BEFORE tree's run of `name`."""
    return f"BEFORE {name}"


def load_note() -> str:
    """The 1/5/15-minute load averages and the CPU count: other work skews every number."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def wait_http(client, url: str, *, ok: Callable[[object], bool] | None = None,
              every_s: float = 0.01, timeout_s: float = 60,
              headers: dict | None = None) -> float:
    """Poll GET url every ``every_s`` until 200 (and ``ok(response)``); perf_counter() then."""
    deadline = time.perf_counter() + timeout_s
    while True:
        try:
            resp = client.get(url, headers=headers)
            if resp.status_code == 200 and (ok is None or ok(resp)):
                return time.perf_counter()
        except Exception:  # refused / reset / not up yet
            pass
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{url} not ready in {timeout_s}s")
        time.sleep(every_s)


def run_checked(argv: Sequence[str], env: dict[str, str], stdin: str | None = None) -> None:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                          input=stdin)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} exited {proc.returncode}\n{proc.stderr[-2000:]}")
