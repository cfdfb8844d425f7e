"""Faults on real Podman: `airpods start` killed with SIGKILL part-way, and the transient Podman
API service dying mid-command.

To kill `airpods start` at an exact point, it talks to the isolated Podman through a pass-through
proxy on a unix socket (:class:`HoldingProxy`, test code only): the proxy forwards every request
until the one named by the kill point arrives, then holds it (never forwards it) and tells the
test, which SIGKILLs airpods. Podman is left exactly as an interrupted start leaves it, every
time. A second variant forwards the named request and kills airpods before the answer comes, so
Podman finishes (or abandons) that operation on its own. Then a plain `airpods start` must
converge: ready, one pod and one container for the service, nothing left half-made.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.sandbox import PodmanEnv, free_port
from tests.stack_config import airpods_env, llama_config

SERVICE = "llamacpp"
POD = "airpods-llamacpp"
CONTAINER = "airpods-llamacpp-server"
LABEL = f"label=io.airpods.service={SERVICE}"

# --------------------------------------------------------------------------------------
# A pass-through proxy that can hold one chosen request
# --------------------------------------------------------------------------------------


class HoldingProxy:
    """Forwards HTTP/1.1 over unix sockets to `upstream`; holds the request matching `trigger`.

    `trigger` is a sequence of (METHOD, path regex): each must be seen in order; the request
    matching the last one is held (`forward=False`) or forwarded (`forward=True`), and `fired`
    is set either way. Requests are parsed only far enough to find their boundaries
    (Content-Length); answers are copied back untouched.
    """

    def __init__(self, upstream: Path, path: Path, trigger: list[tuple[str, str]],
                 forward: bool = False) -> None:
        self.upstream, self.path = str(upstream), path
        self.trigger, self.forward = list(trigger), forward
        self.fired = threading.Event()
        self.seen: list[str] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(16)
        self._open: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def close(self) -> None:
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
            self._open += [client, upstream]
            threading.Thread(target=self._copy, args=(upstream, client), daemon=True).start()
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _copy(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def _matches(self, method: str, path: str) -> str:
        """"" to forward, "hold" or "fire" for the trigger's last step."""
        with self._lock:
            self.seen.append(f"{method} {path}")
            if self.fired.is_set() or not self.trigger:
                return ""
            want_method, pattern = self.trigger[0]
            if method != want_method or not re.search(pattern, path):
                return ""
            self.trigger.pop(0)
            if self.trigger:
                return ""
            return "fire"

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = client.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip()
                           for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                if "chunked" in headers.get("transfer-encoding", ""):
                    upstream.sendall(head + b"\r\n\r\n" + buf)  # rest of this connection: raw
                    self._copy(client, upstream)
                    return
                length = int(headers.get("content-length", "0"))
                while len(buf) < length:
                    data = client.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:length], buf[length:]
                verdict = self._matches(method, path)
                if verdict == "fire" and not self.forward:
                    self.fired.set()
                    return  # held: never forwarded; airpods waits for an answer until killed
                upstream.sendall(head + b"\r\n\r\n" + body)
                if verdict == "fire":
                    self.fired.set()
        except OSError:
            return


# --------------------------------------------------------------------------------------
# A user's airpods against the isolated Podman
# --------------------------------------------------------------------------------------

@dataclass
class User:
    config: Path
    env: dict[str, str]
    port: int
    penv: PodmanEnv
    run_dir: Path

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "airpods", "--config", str(self.config), *args]

    def airpods(self, *args: str, timeout: float = 180,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), env=env or self.env, capture_output=True,
                              text=True, timeout=timeout)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), env=env or self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def podman(self, *args: str) -> subprocess.CompletedProcess:
        return self.penv.podman(*args, timeout=60)

    def containers(self) -> list[tuple[str, str]]:
        """(name, state) of the service's containers, its pod's infra container left out."""
        out = self.podman("ps", "-a", "--filter", LABEL, "--format", "json").stdout
        return sorted((c["Names"][0], c["State"]) for c in json.loads(out) if not c["IsInfra"])

    def pods(self) -> list[str]:
        out = self.podman("pod", "ps", "--filter", LABEL, "--format", "{{.Name}}").stdout
        return sorted(out.split())

    def lock_file(self, podman_url: str) -> Path:
        """The state lock airpods takes for `podman_url` (see airpods.engine.lock.lock_path)."""
        digest = hashlib.sha256(podman_url.encode()).hexdigest()[:12]
        return self.run_dir / "airpods" / f"state-{digest}.lock"


