"""A ContainerSpec as the Podman API's create arguments: what the adapter sends, and what
`--dry-run` prints (as the equivalent podman command lines). One place, no podman-py import."""

from __future__ import annotations

from typing import Any

from airpods.spec import ContainerSpec, podman_options


def pod_kwargs(spec: ContainerSpec) -> dict[str, Any]:
    """podman-py `pods.create` arguments (after the name) for a spec."""
    return {
        "labels": spec.labels,
        "networks": {spec.network: {"aliases": list(spec.network_aliases)}},
        "portmappings": [
            {
                "host_ip": p.host_ip,
                "host_port": p.host_port,
                "container_port": p.container_port,
                "protocol": p.protocol,
            }
            for p in spec.ports
        ],
    }


def container_kwargs(spec: ContainerSpec) -> dict[str, Any]:
    """podman-py `containers.create` arguments for a spec."""
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "name": spec.container,
        "pod": spec.pod,
        "command": list(spec.command),
        "environment": dict(spec.env),
        "labels": dict(spec.labels),
        # Podman 4.3 sends mounts=[{"type": "volume"}] as a bind mount: use `volumes=` instead.
        "volumes": {
            m.source: {"bind": m.target, "mode": m.mode + (",z" if m.relabel else "")}
            for m in spec.mounts
        },
        # Mounted files (type=mount): unlike env, `podman inspect` does not show their content.
        "secrets": [
            {"source": s.name, "target": s.target, "mode": 0o400}
            for s in (*spec.secret_files, *spec.config_files)
        ],
    }
    if spec.entrypoint:
        kwargs["entrypoint"] = list(spec.entrypoint)
    for name, option in podman_options():  # devices, capabilities, limits: airpods.spec
        value = getattr(spec, name)
        if value:
            kwargs[option.kwarg] = option.to_kwarg(value)
    return {k: v for k, v in kwargs.items() if v not in ([], {}, None) or k == "command"}
