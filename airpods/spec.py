"""Plain data passed between the stages: resolved config → ContainerSpec → engine plan."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from airpods.errors import AirpodsError
from airpods.record import Field, asdict, field, fields, record, replace

LABEL_MANAGED = "io.airpods.managed"
LABEL_SERVICE = "io.airpods.service"
LABEL_HASH = "io.airpods.config-hash"
LABEL_KIND = "io.airpods.kind"
LABEL_SECRETS = "io.airpods.secrets"  # the Podman secrets the container mounts, comma-separated
# On replica i >= 2 of `replicas = N` (its container and pod): the service whose copy it is, so
# `start` knows a surplus replica (N lowered) from any other container (engine/surplus.py).
LABEL_REPLICA_OF = "io.airpods.replica-of"


def is_wildcard(host_ip: str) -> bool:
    """True when publishing on `host_ip` publishes on every interface: any spelling of 0.0.0.0
    or :: ("::0", "0:0:0:0:0:0:0:0", "0000::"), or ::ffff:0.0.0.0 (0.0.0.0 to Podman, whose Go
    parser reads an IPv4-mapped address as IPv4). Compared as addresses, never as text."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(host_ip)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_unspecified or (mapped is not None and mapped.is_unspecified)


def reach_ip(host_ip: str) -> str:
    """Where this host reaches a port published on host_ip: a wildcard bind through loopback."""
    return "127.0.0.1" if is_wildcard(host_ip) else host_ip


def _http_url(host_ip: str, port: int) -> str:
    ip = reach_ip(host_ip)
    host = f"[{ip}]" if ":" in ip else ip  # IPv6 literals need brackets
    return f"http://{host}:{port}"


@record
class PortMapping:
    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"

    @property
    def url(self) -> str:
        """Where a browser or client on this host reaches the port."""
        return _http_url(self.host_ip, self.host_port)


@record
class Mount:
    source: str  # a named volume, or an absolute host path for a bind mount
    target: str
    mode: str  # "ro" | "rw"
    is_bind: bool = False
    # SELinux enforcing: relabel a bind mount, shared (":z"), since several services may mount it.
    # Podman labels named volumes itself.
    relabel: bool = False


@record
class SecretFile:
    """A secret handed to the container as a file (a Podman secret, type=mount), never as env.

    `podman inspect` shows env values; it does not show mounted secrets.
    """

    name: str  # the Podman secret's name (airpods-<service>-<variable>, lowercase)
    target: str  # absolute path of the file inside the container
    value: str  # never printed; the config hash covers it, so a new key recreates the container


@record
class ConfigFile:
    """A configuration file handed to the container read-only (a Podman secret, type=mount).

    Delivered like a SecretFile (atomic, read-only, its content in the config hash) but not
    secret: it is printed by `--dry-run` and never used for masking.
    """

    name: str  # the Podman secret's name (airpods-<service>-<what>)
    target: str  # absolute path of the file inside the container
    value: str


@record
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