def _short_dir(prefix: str) -> Path:
    # Unix socket paths are limited to ~107 bytes: pytest's tmp_path can be longer.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@pytest.fixture
def user(podman_env, llama_image, tiny_model, tmp_path) -> Iterator[User]:
    tag = tmp_path.name[-8:].replace("-", "_")
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(llama_config(llama_image, port, f"airpods_it_faults_{tag}",
                                   network=f"airpods-it-f{tag}"))
    run_dir = _short_dir("apf-")
    env = airpods_env(podman_env.env, tmp_path, XDG_RUNTIME_DIR=str(run_dir))
    u = User(config, env, port, podman_env, run_dir)
    added = u.airpods("models", "add", str(tiny_model))
    assert added.returncode == 0, added.stderr
    try:
        yield u
    finally:
        u.airpods("stop", "--timeout", "1")
        shutil.rmtree(run_dir, ignore_errors=True)


def _diagnose(u: User) -> str:
    """What Podman and the host firewall show for the service (for a failure message)."""
    ps = u.podman("ps", "-a", "--pod", "--format", "{{.Names}} {{.State}} {{.PodName}} {{.Ports}}")
    nat = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    rules = [ln for ln in nat.splitlines() if str(u.port) in ln]
    return f"podman ps:\n{ps.stdout}\nnat rules for port {u.port}:\n" + "\n".join(rules)


def _lock_is_free(path: Path) -> bool:
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


# --------------------------------------------------------------------------------------
# kill -9 of `airpods start` part-way
# --------------------------------------------------------------------------------------

CTR_PATH = rf"/containers/{CONTAINER}"
# airpods starts a container by its name (engine/libpod.py); podman-py did it by its id.
START = rf"/containers/({CONTAINER}|[0-9a-f]{{64}})/start"


@dataclass(frozen=True)
class KillPoint:
    trigger: list[tuple[str, str]]
    forward: bool = False  # False: the request is never sent; True: sent, answer not awaited
    recreate: bool = False  # first start for real, then change the config and kill the restart
    left: Callable[[User], None] = lambda u: None  # what Podman must show right after the kill


def _pod_without_container(u: User) -> None:
    assert u.pods() == [POD] and u.containers() == []


def _network_without_pod(u: User) -> None:
    assert u.pods() == [] and u.containers() == []


def _container_in(*states: str) -> Callable[[User], None]:
    def check(u: User) -> None:
        found = u.containers()
        assert [n for n, _ in found] == [CONTAINER] and found[0][1] in states, found

    return check


