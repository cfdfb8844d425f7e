"""`airpods doctor`'s checks of a gateway's remotes: the key's variable is set, the host resolves.

A remote's `api_key_env` unset blocks `start` of the gateway (fail); a host that does not
resolve only loses that fallback (warn). Name resolution can hang on a host without DNS, so it
runs in a worker thread with a deadline; the resolver is injectable for tests.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit

from airpods.cli.checks import FAIL, OK, WARN, Check
from airpods.record import record

RESOLVE_TIMEOUT_S = 3.0


@record
class Remote:
    service: str  # the gateway service
    name: str
    base_url: str
    api_key_env: str | None


def host_resolves(host: str, timeout: float = RESOLVE_TIMEOUT_S) -> bool:
    """True when `host` is an IP address or getaddrinfo answers within `timeout` seconds."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    answer: list[bool] = []

    def lookup() -> None:
        try:
            answer.append(bool(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)))
        except (OSError, UnicodeError):
            answer.append(False)

    worker = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(answer and answer[0])


def check_remote(
    remote: Remote, environ: Mapping[str, str], resolves: Callable[[str], bool]
) -> Check:
    label = f"remote {remote.name} ({remote.service})"
    host = urlsplit(remote.base_url).hostname or ""
    found: list[str] = []
    if remote.api_key_env:
        if not environ.get(remote.api_key_env):
            return Check(label, FAIL, f"{remote.api_key_env} is not set",
                         f"export {remote.api_key_env}=... (the remote's API key) before "
                         f"`airpods start {remote.service}`")
        found.append(f"{remote.api_key_env} set")
    else:
        found.append("no key")
    if not host or not resolves(host):
        return Check(label, WARN, f"{', '.join(found)}; {host or remote.base_url} does not "
                     "resolve", f"check services.{remote.service}.remotes.{remote.name}.base_url "
                     "and this host's DNS: requests will not fall back to it")
    return Check(label, OK, f"{', '.join(found)}; {host} resolves")


def check_remotes(
    remotes: Iterable[Remote], environ: Mapping[str, str],
    resolves: Callable[[str], bool] = host_resolves,
) -> list[Check]:
    return [check_remote(r, environ, resolves) for r in remotes]


def configured_remotes(config: object, enabled: Iterable[str]) -> list[Remote]:
    """The remotes every enabled service declares (a gateway's `remotes` tables)."""
    services = getattr(config, "services", {})
    out = []
    for name in enabled:
        svc = services.get(name)
        for remote, spec in (getattr(svc, "remotes", None) or {}).items():
            out.append(Remote(name, remote, str(spec.base_url), spec.api_key_env))
    return out
