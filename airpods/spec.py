"""Plain data passed between the stages: resolved config → ContainerSpec → engine plan."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

LABEL_MANAGED = "io.airpods.managed"
LABEL_SERVICE = "io.airpods.service"
LABEL_HASH = "io.airpods.config-hash"
LABEL_KIND = "io.airpods.kind"
LABEL_SECRETS = "io.airpods.secrets"  # the Podman secrets the container mounts, comma-separated


def _http_url(host_ip: str, port: int) -> str:
    # A wildcard bind is reached through loopback; IPv6 literals need brackets.
    ip = "127.0.0.1" if host_ip in ("0.0.0.0", "::") else host_ip
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}"


@dataclass(frozen=True)
class PortMapping:
    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"

    @property
    def url(self) -> str:
        """Where a browser or client on this host reaches the port."""
        return _http_url(self.host_ip, self.host_port)


@dataclass(frozen=True)
class Mount:
    source: str  # a named volume, or an absolute host path for a bind mount
    target: str
    mode: str  # "ro" | "rw"
    is_bind: bool = False
    # SELinux enforcing: relabel a bind mount, shared (":z"), since several services may mount it.
    # Podman labels named volumes itself.
    relabel: bool = False


@dataclass(frozen=True)
class SecretFile:
    """A secret handed to the container as a file (a Podman secret, type=mount), never as env.

    `podman inspect` shows env values; it does not show mounted secrets.
    """

    name: str  # the Podman secret's name (airpods-<service>-<variable>, lowercase)
    target: str  # absolute path of the file inside the container
    value: str  # never printed; the config hash covers it, so a new key recreates the container


@dataclass(frozen=True)
class ConfigFile:
    """A configuration file handed to the container read-only (a Podman secret, type=mount).

    Delivered like a SecretFile (atomic, read-only, its content in the config hash) but not
    secret: it is printed by `--dry-run` and never used for masking.
    """

    name: str  # the Podman secret's name (airpods-<service>-<what>)
    target: str  # absolute path of the file inside the container
    value: str


@dataclass(frozen=True)
class Health:
    path: str
    expected_status: int
    timeout_s: float
    interval_s: float
    host_port: int | None  # the published port probed from the host
    host_ip: str = "127.0.0.1"

    @property
    def url(self) -> str | None:
        if self.host_port is None:
            return None
        return _http_url(self.host_ip, self.host_port) + self.path


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one service's pod and container, and nothing Podman-specific."""

    service: str
    kind: str
    image: str
    image_reason: str
    accelerator: str
    pod: str
    container: str
    network: str
    network_aliases: tuple[str, ...]
    ports: tuple[PortMapping, ...]
    mounts: tuple[Mount, ...]
    env: dict[str, str]
    command: tuple[str, ...]
    entrypoint: tuple[str, ...] | None = None
    secret_env: frozenset[str] = frozenset()
    secret_files: tuple[SecretFile, ...] = ()
    config_files: tuple[ConfigFile, ...] = ()
    devices: tuple[str, ...] = ()
    group_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    memory: str | None = None
    cpus: float | None = None
    health: Health | None = None
    depends_on: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    config_hash: str = ""
    notes: tuple[str, ...] = ()  # one-line explanations/warnings shown by start/dry-run
    # Settings its kind decides only once the model files can be read (through Podman), e.g. a
    # router's models_max = "auto": `kinds.Kind.settle` fills them in at start and status.
    deferred: tuple[str, ...] = ()


@dataclass(frozen=True)
class Actual:
    """What Podman has for one airpods service."""

    service: str
    container: str
    pod: str | None
    state: str  # podman's status: "running", "exited", "created", ...
    config_hash: str
    image: str
    started_at: str = ""
    exit_code: int | None = None
    ports: tuple[tuple[str, int, int], ...] = field(default=())  # (host_ip, host, container)


def config_hash(spec: ContainerSpec) -> str:
    """Hash of everything that shapes the container; a change means it must be recreated."""
    data = asdict(spec)
    for key in ("labels", "config_hash", "notes", "image_reason", "health", "depends_on"):
        data.pop(key, None)
    blob = json.dumps(data, sort_keys=True, default=sorted)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def sealed(spec: ContainerSpec) -> ContainerSpec:
    """`spec` with its config hash and labels computed: after any change to what it runs."""
    digest = config_hash(spec)
    labels = {
        LABEL_MANAGED: "true",
        LABEL_SERVICE: spec.service,
        LABEL_KIND: spec.kind,
        LABEL_HASH: digest,
    }
    if spec.secret_files or spec.config_files:
        files = (*spec.secret_files, *spec.config_files)
        labels[LABEL_SECRETS] = ",".join(file.name for file in files)
    return replace(spec, labels=labels, config_hash=digest)
