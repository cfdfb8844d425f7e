"""No Podman socket answers: airpods starts a transient `podman system service` on a private socket,
says so in one line, and reuses it on the next invocation while it lives.

A `podman` wrapper first on PATH pins every podman call (the transient service included) to the
isolated test storage, so nothing touches the host's containers.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path


def test_transient_service_is_started_once_then_reused(podman_env, tmp_path: Path) -> None:
    real = shutil.which("podman")
    assert real
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "podman"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(real)} '
                       f'{shlex.join(podman_env.global_args)} "$@"\n')
    wrapper.chmod(0o755)
    run_dir = Path(f"/tmp/airpods-rt-{os.getpid()}")  # short: unix socket paths are limited
    env = {k: v for k, v in os.environ.items() if k != "CONTAINER_HOST"}
    env.update(
        PATH=f"{bin_dir}:{env['PATH']}", XDG_RUNTIME_DIR=str(run_dir),
        CONTAINERS_CONF=str(podman_env.containers_conf),
        XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    socket_path = run_dir / "airpods" / "podman.sock"

    def status() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "airpods", "status", "--json"], env=env,
                              capture_output=True, text=True, timeout=120)

    try:
        first = status()
        assert '"services"' in first.stdout, first.stderr
        notes = [ln for ln in first.stderr.splitlines() if "transient Podman API service" in ln]
        assert len(notes) == 1 and str(socket_path) in notes[0]
        assert "podman.socket" in notes[0]  # how to avoid it next time
        assert socket_path.is_socket()

        second = status()
        assert '"services"' in second.stdout, second.stderr
        assert "transient" not in second.stderr  # reused, not started again
    finally:
        out = subprocess.run(["pgrep", "-f", f"system service .*{socket_path}"],
                             capture_output=True, text=True)
        for pid in out.stdout.split():
            os.kill(int(pid), signal.SIGTERM)
        shutil.rmtree(run_dir, ignore_errors=True)
