"""A published port that is already taken when `start` runs, on real Podman.

Podman 4.3's API service can keep a published port open after a container start fails; every
later `start` then fails until the service exits. The leak is reproduced exactly: a `podman`
wrapper (first on PATH, as in test_faults' `transient` fixture) binds the port and execs the
real `podman system service` with that socket inherited, so the transient API service itself
holds the port, as the leaking one does. `start` must restart its transient service once and
succeed. A port held by any other program is one line naming the port and the holder.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time

import httpx

from tests.integration import test_faults as faults
from tests.integration.test_faults import SERVICE, Transient

user, transient = faults.user, faults.transient  # the fixtures, shared with test_faults

HOLD = (
    "import os, socket, sys\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "s.listen()\n"
    "os.set_inheritable(s.fileno(), True)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _leaky_podman(t: Transient, marker_dir) -> None:
    """Replace the transient fixture's wrapper: its next `system service` holds the port."""
    real = shutil.which("podman", path=t.env["PATH"].split(":", 1)[1])
    assert real
    marker = marker_dir / "leak-once"
    marker.touch()
    wrapper = marker_dir / "leak-bin" / "podman"
    wrapper.parent.mkdir()
    real_argv = shlex.join([real, *t.user.penv.global_args])
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = system ] && [ "$2" = service ] && [ -e {shlex.quote(str(marker))} ]; then\n'
        f"  rm -f {shlex.quote(str(marker))}\n"
        f"  exec {shlex.quote(sys.executable)} -c {shlex.quote(HOLD)} {t.user.port} "
        f'{real_argv} "$@"\n'
        "fi\n"
        f'exec {real_argv} "$@"\n'
    )
    wrapper.chmod(0o755)
    t.env["PATH"] = f"{wrapper.parent}:{t.env['PATH']}"


def test_a_port_held_by_the_transient_service_restarts_it_once(transient: Transient,
                                                                tmp_path) -> None:
    t, u = transient, transient.user
    _leaky_podman(t, tmp_path)
    started = u.airpods("start", SERVICE, env=t.env)
    assert started.returncode == 0, started.stderr
    notes = [ln for ln in started.stderr.splitlines() if "Podman 4.3 leak" in ln]
    assert len(notes) == 1, started.stderr
    assert f"port {u.port} is held by airpods' transient Podman API service" in notes[0]
    assert not (tmp_path / "leak-once").exists()  # the leaking service did start first
    assert httpx.get(f"http://127.0.0.1:{u.port}/health", timeout=5).status_code == 200
    assert t.service_pid() is not None  # a fresh service serves the socket


def test_a_port_held_by_another_program_names_it(transient: Transient) -> None:
    t, u = transient, transient.user
    holder = subprocess.Popen(
        [sys.executable, "-c", "import socket, time\ns = socket.socket()\n"
         f"s.bind(('127.0.0.1', {u.port}))\ns.listen()\nprint('up', flush=True)\n"
         "time.sleep(120)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "up"
        began = time.monotonic()
        refused = u.airpods("start", SERVICE, env=t.env)
        assert time.monotonic() - began < 60
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 1, refused.stderr
    [line] = [ln for ln in refused.stderr.splitlines() if ln.startswith("airpods:")]
    assert f"port {u.port} on 127.0.0.1 is already in use by" in line, line
    assert f"(pid {holder.pid})" in line and "python" in line, line
    assert "restarting" not in refused.stderr  # not Podman's: nothing to restart
    assert u.pods() == []
