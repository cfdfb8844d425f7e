"""ContainerSpecs -> Kubernetes YAML: a Deployment per service, a Service per published port, a
PersistentVolumeClaim per named volume and a Secret per secret, consumed with `secretKeyRef`
(env) or as a secret volume (files).

Everything comes from the specs `start` renders: `args` are `spec.command`, env and image are the
spec's, ports keep `hostPort`/`hostIP`, mounts keep their mode. No secret value is written
anywhere but in Secret documents (base64, as Kubernetes wants).

Podman 4.3.1's `kube play` (checked in its source, pkg/specgen/generate/kube and
pkg/domain/infra/abi/play.go at v4.3.1) reads secrets its own way, so `podman_secrets` gives the
content Podman needs for each Secret:
- `secretKeyRef` reads a Podman secret holding a JSON map of base64 values;
- a `secret` volume reads a Podman secret holding `{"data": {FILE: VALUE}}` and writes VALUE
  as is (not base64-decoded) into FILE, in a volume mounted where the container mounts it
  (`subPath` and `items` are ignored, so a secret volume is mounted on a directory);
- a Secret document it plays is stored as YAML, which neither of the above can read: play the
  YAML without the Secret documents once the Podman secrets exist.
"""

from __future__ import annotations

import base64
import json
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airpods.export.checks import check_no_clear_secret, quantity_memory
from airpods.export.model_init import model_init
from airpods.export.names import MAPPING_NOTE, NameTable, dns_label, service_name
from airpods.export.yamltext import dump_all
from airpods.record import record
from airpods.spec import ConfigFile, ContainerSpec, SecretFile, podman_options

PART_OF = "airpods"
DEFAULT_PVC_SIZE = "20Gi"
# GPU resource names of the NVIDIA and AMD device plugins, chosen from the spec's devices.
GPU_RESOURCES = (("nvidia.com/gpu", "nvidia.com/gpu"), ("/dev/kfd", "amd.com/gpu"))
# The pass-through options (airpods.spec.PodmanOption) a Deployment carries, and which of their
# items: devices as GPU limits, numeric groups as supplementalGroups, capabilities, no-new-
# privileges as allowPrivilegeEscalation, limits. Kubernetes has no field for arbitrary podman
# flags: any other option a spec sets is named in a comment and a note, never dropped unseen.
_CARRIED: dict[str, Callable[[Any], bool]] = {
    "devices": lambda _: True, "group_add": lambda gid: str(gid).isdigit(),
    "cap_drop": lambda _: True, "cap_add": lambda _: True,
    "security_opt": lambda opt: opt == "no-new-privileges",
    "memory": lambda _: True, "cpus": lambda _: True,
}

@record
class KubeDoc:
    kind: str
    name: str
    body: dict[str, Any]
    comments: tuple[str, ...] = ()


@record
class PodmanSecret:
    """What `podman secret create NAME FILE` must hold for Podman 4.3.1 `kube play`."""

    name: str
    payload: str
    usage: str  # "env" (secretKeyRef) | "file" (secret volume)


