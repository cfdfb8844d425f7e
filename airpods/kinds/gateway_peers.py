"""Peers: other machines' airpods gateways behind this one (`[services.<gateway>.peers.NAME]`).

What the host does: render the peers file the container's poller reads
(gateway_files/airpods_peers.py lists each peer every PEERS_INTERVAL_S and keeps its models as
deployments), number the peers' keys (mounted as files, as remotes' keys are), check the URLs,
list each peer once at `start` (a peer that does not answer is one warning line, and the gateway
starts without it), probe them for `airpods peers`, and read back what the poller saw for
`status`.
"""

from __future__ import annotations

import ipaddress
import json
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from airpods.config.schema import ServiceConfig
    from airpods.spec import ContainerSpec

PEERS_FILE = "/run/secrets/airpods-peers.json"
PEER_KEYS_ENV = "AIRPODS_PEER_ENV_NAMES"
PEER_KEY_PREFIX = "AIRPODS_PEER_KEY_"
STATE_NAME = "peers-state.json"
# Far beyond a real state file (a few KB per peer); a larger one is cut and so unreadable.
MAX_STATE_BYTES = 1 << 20
PEERS_MODULE = "airpods_peers"
# How often the gateway lists its peers again (a peer down at start joins within this), and how
# long one listing may take.
INTERVAL_S = 10
LIST_TIMEOUT_S = 2.0
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def key_slots(svc: ServiceConfig) -> dict[str, tuple[str, str]]:
    """{peer: (variable inside the container, the user's variable)} for each keyed peer."""
    keyed = [(name, p.api_key_env) for name, p in svc.peers.items() if p.api_key_env]
    return {name: (f"{PEER_KEY_PREFIX}{i}", var) for i, (name, var) in enumerate(keyed)}


def peers_file(svc: ServiceConfig) -> str:
    """The peers as the container's poller reads them: no key in it, only the variable's name."""
    slots = key_slots(svc)
    return json.dumps([{
        "name": name, "url": peer.url, "key_env": slots[name][0] if name in slots else None,
        "weight": peer.weight, "private_ok": peer.private_ok,
    } for name, peer in svc.peers.items()], sort_keys=True)


def container_env(svc: ServiceConfig, state_dir: str) -> dict[str, str]:
    """What the container needs to find its peers (names only, never a key)."""
    if not svc.peers:
        return {}
    env = {"AIRPODS_PEERS_FILE": PEERS_FILE, "AIRPODS_PEERS_STATE": f"{state_dir}/{STATE_NAME}",
           "AIRPODS_PEERS_INTERVAL_S": str(INTERVAL_S)}
    pairs = ",".join(f"{p}={var}" for p, (_, var) in key_slots(svc).items())
    if pairs:
        env[PEER_KEYS_ENV] = pairs
    return env


def key_variables(spec: ContainerSpec) -> list[tuple[str, str, str]]:
    """(peer, the user's variable, the container's variable) for each keyed peer."""
    text = spec.env.get(PEER_KEYS_ENV, "")
    pairs = [item.split("=", 1) for item in text.split(",") if "=" in item]
    return [(peer, var, f"{PEER_KEY_PREFIX}{i}") for i, (peer, var) in enumerate(pairs)]


def peers_of(spec: ContainerSpec) -> list[dict[str, Any]]:
    """The peers file of a rendered gateway spec ([] for none)."""
    text = next((f.value for f in spec.config_files if f.target == PEERS_FILE), None)
    return json.loads(text) if text else []


# --- checks ---------------------------------------------------------------------------------------


def problems(service: str, svc: ServiceConfig) -> list[tuple[tuple[str | int, ...], str, str]]:
    """A peer URL that is this gateway itself (its published port on this machine's loopback,
    on the address it is published on, or, published on every address, on any address or the
    name of this machine): every request would come back here."""
    out = []
    for name, peer in svc.peers.items():
        parts = urlsplit(peer.url)
        host = (parts.hostname or "").lower()
        for port in svc.ports:
            if parts.port == port.host and (_loopback(host) or host == port.host_ip or (
                    ipaddress.ip_address(port.host_ip).is_unspecified and _this_machine(host))):
                out.append((("services", service, "peers", name, "url"),
                            f"{peer.url} is this gateway itself (published on "
                            f"{port.host_ip}:{port.host})",
                            "a peer is another machine's gateway: use its LAN address and port"))
    return out


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _this_machine(host: str) -> bool:
    """Whether `host` is this machine: its host name, or an address of one of its interfaces
    (only a local address can be bound; no name is looked up, so nothing waits on DNS)."""
    import socket

    if host.rstrip(".") in {socket.gethostname().lower(), f"{socket.gethostname().lower()}.local"}:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.is_multicast:  # bindable, yet no machine's own address
        return False
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(address), 0))
    except OSError:
        return False
    return True


