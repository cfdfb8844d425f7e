"""Finding the Podman API socket: the one place airpods decides which Podman it talks to.

Socket discovery follows what Podman users expect: CONTAINER_HOST, then the rootless
$XDG_RUNTIME_DIR/podman/podman.sock, then the rootful /run/podman/podman.sock. When none answers,
airpods starts a transient `podman system service` on a private socket and reuses it while it
lives (it exits by itself after a few idle minutes).

Moved here from engine/podman.py (unchanged) so that the read path (engine/podman_reads.py) and
the write path (engine/podman.py) share it without importing each other.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

from airpods.errors import AirpodsError, PodmanError

TRANSIENT_IDLE_S = 600
INSTALL_HINT = "install it: sudo apt-get install podman (Debian/Ubuntu) or sudo dnf install podman"


def _socket_answers(path: str, timeout: float = 0.5) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        return sock.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False
    finally:
        sock.close()


def candidate_sockets(environ: Mapping[str, str]) -> list[str]:
    found = []
    if environ.get("CONTAINER_HOST"):
        found.append(environ["CONTAINER_HOST"])
    if environ.get("XDG_RUNTIME_DIR"):
        found.append(f"unix://{environ['XDG_RUNTIME_DIR']}/podman/podman.sock")
    found.append("unix:///run/podman/podman.sock")
    return found


def _private_socket_path(environ: Mapping[str, str]) -> Path:
    from airpods.engine.lock import runtime_dir

    return runtime_dir(environ) / "podman.sock"


def _start_transient_service(path: Path) -> None:
    import shutil  # only here: shutil brings bz2 and lzma, and every command imports this module

    podman = shutil.which("podman")
    if podman is None:
        raise PodmanError("podman is not installed", hint=INSTALL_HINT)
    path.unlink(missing_ok=True)
    import subprocess  # only here: every command imports this module, few start a service

    # A new session so the service outlives this command and serves the next ones.
    subprocess.Popen(
        [podman, "system", "service", f"--time={TRANSIENT_IDLE_S}", f"unix://{path}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    from tenacity import RetryError, retry_if_result, stop_after_delay, wait_fixed
    from tenacity import Retrying as Retry

    waiting = Retry(
        retry=retry_if_result(lambda answered: not answered),
        wait=wait_fixed(0.05),
        stop=stop_after_delay(15),
    )
    try:
        waiting(_socket_answers, str(path))
    except RetryError:
        raise PodmanError(
            "podman system service did not start",
            hint="run `podman info` to see why; `airpods doctor` checks the setup",
        ) from None


def answering_socket(environ: Mapping[str, str]) -> str | None:
    """The first of the usual sockets that answers, or None."""
    for url in candidate_sockets(environ):
        if url.startswith("unix://") and _socket_answers(url[len("unix://") :]):
            return url
    return None


def find_socket(
    environ: Mapping[str, str] | None = None, note: Callable[[str], None] = lambda s: None
) -> str:
    """The URL of a Podman socket that answers, starting a transient service if needed."""
    environ = os.environ if environ is None else environ
    url = answering_socket(environ)
    if url:
        return url
    host = environ.get("CONTAINER_HOST")
    if host and not host.startswith("unix://"):
        raise PodmanError(
            f"CONTAINER_HOST={host}: airpods talks to Podman over a local unix:// socket only",
            hint="unset CONTAINER_HOST, or point it at unix:///PATH/podman.sock",
        )
    if host:
        raise PodmanError(
            f"CONTAINER_HOST={host} does not answer",
            hint="start that Podman service or unset CONTAINER_HOST",
        )
    from airpods.engine.lock import state_lock

    private = _private_socket_path(environ)
    # Two commands started at once must not both start a service (the second would unlink the
    # first one's socket): decide under a lock.
    with state_lock(private.with_name("transient.lock")):
        if _socket_answers(str(private)):
            return f"unix://{private}"
        import shutil

        if shutil.which("podman") is None:
            raise PodmanError("podman is not installed", hint=INSTALL_HINT)
        _start_transient_service(private)
    note(
        f"started a transient Podman API service on {private} "
        "(enable the podman.socket unit to skip this: systemctl --user enable --now podman.socket)"
    )
    return f"unix://{private}"


def lost_connection_error(url: str) -> PodmanError:
    """The one error for a Podman API service that stopped answering mid-command."""
    try:
        transient = url == f"unix://{_private_socket_path(os.environ)}"
    except AirpodsError:  # no private runtime dir: so not ours
        transient = False
    if transient:
        hint = "run the command again: airpods starts a fresh Podman API service"
    else:
        hint = "check that this Podman service runs (podman info), then run the command again"
    return PodmanError(f"lost the connection to Podman at {url}", hint=hint)
