"""The one place airpods sets up its HTTP clients: each server it talks to, its timeouts, whether
a proxy from the environment applies, and which certificates it trusts.

    server                     client                                 proxy         TLS
    services' published ports  localhttp.LocalHTTP (GETs: readiness,  never         none (http)
                               status, /metrics); httpx for the
                               router's POSTs
    the hub (HF_ENDPOINT)      hub/hubhttp.HubClient; httpx where     environment   trust_context()
                               a proxy applies (it speaks CONNECT)
    image registries (doctor)  httpx                                  environment   trust_context()
    gateway peers (LAN)        httpx (`airpods peers`, start's list)  never         trust_context()
    (inside the gateway)       the poller gateway_files/airpods_peers.py builds its own
                               httpx.AsyncClient: it runs in LiteLLM, without airpods

Podman's API is a unix socket (engine/libpod.py), not here. httpx is imported inside the
functions that build it: `status` and `start` reach the services through LocalHTTP alone
(http1.py), and the hub's own client needs no httpx (bench/README.md has the import costs).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from airpods.localhttp import LocalHTTP

if TYPE_CHECKING:
    import ssl

    import httpx

USER_AGENT = "airpods"
# The hub: a silent server is told in seconds; a body that keeps coming is never cut.
HUB_CONNECT_S = 10.0
HUB_HEAD_S = 7.0  # status line and headers, whole (a question's deadline is shorter)
HUB_READ_S = 60.0  # per read
# Image registries, for `doctor`'s pull check: a check, not a transfer.
REGISTRY_CONNECT_S = 3.0
REGISTRY_READ_S = 5.0
SOCKET_READ_BYTES = 1 << 20


def local(timeout: float | None = None) -> LocalHTTP:
    """GETs to a service's port. Health URLs are plain http:// that airpods built (no TLS), and
    an HTTP(S)_PROXY in the user's environment must not capture 127.0.0.1."""
    return LocalHTTP(timeout=timeout)


def local_httpx(timeout: float) -> httpx.Client:
    """Any method to a service's port (the router's load and unload): no proxy, as `local`."""
    return _httpx(trust_env=False, timeout=timeout)


def hub_httpx() -> httpx.Client:
    """The hub through a proxy; the same `head` / `stream` surface as HubClient."""
    import httpx

    _bigger_socket_reads()
    return _httpx(follow_redirects=True, verify=trust_context(),
                  timeout=httpx.Timeout(HUB_READ_S, connect=HUB_CONNECT_S))


def registry_httpx() -> httpx.Client:
    import httpx

    return _httpx(verify=trust_context(),
                  timeout=httpx.Timeout(REGISTRY_READ_S, connect=REGISTRY_CONNECT_S))


def peer_httpx(timeout: float) -> httpx.Client:
    """Another machine's gateway on the LAN: no proxy from the environment (it would not reach a
    LAN address), verified TLS for an https peer, one deadline for the whole exchange."""
    return _httpx(trust_env=False, verify=trust_context(), timeout=timeout)


def trust_context() -> ssl.SSLContext:
    """The system's trust store (SSL_CERT_FILE / SSL_CERT_DIR honoured, as OpenSSL does),
    verifying certificate and host name; certifi's bundle where the system has none (a bare
    image). One per client, each reading the environment when it is built."""
    import ssl

    context = ssl.create_default_context()
    if not context.cert_store_stats()["x509_ca"]:
        with contextlib.suppress(ImportError):
            import certifi

            context.load_verify_locations(certifi.where())
    return context


def _httpx(**options: Any) -> httpx.Client:
    import httpx

    options.setdefault("headers", {"User-Agent": USER_AGENT})
    return httpx.Client(**options)


def _bigger_socket_reads() -> None:
    """httpcore reads 64 KiB per socket read: a multi-GB body then costs tens of thousands of
    trips through h11 and Python. 1 MiB reads about double the throughput on loopback
    (bench/bench_pull.py). A class constant of httpcore's, so set where it exists; a
    version without it keeps its own reads."""
    try:
        from httpcore._sync.http11 import HTTP11Connection
    except ImportError:
        return
    if getattr(HTTP11Connection, "READ_NUM_BYTES", SOCKET_READ_BYTES) < SOCKET_READ_BYTES:
        HTTP11Connection.READ_NUM_BYTES = SOCKET_READ_BYTES