# --- reaching peers from this host ----------------------------------------------------------------


def list_models(url: str, key: str | None, timeout: float = LIST_TIMEOUT_S) -> tuple[
        list[str] | None, str]:
    """The model ids a peer lists, or (None, why not): one GET, bounded by `timeout`."""
    from airpods.http_clients import peer_httpx

    try:
        with peer_httpx(timeout) as client:
            answer = client.get(f"{url}/v1/models", headers={
                "Authorization": f"Bearer {key or 'airpods-no-key'}", "X-Airpods-Hop": "1"})
    except Exception as exc:  # noqa: BLE001 - any failure is "unreachable", said in one line
        return None, type(exc).__name__
    if answer.status_code != 200:
        return None, f"HTTP {answer.status_code}"
    try:
        data = answer.json().get("data", [])
        return sorted({str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")}), ""
    except (ValueError, AttributeError, KeyError, TypeError):
        return None, "not an OpenAI model list"


def probe(spec: ContainerSpec, environ: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each peer of a gateway, listed now from this host (in parallel, each bounded)."""
    from concurrent.futures import ThreadPoolExecutor

    peers = peers_of(spec)
    if not peers:
        return []
    users = {peer: var for peer, var, _inner in key_variables(spec)}

    def one(peer: dict[str, Any]) -> dict[str, Any]:
        key = environ.get(users.get(peer["name"], ""), "").strip() or None
        models, error = list_models(peer["url"], key)
        return {"gateway": spec.service, "name": peer["name"], "url": peer["url"],
                "reachable": models is not None, "models": models or [], "error": error,
                "private_ok": bool(peer.get("private_ok")), "weight": peer.get("weight", 1)}

    with ThreadPoolExecutor(max_workers=min(8, len(peers))) as pool:
        return list(pool.map(one, peers))


def start_warnings(spec: ContainerSpec, environ: Mapping[str, str]) -> list[str]:
    """One line per peer that does not answer at `start` (the gateway starts all the same)."""
    return [f"{spec.service}: peer {p['name']!r} ({p['url']}) did not answer ({p['error']}); "
            f"the gateway starts without it and adds it when it answers (checked every "
            f"{INTERVAL_S} s)" for p in probe(spec, environ) if not p["reachable"]]


# --- what the gateway's poller saw (`status`) -----------------------------------------------------


def read_state(state_dir: Path) -> dict[str, Any]:
    """The poller's last state file in `state_dir` (the gateway's usage directory on this
    host; {} when none or unreadable)."""
    from airpods.durable import open_regular

    fd, _why = open_regular(state_dir / STATE_NAME)  # a FIFO there must not hang `status`
    if fd is None:
        return {}
    try:
        with os.fdopen(fd, "rb") as f:
            data = json.loads(f.read(MAX_STATE_BYTES + 1)[:MAX_STATE_BYTES] or b"null")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def peer_routes(gateway: str, spec: ContainerSpec, state_dir: Path | None
                ) -> list[dict[str, Any]]:
    """A route row per peer deployment the gateway's poller keeps (state: up, cooldown, or
    down when its peer did not answer the last listing); `state_dir` None: the gateway is not
    running, every peer deployment is down."""
    if not peers_of(spec):
        return []
    state = read_state(state_dir) if state_dir is not None else {}
    seen = state.get("peers", {}) if isinstance(state.get("peers"), dict) else {}
    deployments = state.get("deployments", {})
    private_ok = {p["name"]: bool(p.get("private_ok")) for p in peers_of(spec)}
    rows = []
    for peer, info in seen.items():
        if peer not in private_ok or not isinstance(info, dict):
            continue
        for model in info.get("models", []):
            deployment = f"peer:{peer}:{model}"
            now = deployments.get(deployment, "up") if info.get("reachable") else "down"
            rows.append({"gateway": gateway, "model": model, "backend": "peer",
                         "private": False, "route": "peer" if now == "up" else "unavailable",
                         "via": peer, "deployment": deployment, "state": now,
                         "private_ok": private_ok[peer]})
    return rows