def _same(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@record
class PodmanOption:
    """How one ContainerSpec field reaches Podman, written once for every place that needs it.

    The adapter (engine/args.py, engine/specgen.py), `--dry-run`'s podman lines (cli/output.py)
    and both exports (export/quadlet.py, export/kube.py) iterate these, so a new pass-through
    option is a field here, a key in config/schema.py and a line in kinds/render.py. An option left
    at its false-y default (empty, None) is not passed at all.
    """

    flag: str  # the `podman run` flag
    kwarg: str  # podman-py `containers.create` keyword
    # Where podman-py puts the keyword in libpod's SpecGenerator (engine/specgen.py sends the
    # same body), and how: "" as is, "bytes" (a size: "512m" -> bytes), "paths" ([{"path": x}]).
    # None: podman-py drops the keyword, so Podman never sees it (specgen drops it too).
    body: tuple[str, ...] | None
    body_form: str = ""
    to_kwarg: Callable[[Any], Any] = _same  # the field's value -> the keyword's value
    text: Callable[[Any], str] = str  # the keyword's value (a list: each item) as flag text
    # Its podman-systemd.unit(5) key (one line per item); "": `PodmanArgs=<flag> <value>`.
    quadlet: str = ""
    quadlet_joined: bool = False  # every item on one line, space-separated (AddCapability=)
    # Items with a unit line of their own ("no-new-privileges": "NoNewPrivileges=true").
    quadlet_items: Mapping[str, str] = field(default_factory=dict)
    unit_text: Callable[[Any], str] | None = None  # the field's value as unit text, if not text
    example: Any = None  # a value tests pass through every consumer


def podman_option(option: PodmanOption, default: Any = None) -> Any:
    """A ContainerSpec field described by `option` (see `podman_options`)."""
    return field(default=default, metadata={"podman": option})


@cache
def podman_options() -> tuple[tuple[str, PodmanOption], ...]:
    """(field name, option) for every pass-through field of ContainerSpec, in field order."""
    return tuple((f.name, f.metadata["podman"]) for f in fields(ContainerSpec)
                 if "podman" in f.metadata)


@record
class ServedPreset:
    """One model a router serves, as its config names it (never read back from its INI)."""

    id: str
    file: str | None  # its model path inside the container; None: a --models-dir file (stem)
    ctx_size: int | None = None  # its own ctx_size, else the router's common one
    load_on_startup: bool = False


@record
class ServingSettings:
    """A model server's settings, typed: what the kinds read about it, set when it is rendered,
    instead of parsing back the argv and preset INI rendered from the same values."""

    model: str | None = None  # its model path inside the container (single mode)
    alias: str | None = None  # comma-separated names clients use
    ctx_size: int | None = None  # the server's own context size (None: its default)
    api_keys: str = ""  # comma-separated keys it checks ("" none); never printed
    router: bool = False  # serves many models (router mode)
    models_dir: str | None = None  # a router without presets: every GGUF there
    models_ctx_size: int | None = None  # a router's ctx_size for every model without its own
    presets: tuple[ServedPreset, ...] = ()


@record
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
    # Pass-through options: each says how it reaches Podman (PodmanOption), in this order.
    devices: tuple[str, ...] = podman_option(PodmanOption(
        "--device", "devices", ("devices",), "paths", quadlet="AddDevice",
        example=("/dev/kfd", "/dev/dri/renderD128")), ())
    group_add: tuple[str, ...] = podman_option(PodmanOption(
        "--group-add", "group_add", ("groups",), example=("44", "993")), ())
    cap_drop: tuple[str, ...] = podman_option(PodmanOption(
        "--cap-drop", "cap_drop", ("cap_drop",), quadlet="DropCapability", example=("ALL",)), ())
    cap_add: tuple[str, ...] = podman_option(PodmanOption(
        "--cap-add", "cap_add", ("cap_add",), quadlet="AddCapability", quadlet_joined=True,
        example=("CHOWN", "SETUID")), ())
    security_opt: tuple[str, ...] = podman_option(PodmanOption(
        "--security-opt", "security_opt", ("selinux_opts",),
        quadlet_items={"no-new-privileges": "NoNewPrivileges=true"},
        example=("no-new-privileges",)), ())
    memory: str | None = podman_option(PodmanOption(
        "--memory", "mem_limit", ("resource_limits", "memory", "limit"), "bytes",
        example="4g"))
    cpus: float | None = podman_option(PodmanOption(
        "--cpus", "nano_cpus", None, to_kwarg=lambda cpus: int(cpus * 1e9),
        text=lambda nano: str(nano / 1e9), unit_text=lambda cpus: f"{cpus:g}", example=1.5))
    health: Health | None = None
    depends_on: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    config_hash: str = ""
    notes: tuple[str, ...] = ()  # one-line explanations/warnings shown by start/dry-run
    # Settings its kind decides only once the model files can be read (through Podman), e.g. a
    # router's models_max = "auto": `kinds.Defers.settle` fills them in at start and status.
    deferred: tuple[str, ...] = ()
    # What its kind reads about a model server (llama-server), typed; its argv and files say the
    # same, so it is not hashed.
    serving: ServingSettings | None = None
    # The service whose `replicas = N` made this one (replica 2..N), "" otherwise: its label
    # (LABEL_REPLICA_OF). Hashed when set, so a replica started before the label existed is
    # recreated once with it, and a lowered `replicas` can find it.
    replica_of: str = ""


@record
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
    replica_of: str = ""  # its LABEL_REPLICA_OF: the service it was a replica of, when made so
    kind: str = ""  # its LABEL_KIND


# The fields the first hash format carried, set or not. A field added since enters the hash only
# when it differs from its default, so a new option left unset changes no hash (and recreates
# no container on upgrade).
_HASHED_ALWAYS = frozenset({
    "service", "kind", "image", "accelerator", "pod", "container", "network", "network_aliases",
    "ports", "mounts", "env", "command", "entrypoint", "secret_env", "secret_files",
    "config_files", "devices", "group_add", "cap_drop", "cap_add", "security_opt", "memory",
    "cpus", "deferred",
})
_NOT_HASHED = ("labels", "config_hash", "notes", "image_reason", "health", "depends_on",
               "serving")


def _at_default(f: Field, value: Any) -> bool:
    return value == (f.default_factory() if callable(f.default_factory) else f.default)


def config_hash(spec: ContainerSpec) -> str:
    """Hash of everything that shapes the container; a change means it must be recreated."""
    data = asdict(spec)
    for key in _NOT_HASHED:
        data.pop(key, None)
    for f in fields(spec):
        if f.name in data and f.name not in _HASHED_ALWAYS and _at_default(f, data[f.name]):
            del data[f.name]
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
    if spec.replica_of:
        labels[LABEL_REPLICA_OF] = spec.replica_of
    return replace(spec, labels=labels, config_hash=digest)


# --- where a file in the container lives ---------------------------------------------------------


def mount_for(path: str, mounts: dict[str, str]) -> tuple[str, str] | None:
    """(volume source, path inside it) of the deepest mount holding `path`; "" for the mount
    point itself. `mounts` maps container target → volume source."""
    for target, source in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
        root = target.rstrip("/")
        if path == root or path.startswith(root + "/"):
            return source, path[len(root):].lstrip("/")
    return None


def model_volume(model: str | None, mounts: dict[str, str]) -> tuple[str, str]:
    """(volume, path inside it) for the service's model file: the mount that holds it.

    `model` is the path inside the container (its kind's `model_path`); `mounts` maps container
    target → volume source.
    """
    if model is None:
        raise AirpodsError("the service has no --model argument", hint="set command_args.model")
    found = mount_for(model, mounts)
    if found is not None and found[1]:
        return found
    raise AirpodsError(
        f"no volume is mounted where the model {model} lives",
        hint="add a volume whose target contains the model path",
    )
