"""`replicas = N` on a llama-server: N servers of one model on this machine, as N services.

    [services.llamacpp]
    replicas = 2        # llamacpp on 8080, llamacpp-2 on 8081

The service NAME is replica 1 and keeps every name it had, so nothing that runs today changes.
Replica i (2..N) is the service `NAME-i`: its pod, container and network aliases are those
NAME's kind gives the name `NAME-i` (`airpods-NAME-i`, `airpods-NAME-i-server`, `NAME-i`), or
NAME's own with `-i` added where the user chose them; every host port is NAME's plus i - 1.
Everything else is NAME's: the model volume (mounted read-only), command_args, the API key.
From here on they are ordinary services: `status` shows each, `stop NAME-2` and `logs NAME-2`
address one, the gateway lists each as a deployment of the same model, and naming NAME
(`start`, `stop`, `status`) takes its replicas along (airpods.resolved.select_services).

Expanded after validation, so every key is already checked once, on NAME; what only the copies
can get wrong (a name taken, a port past 65535, a port another service publishes) is reported
at `services.NAME.replicas`, the key the user wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airpods.keys import Problem
from airpods.replica_names import count, replica_name, replica_of

if TYPE_CHECKING:
    from airpods.config.schema import AirpodsConfig, ServiceConfig

MAX_PORT = 65535


def expand(config: AirpodsConfig) -> tuple[AirpodsConfig, list[Problem]]:
    """The configuration with each replica as a service after its NAME, and what is wrong with
    the copies (then the configuration is not to be used)."""
    from airpods.config.cross_checks import cross_service_problems

    wanted = {name: count(svc) for name, svc in config.services.items() if count(svc) > 1}
    if not wanted:
        return config, []
    problems = [p for name, n in wanted.items() for p in _range_problems(config, name, n)]
    if problems:
        return config, problems
    services: dict[str, ServiceConfig] = {}
    for name, svc in config.services.items():
        services[name] = svc
        for index in range(2, wanted.get(name, 1) + 1):
            services[replica_name(name, index)] = _copy(name, svc, index)
    expanded = config.model_copy(update={"services": services})
    return expanded, [_blamed(p, services) for p in cross_service_problems(expanded)]


def _range_problems(config: AirpodsConfig, name: str, n: int) -> list[Problem]:
    from airpods.config.schema import is_service_name

    path = ("services", name, "replicas")
    svc = config.services[name]
    fix = "lower replicas"
    for index in range(2, n + 1):
        other = replica_name(name, index)
        if other in config.services:
            return [Problem(path, f"replica {index} would be the service {other!r}, which this "
                            "configuration already declares", f"{fix}, or rename [services."
                            f"{other}]")]
        if not is_service_name(other):
            return [Problem(path, f"replica {index}'s service name {other!r} is too long",
                            f"{fix}, or shorten the service name")]
    for i, port in enumerate(svc.ports):
        last = port.host + n - 1
        if last > MAX_PORT:
            return [Problem(path, f"{n} replicas need host ports {port.host}-{last} for "
                            f"ports[{i}], past {MAX_PORT}", f"{fix} to at most "
                            f"{MAX_PORT - port.host + 1}, or a lower ports[{i}].host")]
    return []


def _copy(name: str, svc: ServiceConfig, index: int) -> ServiceConfig:
    """Replica `index` of `svc`: its own names and host ports, the rest NAME's."""
    from airpods import kinds

    mine, theirs = kinds.get(svc.kind).defaults(name), kinds.get(svc.kind).defaults(
        replica_name(name, index))
    suffix = f"-{index}"
    aliases = (list(theirs["network_aliases"]) if svc.network_aliases == mine["network_aliases"]
               else [a + suffix for a in svc.network_aliases])
    return svc.model_copy(update={
        "pod": theirs["pod"] if svc.pod == mine["pod"] else svc.pod + suffix,
        "container": (theirs["container"] if svc.container == mine["container"]
                      else svc.container + suffix),
        "network_aliases": aliases,
        "ports": [p.model_copy(update={"host": p.host + index - 1}) for p in svc.ports],
    })


def _blamed(problem: Problem, services: dict[str, Any]) -> Problem:
    """A problem found on a replica, said at `services.NAME.replicas` (the replica is in no
    file); its other end, too."""
    end = problem.other_end
    other = _blamed(end, services) if end is not None else None
    path = problem.path
    base = replica_of(services, str(path[1])) if len(path) > 1 and path[0] == "services" else None
    if base is None:
        return Problem(path, problem.message, problem.hint, other)
    from airpods.keys import format_key_path

    where = format_key_path(path[2:])
    return Problem(("services", base, "replicas"),
                   f"replica {path[1]!r}{f' ({where})' if where else ''}: {problem.message}",
                   problem.hint and f"lower replicas, or: {problem.hint}", other)