KILL_POINTS = {
    # Network and volume made, the pod create never sent.
    "before-pod-create": KillPoint([("POST", r"/pods/create")], left=_network_without_pod),
    # The pod exists (with its infra container), its service container was never asked for.
    "after-pod-create": KillPoint([("POST", r"/containers/create")], left=_pod_without_container),
    # The container exists but was never started.
    "after-container-create": KillPoint([("POST", START)],
                                        left=_container_in("created")),
    # Started; airpods was waiting for readiness (its next container check is held).
    "waiting-for-ready": KillPoint([("POST", START), ("GET", rf"{CTR_PATH}/json")],
                                   left=_container_in("running")),
    # Podman gets the request, airpods dies before the answer: Podman finishes it on its own.
    "during-pod-create": KillPoint([("POST", r"/pods/create")], forward=True),
    "during-container-create": KillPoint([("POST", r"/containers/create")], forward=True),
    "during-start": KillPoint([("POST", START)], forward=True),
    # A config change recreates: killed after the old container was stopped, before its removal.
    "recreate-after-stop": KillPoint([("DELETE", r"/containers/")], recreate=True,
                                     left=_container_in("exited", "stopped")),
    # ... and after its removal, before the pod's.
    "recreate-after-container-rm": KillPoint([("DELETE", r"/pods/")], recreate=True,
                                             left=_pod_without_container),
    "recreate-during-pod-rm": KillPoint([("DELETE", r"/pods/")], recreate=True, forward=True),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_start_killed_part_way_then_start_converges(user: User, point: str) -> None:
    kp = KILL_POINTS[point]
    if kp.recreate:
        first = user.airpods("start", SERVICE)
        assert first.returncode == 0, first.stderr
        changed = user.airpods("config", "set", "services.llamacpp.command_args.ctx_size", "512")
        assert changed.returncode == 0, changed.stderr
    proxy_dir = _short_dir("apf-px-")
    path = proxy_dir / "p.sock"
    lock = user.lock_file(f"unix://{path}")
    proxy = HoldingProxy(user.penv.socket_path, path, kp.trigger, kp.forward)
    try:
        proc = user.popen("start", SERVICE, env={**user.env, "CONTAINER_HOST": proxy.url})
        if not proxy.fired.wait(timeout=120):
            proc.kill()
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"{point}: the trigger never came; requests: {proxy.seen}\n{err}")
        assert not _lock_is_free(lock), "start did not hold the state lock"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        proxy.close()
        path.unlink(missing_ok=True)
    assert _lock_is_free(lock)  # the kernel released the dead process's lock
    if kp.forward:
        time.sleep(1.0)  # let Podman finish (or abandon) the request it was given
    kp.left(user)

    # The same socket URL as the killed start, so the same lock file; nothing held this time.
    proxy = HoldingProxy(user.penv.socket_path, path, [])
    try:
        again = user.airpods("start", SERVICE, env={**user.env, "CONTAINER_HOST": proxy.url},
                             timeout=60)  # ~2 s when it works
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the start after the kill hung: {exc.stderr!r}\n{_diagnose(user)}")
    finally:
        proxy.close()
        shutil.rmtree(proxy_dir, ignore_errors=True)
    assert again.returncode == 0, again.stderr
    assert "waiting for it" not in again.stderr  # no lock left to wait on
    assert re.search(rf"ready\s+{SERVICE}\b", again.stderr), again.stderr
    assert user.containers() == [(CONTAINER, "running")]
    assert user.pods() == [POD]
    # No orphan either: every container airpods labelled (infra ones too) is in that one pod.
    labelled = json.loads(user.podman("ps", "-a", "--pod", "--format", "json",
                                      "--filter", "label=io.airpods.managed=true").stdout)
    assert sorted((c["PodName"], c["IsInfra"]) for c in labelled) == [(POD, False), (POD, True)]
    assert httpx.get(f"http://127.0.0.1:{user.port}/health").status_code == 200
    status = user.airpods("status", SERVICE, "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    row = json.loads(status.stdout)["services"][0]
    assert row["health"] == "ready" and row["config_current"] is True


def _gone(pid: int, within_s: float = 10) -> None:
    deadline = time.monotonic() + within_s
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_container_killed_with_its_conmon_is_recreated_not_waited_on(user: User) -> None:
    """kill -9 of conmon, then of llama-server (what a killed session or the OOM killer leaves):
    Podman still records the container as running and no exit. `start` must see that its
    process is gone and recreate it, instead of waiting on a dead server until the readiness
    timeout (15 minutes by default); the model volume stays."""
    first = user.airpods("start", SERVICE)
    assert first.returncode == 0, first.stderr
    pids = user.podman("inspect", "--format", "{{.State.ConmonPid}} {{.State.Pid}}",
                       CONTAINER).stdout.split()
    for pid in map(int, pids):  # conmon first: nothing is left to record the exit
        os.kill(pid, signal.SIGKILL)
        _gone(pid)
    assert user.containers() == [(CONTAINER, "running")], "Podman no longer shows it running"
    shown = user.airpods("status", SERVICE, "--json")
    row = json.loads(shown.stdout)["services"][0]
    assert shown.returncode == 1 and (row["state"], row["health"]) == ("running", "stopped"), row
    assert "process is gone" in row["detail"]
    t0 = time.monotonic()
    try:
        again = user.airpods("start", SERVICE, timeout=90)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"start hung on the dead container: {exc.stderr!r}\n"
                             f"{_diagnose(user)}") from None
    took = time.monotonic() - t0
    assert again.returncode == 0, again.stderr + _diagnose(user)
    assert "its process is gone" in again.stdout + again.stderr, again.stdout
    assert took < 120, f"start took {took:.0f}s"
    assert user.containers() == [(CONTAINER, "running")]
    status = json.loads(user.airpods("status", SERVICE, "--json").stdout)
    assert status["services"][0]["healthy"] is True, status
    listed = user.airpods("models", "list", "--json")
    assert "tiny" in listed.stdout, listed.stdout + listed.stderr


