"""Resolved service config → ContainerSpec: the parts every service has, then its kind's own
(`configure`, `wire`, `finalize`). Pure: no Podman, no files, no service names. In the kinds
package because a kind renders its peers too (the gateway serves the models they serve)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from airpods.argv import render_args
from airpods.gpu import ImageChoice
from airpods.host import HostFacts
from airpods.secrets import secret_env_keys
from airpods.spec import ContainerSpec, Health, Mount, PortMapping, is_wildcard, sealed

if TYPE_CHECKING:
    from airpods.config.schema import AirpodsConfig, ServiceConfig


def _env(svc: ServiceConfig) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in svc.env.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


def _mounts(svc: ServiceConfig, host: HostFacts) -> tuple[Mount, ...]:
    return tuple(
        Mount(
            source=vol.source,
            target=vol.target,
            mode=vol.mode,
            is_bind=vol.is_bind,
            relabel=host.selinux_enforcing and vol.is_bind,
        )
        for vol in svc.volumes.values()
    )


def _health(svc: ServiceConfig) -> Health | None:
    if svc.health is None:
        return None
    port = svc.ports[0] if svc.ports else None
    return Health(
        path=svc.health.path,
        expected_status=svc.health.expected_status,
        timeout_s=svc.health.timeout_s,
        interval_s=svc.health.interval_s,
        host_port=port.host if port else None,
        host_ip=port.host_ip if port else "127.0.0.1",
    )


def _image_why(choice: ImageChoice, origins: Mapping[str, str]) -> str:
    """Why this image, and which layer (file, or the kind's defaults) set the key it used."""
    origin = origins.get(choice.key)
    if origin is None:
        return choice.why
    if choice.key == "image" and not any(k.startswith("images.") for k in origins):
        return f"image set in {origin}, for every accelerator"
    return f"{choice.why} (set in {origin})"


def render_service(
    name: str,
    svc: ServiceConfig,
    config: AirpodsConfig,
    host: HostFacts,
    image_origins: Mapping[str, str] | None = None,
) -> ContainerSpec:
    from airpods import gpu
    from airpods.kinds import registry as kinds
    from airpods.kinds.capabilities import Renders
    from airpods.replica_names import replica_of

    accelerator, accel_reason = gpu.service_accelerator(
        host, gpu_enabled=svc.gpu.enabled, force_cpu=svc.gpu.force_cpu
    )
    choice = gpu.pick_image(svc.image, dict(svc.images), accelerator)
    image, image_why = choice.ref, _image_why(choice, image_origins or {})
    devices, group_add = gpu.devices_for(host, accelerator)
    notes = list(host.notes) if svc.gpu.enabled and not svc.gpu.force_cpu else []
    notes.extend(
        f"{name}: port {p.host} is published on {p.host_ip}: reachable from other machines"
        for p in svc.ports
        if is_wildcard(p.host_ip)
    )
    env = _env(svc)
    spec = ContainerSpec(
        service=name,
        kind=svc.kind,
        image=image,
        image_reason=f"{accelerator}: {accel_reason}; {image_why}",
        accelerator=accelerator,
        pod=svc.pod,
        container=svc.container,
        network=config.runtime.network,
        network_aliases=tuple(svc.network_aliases),
        ports=tuple(
            PortMapping(p.host_ip, p.host, p.container, p.protocol) for p in svc.ports
        ),
        mounts=_mounts(svc, host),
        env=env,
        command=tuple(render_args(svc.command_args)),
        entrypoint=tuple(svc.entrypoint_override) if svc.entrypoint_override else None,
        # Named like a secret, or generated as one (`generated_secrets`) whatever its name.
        secret_env=secret_env_keys(env, svc.generated_secrets),
        devices=devices,
        group_add=group_add,
        cap_drop=("ALL",),
        cap_add=tuple(svc.cap_add),
        security_opt=("no-new-privileges",),
        memory=svc.resources.memory,
        cpus=svc.resources.cpus,
        health=_health(svc),
        depends_on=tuple(svc.depends_on),
        notes=tuple(notes),
        replica_of=replica_of(config.services, name) or "",
    )
    kind = kinds.capable(svc.kind, Renders)
    if kind is not None:
        spec = kind.finalize(kind.wire(kind.configure(spec, svc, host), svc, config, host))
    return sealed(spec)

