"""Who holds a host port, and the one retry `start` makes when it is Podman's own API service.

Podman 4.3's API service can keep a published port open after a container start fails: every
later `start` within the service's 600 s lifetime then fails ("address already in use", or
"internal libpod error"). When the holder is airpods' own transient service, `start` restarts
that service once and tries again; otherwise its one line names the port and the holder: a
process (name and pid, from /proc/net/{tcp,udp}[6] and /proc/*/fd, when readable) or a container
(its conmon's `-n NAME`).

Linux only, no dependencies: /proc is read directly. Used by engine/apply.py (check_ports) and
cli/start_run.py (start); nothing here talks to Podman.
"""

from __future__ import annotations

import os
import re
import socket
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from airpods.errors import AirpodsError, PortInUse
from airpods.record import record

T = TypeVar("T")
_IN_USE = re.compile(r"(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d+): bind: address already in use")
_TIME_WAIT = "06"  # a closed connection lingering: holds nothing a bind needs


@record
class Holder:
    pid: int
    name: str  # the process's comm (python3, conmon, podman)
    container: str | None = None  # for conmon: the container it runs
    transient: bool = False  # airpods' own transient Podman API service

    def describe(self) -> str:
        if self.transient:
            return f"airpods' transient Podman API service (pid {self.pid})"
        if self.container:
            return f"container {self.container} (conmon pid {self.pid})"
        return f"{self.name} (pid {self.pid})"


def _socket_inodes(ip: str, port: int, protocol: str) -> set[str]:
    """Inodes of the sockets bound to `port` that clash with binding it on `ip`: any address
    when `ip` is a wildcard, else `ip` itself or a wildcard (IPv4 or IPv6)."""
    wildcards = {"0" * 8, "0" * 32}
    mine = _hex_ip(ip)
    found: set[str] = set()
    for suffix in ("", "6"):
        try:
            lines = Path(f"/proc/net/{protocol}{suffix}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] == _TIME_WAIT or fields[9] == "0":
                continue
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) != port:
                continue
            if mine in wildcards or address in wildcards or address == mine:
                found.add(fields[9])
    return found


def _hex_ip(ip: str) -> str:
    """`ip` as /proc/net/tcp writes it: each 32-bit word read in host (little-endian) order."""
    packed = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    return "".join(f"{w:08X}" for w in struct.unpack(f"<{len(packed) // 4}I", packed))


def port_holder(ip: str, port: int, protocol: str = "tcp",
                transient_pid: int | None = None) -> Holder | None:
    """The process holding `ip:port`, if /proc shows it (not another user's, unprivileged)."""
    inodes = _socket_inodes(ip, port, protocol)
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in targets:
                    return _describe_process(int(entry.name), transient_pid)
            except OSError:
                continue
    return None


def _describe_process(pid: int, transient_pid: int | None) -> Holder:
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return Holder(pid, "?")
    container = None
    if name == "conmon" and "-n" in argv[:-1]:
        container = argv[argv.index("-n") + 1]
    return Holder(pid, name, container, transient=pid == transient_pid)


def in_use_error(exc: BaseException) -> tuple[str, int] | None:
    """(ip, port) when Podman refused a start because a port is taken, else None."""
    found = _IN_USE.search(str(getattr(exc, "explanation", "") or exc))
    if found is None:
        return None
    return found.group(1) or found.group(2), int(found.group(3))


def transient_service_pid(environ: Mapping[str, str]) -> int | None:
    """The pid serving airpods' private Podman socket (SO_PEERCRED), None when none answers."""
    from airpods.engine.podman_socket import _private_socket_path

    try:
        path = _private_socket_path(environ)
    except AirpodsError:
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return None
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[0]


def restart_transient_service(pid: int) -> None:
    """Stop the transient service `pid` and start a fresh one on the same socket."""
    import signal
    import time

    from airpods.engine.podman_socket import _private_socket_path, _start_transient_service

    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
    _start_transient_service(_private_socket_path(os.environ))


def retry_after_podman_leak(run: Callable[[], T], note: Callable[[str], None]) -> T:
    """`run()` (a start); when a port it needs is held by airpods' transient Podman service
    (Podman 4.3 keeps a published port after a failed start), restart the service once and
    run again. Any other holder: the error names it."""
    try:
        return run()
    except PortInUse as exc:
        if exc.holder is None or not exc.holder.transient:
            raise
        note(f"port {exc.port} is held by {exc.holder.describe()}, left over from a failed "
             "start (a Podman 4.3 leak); restarting that service once")
        restart_transient_service(exc.holder.pid)
        return run()
