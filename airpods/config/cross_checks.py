"""What no single service can check alone: clashing ports and names, broken depends_on.

Runs after the schema has validated each service (the loader calls it beside the kinds' checks).
"""

from __future__ import annotations

import ipaddress

from airpods.config.schema import AirpodsConfig, PortSpec
from airpods.graphs import find_cycle
from airpods.keys import KeyPath, Problem, format_key_path


def cross_service_problems(cfg: AirpodsConfig) -> list[Problem]:
    """What no single service can check alone: clashing ports and names, broken depends_on."""
    return [
        *_port_clashes(cfg),
        *_name_clashes(cfg),
        *_dependency_problems(cfg),
    ]


def _ips_overlap(a: str, b: str) -> bool:
    # A wildcard address (0.0.0.0 or ::) takes the port on every address of the host.
    from airpods.spec import is_wildcard

    return _ip(a) == _ip(b) or is_wildcard(a) or is_wildcard(b)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # ::ffff:127.0.0.1 is 127.0.0.1 to Podman (Go reads a mapped address as IPv4).
    ip = ipaddress.ip_address(text)
    return getattr(ip, "ipv4_mapped", None) or ip


def _port_clashes(cfg: AirpodsConfig) -> list[Problem]:
    # Only enabled services publish ports, so a disabled duplicate blocks nothing.
    seen: list[tuple[KeyPath, PortSpec]] = []
    problems: list[Problem] = []
    for name in cfg.enabled_services():
        for i, port in enumerate(cfg.services[name].ports):
            path: KeyPath = ("services", name, "ports", i)
            clash = next((p for p, o in seen if _same_port(o, port)), None)
            if clash is not None:
                problems.append(_clash(path, port, clash, _clash(clash, port, path)))
            seen.append((path, port))
    return problems


def _same_port(a: PortSpec, b: PortSpec) -> bool:
    return (a.host, a.protocol) == (b.host, b.protocol) and _ips_overlap(a.host_ip, b.host_ip)


def _clash(
    path: KeyPath, port: PortSpec, other: KeyPath, other_end: Problem | None = None
) -> Problem:
    return Problem(
        (*path, "host"),
        f"host port {port.host}/{port.protocol} is already published by {format_key_path(other)}",
        "pick another host port, or disable one of the two services",
        other_end,
    )


def _name_clashes(cfg: AirpodsConfig) -> list[Problem]:
    # Pod and container names are global in Podman, whether or not the service is enabled now.
    problems: list[Problem] = []
    enabled = set(cfg.enabled_services())
    for field in ("pod", "container", "network_aliases"):
        owner: dict[str, str] = {}
        for name, svc in cfg.services.items():
            if field == "network_aliases" and name not in enabled:
                continue  # a disabled service is not on the network
            values = svc.network_aliases if field == "network_aliases" else [getattr(svc, field)]
            for value in values:
                if value in owner:
                    first = owner[value]
                    problems.append(
                        _name_clash(
                            name, field, value, first, _name_clash(first, field, value, name)
                        )
                    )
                owner.setdefault(value, name)
    return problems


def _name_clash(
    name: str, field: str, value: str, other: str, other_end: Problem | None = None
) -> Problem:
    what = {"pod": "pod name", "container": "container name"}.get(field, "network alias")
    return Problem(
        ("services", name, field),
        f"{what} {value!r} is also used by service {other!r}",
        "every service needs its own pod, container and network alias",
        other_end,
    )


def _dependency_problems(cfg: AirpodsConfig) -> list[Problem]:
    import difflib

    problems: list[Problem] = []
    for name, svc in cfg.services.items():
        for i, dep in enumerate(svc.depends_on):
            if dep not in cfg.services:
                close = difflib.get_close_matches(dep, list(cfg.services), n=1)
                hint = f"did you mean {close[0]!r}?" if close else None
                problems.append(
                    Problem(("services", name, "depends_on", i), f"unknown service {dep!r}", hint)
                )
    if problems:
        return problems
    cycle = find_cycle({n: list(s.depends_on) for n, s in cfg.services.items()})
    if cycle:
        return [
            Problem(
                ("services", cycle[0], "depends_on"),
                f"dependency cycle: {' -> '.join(cycle)}",
                "services cannot depend on each other in a circle",
            )
        ]
    return []