@dataclass
class KubeExport:
    documents: list[KubeDoc]
    podman_secrets: list[PodmanSecret] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self, *, secrets: bool = True) -> str:
        """The multi-document YAML; `secrets=False` leaves the Secret documents out."""
        docs = [d for d in self.documents if secrets or d.kind != "Secret"]
        head = list(self.header)
        if not secrets:
            head.append("Secret documents left out: create the Podman secrets first.")
        out = [(d.body, (*(head if i == 0 else ()), *d.comments)) for i, d in enumerate(docs)]
        return dump_all(out)


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def _labels(spec: ContainerSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": dns_label(spec.service), "app.kubernetes.io/part-of": PART_OF}


def _meta(name: str, spec: ContainerSpec | None = None) -> dict[str, Any]:
    labels = _labels(spec) if spec else {"app.kubernetes.io/part-of": PART_OF}
    return {"name": name, "labels": labels}


def kube_secret_name(name: str) -> str:
    """`airpods-llamacpp-llama-api-key` -> `airpods-kube-llamacpp-llama-api-key`.

    `start` and the quadlets keep a service's key in a Podman secret of the first name, holding
    the bare key; `kube play` reads its secrets as JSON. Distinct names let both live on one
    host's Podman: neither replaces the other's secret with a format it cannot read.
    """
    return "airpods-kube-" + name.removeprefix("airpods-")


@dataclass
class _Secrets:
    """Secret documents and their Podman payloads, named once."""

    names: NameTable = field(default_factory=lambda: NameTable("secret"))
    docs: list[KubeDoc] = field(default_factory=list)
    podman: list[PodmanSecret] = field(default_factory=list)

    def add_env(self, spec: ContainerSpec, var: str, value: str) -> dict[str, Any]:
        name = self.names(kube_secret_name(f"airpods-{spec.service}-{var}"))
        self._doc(spec, name, {var: value}, f"{spec.service}: env {var}")
        self.podman.append(PodmanSecret(name, json.dumps({var: _b64(value)}), "env"))
        return {"name": var, "valueFrom": {"secretKeyRef": {"name": name, "key": var}}}

    def add_files(
        self, spec: ContainerSpec, directory: str, files: Sequence[SecretFile | ConfigFile],
        index: int,
    ) -> str:
        raw = files[0].name if len(files) == 1 else f"airpods-{spec.service}-secrets-{index}"
        name = self.names(kube_secret_name(raw))
        data = {posixpath.basename(f.target): f.value for f in files}
        self._doc(spec, name, data, f"{spec.service}: files in {directory}")
        self.podman.append(PodmanSecret(name, json.dumps({"data": data}), "file"))
        return name

    def _doc(self, spec: ContainerSpec, name: str, data: dict[str, str], why: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta(name, spec),
            "type": "Opaque",
            "data": {key: _b64(value) for key, value in data.items()},
        }
        self.docs.append(KubeDoc("Secret", name, body, (why,)))


def _gpu_limits(spec: ContainerSpec) -> dict[str, int]:
    if spec.accelerator == "cpu":
        return {}
    for device_prefix, resource in GPU_RESOURCES:
        if any(d.startswith(device_prefix) for d in spec.devices):
            return {resource: 1}
    return {}


def _resources(spec: ContainerSpec) -> dict[str, Any]:
    limits: dict[str, Any] = dict(_gpu_limits(spec))
    if spec.memory:
        limits["memory"] = quantity_memory(spec.memory)
    if spec.cpus:
        limits["cpu"] = f"{round(spec.cpus * 1000)}m"
    return {"limits": limits} if limits else {}


def _probe(spec: ContainerSpec) -> dict[str, Any] | None:
    if spec.health is None or not spec.ports:
        return None
    return {
        "httpGet": {"path": spec.health.path, "port": spec.ports[0].container_port},
        "periodSeconds": max(1, round(spec.health.interval_s)),
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


class _Renderer:
    def __init__(self, model_sources: Mapping[str, str], pvc_size: str) -> None:
        self.model_sources = model_sources
        self.pvc_size = pvc_size
        self.secrets = _Secrets()
        self.volume_names = NameTable("volume")
        self.service_names = NameTable("Service")
        self.pod_names = NameTable("pod")
        self.pvcs: dict[str, KubeDoc] = {}
        self.renamed: dict[str, str] = {}

    def name(self, table: NameTable, raw: str, **kwargs: Any) -> str:
        label = table(raw, **kwargs)
        if label != raw:
            self.renamed[raw] = label
        return label

    def deployment(self, spec: ContainerSpec) -> KubeDoc:
        check_no_clear_secret(spec)
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        by_source: dict[str, str] = {}
        for i, m in enumerate(spec.mounts):
            if m.is_bind:
                vol_name = f"bind-{i}"
                volumes.append({"name": vol_name, "hostPath": {"path": m.source}})
            else:
                vol_name = self.name(self.volume_names, m.source)
                by_source[m.source] = vol_name
                self.pvc(spec, m.source, vol_name)
                volumes.append({"name": vol_name,
                                "persistentVolumeClaim": {"claimName": vol_name}})
            mounts.append({"name": vol_name, "mountPath": m.target, "readOnly": m.mode == "ro"})
        for index, (directory, files) in enumerate(
            _by_directory((*spec.secret_files, *spec.config_files)).items()
        ):
            secret = self.secrets.add_files(spec, directory, files, index)
            # `optional` is set: Podman 4.3.1 dereferences it without a nil check.
            volumes.append({"name": secret, "secret": {"secretName": secret, "optional": False}})
            mounts.append({"name": secret, "mountPath": directory, "readOnly": True})
        security: dict[str, Any] = {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": list(spec.cap_drop) or ["ALL"]},
        }
        if spec.cap_add:
            security["capabilities"]["add"] = list(spec.cap_add)
        container: dict[str, Any] = {
            "name": dns_label(spec.service),
            "image": spec.image,
            "imagePullPolicy": "IfNotPresent",
        }
        if spec.entrypoint:
            container["command"] = list(spec.entrypoint)
        if spec.command:  # none: the image's CMD, as with `start`
            container["args"] = list(spec.command)
        env = self.env(spec)
        if env:
            container["env"] = env
        if spec.ports:
            container["ports"] = [
                {"containerPort": p.container_port, "hostPort": p.host_port,
                 "hostIP": p.host_ip, "protocol": p.protocol.upper()}
                for p in spec.ports
            ]
        probe = _probe(spec)
        if probe:
            container["readinessProbe"] = probe
        resources = _resources(spec)
        if resources:
            container["resources"] = resources
        container["securityContext"] = security
        if mounts:
            container["volumeMounts"] = mounts
        pod_spec: dict[str, Any] = {"automountServiceAccountToken": False}
        gids = [int(g) for g in spec.group_add if g.isdigit()]
        if gids:
            pod_spec["securityContext"] = {"supplementalGroups": gids}
        source = self.model_sources.get(spec.service)
        if source:
            pod_spec["initContainers"] = [model_init(spec, source, by_source, security)]
        pod_spec["containers"] = [container]
        if volumes:
            pod_spec["volumes"] = volumes
        name = self.name(self.pod_names, spec.pod)
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {**_meta(name, spec),
                         "annotations": {"io.airpods.config-hash": spec.config_hash}},
            "spec": {
                "replicas": 1,
                # Host ports and a ReadWriteOnce model volume: the old pod must go first.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": _labels(spec)},
                "template": {"metadata": {"labels": _labels(spec)}, "spec": pod_spec},
            },
        }
        return KubeDoc("Deployment", name, body, _deployment_comments(spec))

    def env(self, spec: ContainerSpec) -> list[dict[str, Any]]:
        out = []
        for key, value in spec.env.items():
            if key in spec.secret_env and value != "":
                out.append(self.secrets.add_env(spec, key, value))
            else:
                out.append({"name": key, "value": value})
        return out

    def pvc(self, spec: ContainerSpec, source: str, name: str) -> None:
        if name in self.pvcs:
            return
        body = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta(name),
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": self.pvc_size}}},
        }
        why = f"airpods volume {source!r} (first used by {spec.service})"
        self.pvcs[name] = KubeDoc("PersistentVolumeClaim", name, body, (why,))

    def services(self, spec: ContainerSpec) -> list[KubeDoc]:
        base = spec.network_aliases[0] if spec.network_aliases else spec.pod
        docs = []
        for i, port in enumerate(spec.ports):
            raw = base if i == 0 else f"{base}-{port.container_port}"
            name = self.name(self.service_names, raw, mapper=service_name)
            body = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _meta(name, spec),
                "spec": {
                    "selector": _labels(spec),
                    "ports": [{"port": port.container_port, "targetPort": port.container_port,
                               "protocol": port.protocol.upper()}],
                },
            }
            why = (f"{spec.service}: http://{name}:{port.container_port} in the cluster, as "
                   f"on airpods' network")
            docs.append(KubeDoc("Service", name, body, (why,)))
        return docs