def test_stop_killed_between_container_and_pod_then_stop_removes_the_pod(user: User) -> None:
    started = user.airpods("start", SERVICE)
    assert started.returncode == 0, started.stderr
    proxy_dir = _short_dir("apf-px-")
    proxy = HoldingProxy(user.penv.socket_path, proxy_dir / "p.sock", [("DELETE", r"/pods/")])
    try:
        proc = user.popen("stop", SERVICE, env={**user.env, "CONTAINER_HOST": proxy.url})
        assert proxy.fired.wait(timeout=60), proxy.seen
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        proxy.close()
        shutil.rmtree(proxy_dir, ignore_errors=True)
    _pod_without_container(user)  # the pod still holds the service's port

    stopped = user.airpods("stop", SERVICE)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped {SERVICE}" in stopped.stderr
    assert user.pods() == [] and user.containers() == []


# --------------------------------------------------------------------------------------
# The transient Podman API service dies mid-command
# --------------------------------------------------------------------------------------


@dataclass
class Transient:
    user: User
    env: dict[str, str]
    socket: Path

    def service_pid(self) -> int | None:
        """The pid of the process serving the private socket (SO_PEERCRED), None if none."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(str(self.socket))
            except OSError:
                return None
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid = struct.unpack("3i", creds)[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"system" in cmdline and b"service" in cmdline, cmdline
        return pid

    def kill_service(self) -> None:
        pid = self.service_pid()
        assert pid is not None, "no transient service to kill"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)


@pytest.fixture
def transient(user: User, tmp_path: Path) -> Iterator[Transient]:
    """`user`, but with no Podman socket answering: airpods starts its own service, pinned to
    the isolated storage by a `podman` wrapper first on PATH."""
    real = shutil.which("podman")
    assert real
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "podman"
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(real)} "
                       f'{shlex.join(user.penv.global_args)} "$@"\n')
    wrapper.chmod(0o755)
    env = {k: v for k, v in user.env.items() if k != "CONTAINER_HOST"}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    t = Transient(user, env, user.run_dir / "airpods" / "podman.sock")
    try:
        yield t
    finally:
        user.airpods("stop", "--timeout", "1", env=env)
        pid = t.service_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("airpods:")]
    assert len(lines) == 1, stderr
    return lines[0]


def _status_works_with_a_fresh_service(t: Transient, old_pid: int) -> None:
    assert t.socket.is_socket()  # the dead service's socket file is still there, stale
    assert t.service_pid() is None
    status = t.user.airpods("status", SERVICE, "--json", env=t.env)
    assert status.returncode in (0, 1), status.stderr
    row = json.loads(status.stdout)["services"][0]
    assert row["state"] == "running", row  # the container outlived the API service
    assert "started a transient Podman API service" in status.stderr
    new_pid = t.service_pid()
    assert new_pid is not None and new_pid != old_pid


def test_service_dies_while_start_waits(transient: Transient) -> None:
    t, u = transient, transient.user
    # A server that never becomes ready: airpods stays in its readiness wait.
    never = u.airpods("config", "set", "services.llamacpp.entrypoint_override",
                      '["/bin/sh", "-c", "sleep 600"]', env=t.env)
    assert never.returncode == 0, never.stderr
    proc = u.popen("start", SERVICE, env=t.env)
    deadline = time.monotonic() + 120
    while u.containers() != [(CONTAINER, "running")]:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    time.sleep(0.5)  # well inside the wait
    old_pid = t.service_pid()
    assert old_pid is not None
    t.kill_service()
    killed_at = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    noticed = time.monotonic() - killed_at
    assert proc.returncode == 1, stderr
    line = _one_error_line(stderr)
    assert "lost the connection to Podman" in line, line
    assert "airpods starts a fresh Podman API service" in line, line
    assert noticed < 10, noticed  # the next container check notices, not the health timeout
    _status_works_with_a_fresh_service(t, old_pid)


def test_service_dies_while_following_logs(transient: Transient) -> None:
    t, u = transient, transient.user
    started = u.airpods("start", SERVICE, env=t.env)
    assert started.returncode == 0, started.stderr
    proc = u.popen("logs", SERVICE, "-f", env=t.env)
    assert proc.stdout is not None and proc.stdout.readline().strip()  # following
    old_pid = t.service_pid()
    assert old_pid is not None
    t.kill_service()  # a cut stream, not an end of stream: it must not pass for one
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1, stderr
    line = _one_error_line(stderr)
    assert "lost the connection to Podman" in line, line
    _status_works_with_a_fresh_service(t, old_pid)
