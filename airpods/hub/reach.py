"""Fail fast when the hub cannot be reached at all.

huggingface_hub retries a refused or unresolvable connection five times with backoff, and airpods'
own retries wrap that: with no route to the hub a pull used to take 36-73 s before it said so. One
DNS lookup and one TCP connect under a short deadline, before the first question to the hub, tell
"no route" (refused, unresolvable, unreachable, silent) from everything else in a few seconds.
Errors that happen after the hub answered once (a dropped transfer, a 5xx) keep their retries.

Through a proxy (HTTPS_PROXY / HTTP_PROXY, honoured by httpx and huggingface_hub), the proxy is
what must answer, so that is what is probed and named.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

from airpods.errors import AirpodsError

DNS_TIMEOUT_S = 4.0
CONNECT_TIMEOUT_S = 4.0
HINT = "check the network, or HF_ENDPOINT for a mirror (HF_HUB_OFFLINE / --offline to skip)"


def target(endpoint: str, environ: dict[str, str] | None = None) -> tuple[str, int, str]:
    """(host, port, what to call it) that must answer for `endpoint` to be reachable."""
    parts = urlsplit(endpoint)
    scheme = parts.scheme or "https"
    host = parts.hostname or ""
    direct = host, parts.port or (443 if scheme == "https" else 80), endpoint
    env = os.environ if environ is None else environ
    proxies = {k[:-len("_proxy")].lower(): v for k, v in env.items()
               if k.lower().endswith("_proxy") and v}
    if not proxies and (environ is not None or sys.platform.startswith("linux")):
        return direct
    import urllib.request  # (with http.client and email): only when a proxy may apply

    if environ is None:
        proxies = urllib.request.getproxies()  # macOS and Windows also read system settings
    proxy = proxies.get(scheme) or proxies.get("all")
    if proxy and host and not urllib.request.proxy_bypass(host):
        p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return p.hostname or "", p.port or (443 if p.scheme == "https" else 80), f"proxy {proxy}"
    return direct


def _resolve(host: str, port: int, timeout: float) -> list[tuple]:
    """getaddrinfo with a deadline (it has none of its own: a dead resolver blocks for ~20 s)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["ok"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            box["err"] = exc

    thread = threading.Thread(target=run, name="dns", daemon=True)
    thread.start()
    thread.join(timeout)
    if "ok" in box:
        return box["ok"]  # type: ignore[return-value]
    if "err" in box:
        raise box["err"]  # type: ignore[misc]
    raise TimeoutError(f"DNS lookup of {host} did not answer within {timeout:g} s")


def check_reachable(endpoint: str, *, dns_timeout: float = DNS_TIMEOUT_S,
                    connect_timeout: float = CONNECT_TIMEOUT_S,
                    environ: dict[str, str] | None = None) -> None:
    """Raise one line naming the endpoint (or proxy) and the cause when nothing answers there."""
    from airpods.masking import mask_url

    host, port, name = target(endpoint, environ)
    name = mask_url(name)  # a password in HF_ENDPOINT or the proxy's URL is never printed
    if not host:
        raise AirpodsError(f"cannot reach {name}: no host name in it", hint=HINT)
    try:
        addresses = _resolve(host, port, dns_timeout)
    except socket.gaierror as exc:
        raise AirpodsError(f"cannot reach {name}: DNS lookup of {host} failed "
                           f"({exc.strerror or exc})", hint=HINT) from None
    except (TimeoutError, OSError) as exc:
        raise AirpodsError(f"cannot reach {name}: {exc}", hint=HINT) from None
    deadline = time.monotonic() + connect_timeout
    last: OSError | None = None
    for family, kind, proto, _, address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(left)
            sock.connect(address)
            return
        except OSError as exc:
            last = exc
        finally:
            sock.close()
    cause = _cause(last, host, port, connect_timeout)
    raise AirpodsError(f"cannot reach {name}: {cause}", hint=HINT)


def _cause(exc: OSError | None, host: str, port: int, timeout: float) -> str:
    where = f"{host}:{port}"
    if exc is None or isinstance(exc, TimeoutError):
        return f"no answer from {where} within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {where} refused"
    return f"{where}: {exc.strerror or exc}"
