"""The LiteLLM proxy from PyPI, pinned, in a venv cached outside the repo (tests and bench).

    venv = ensure_litellm_venv()      # built once under a lock (~2-4 min), reused afterwards
    venv / "bin" / "litellm"

The gateway kind pins the same release for its image (airpods.kinds.gateway.LITELLM_VERSION).
litellm[proxy] 1.110.2 cannot be installed from the index here (its `litellm-proxy` requirement is
absent), so the pin is 1.106.12. Knobs: AIRPODS_LITELLM_VENV=/path uses (or builds) that venv;
AIRPODS_CACHE_DIR moves the cache root.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from airpods.kinds.gateway import LITELLM_VERSION

INSTALL_TIMEOUT_S = 20 * 60


def cache_root() -> Path:
    if os.environ.get("AIRPODS_CACHE_DIR"):
        return Path(os.environ["AIRPODS_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "airpods"


def venv_dir() -> Path:
    if os.environ.get("AIRPODS_LITELLM_VENV"):
        return Path(os.environ["AIRPODS_LITELLM_VENV"])
    return cache_root() / "litellm" / LITELLM_VERSION / "venv"


def ensure_litellm_venv() -> Path:
    """The venv with litellm[proxy]==LITELLM_VERSION, built under a lock when not complete."""
    venv = venv_dir()
    marker = venv / ".airpods-complete"
    if marker.exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        log_path = venv.parent / "install.log"
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        t0 = time.monotonic()
        with open(log_path, "w") as log:
            for argv in (
                [sys.executable, "-m", "venv", str(venv)],
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input",
                 f"litellm[proxy]=={LITELLM_VERSION}"],
            ):
                log.write(f"$ {' '.join(argv)}\n")
                log.flush()
                try:
                    subprocess.run(argv, check=True, stdout=log, stderr=subprocess.STDOUT,
                                   env=env, timeout=INSTALL_TIMEOUT_S)
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                    raise RuntimeError(
                        f"installing litellm[proxy]=={LITELLM_VERSION} failed ({exc}); "
                        f"see {log_path}"
                    ) from None
            log.write(f"done in {time.monotonic() - t0:.0f}s\n")
        marker.write_text(LITELLM_VERSION + "\n")
    return venv