def _by_directory(
    files: Sequence[SecretFile | ConfigFile],
) -> dict[str, list[SecretFile | ConfigFile]]:
    groups: dict[str, list[SecretFile | ConfigFile]] = {}
    for f in files:
        groups.setdefault(posixpath.dirname(f.target) or "/", []).append(f)
    return groups


def _deployment_comments(spec: ContainerSpec) -> tuple[str, ...]:
    lines = [f"service {spec.service} ({spec.kind}): image {spec.image} ({spec.image_reason})"]
    if spec.accelerator != "cpu" and not _gpu_limits(spec):
        lines.append(f"accelerator {spec.accelerator}: no Kubernetes GPU resource is known for "
                     f"devices {', '.join(spec.devices) or '(none)'}; add one for your cluster")
    return (*lines, *left_out(spec))


def left_out(spec: ContainerSpec) -> list[str]:
    """One line per pass-through option the Deployment cannot carry (see _CARRIED)."""
    lines = []
    for name, option in podman_options():
        value = getattr(spec, name)
        if not value:
            continue
        items = value if isinstance(value, tuple) else (value,)
        carried = _CARRIED.get(name, lambda _: False)
        texts = [option.text(option.to_kwarg(item)) for item in items if not carried(item)]
        if texts:
            flags = " ".join(f"{option.flag} {text}" for text in texts)
            lines.append(f"{spec.service}: `{flags}` has no Kubernetes field here and is left "
                         "out; add its equivalent for your cluster, if it has one")
    return lines


def render_kube(
    specs: Sequence[ContainerSpec],
    *,
    model_sources: Mapping[str, str] | None = None,
    pvc_size: str = DEFAULT_PVC_SIZE,
    source: str = "",
) -> KubeExport:
    """The Kubernetes documents for `specs` (in dependency order, as `start` takes them)."""
    r = _Renderer(model_sources or {}, pvc_size)
    deployments, services = [], []
    for spec in specs:
        deployments.append(r.deployment(spec))
        services += r.services(spec)
    header = [f"Generated by `airpods export kube`{f' from {source}' if source else ''}: "
              f"{', '.join(s.service for s in specs)}.", MAPPING_NOTE]
    header += [f"  {raw} -> {label}" for raw, label in sorted(r.renamed.items())]
    docs = [*r.secrets.docs, *r.pvcs.values(), *services, *deployments]
    notes = [line for spec in specs for line in left_out(spec)]
    return KubeExport(docs, r.secrets.podman, header, notes)

