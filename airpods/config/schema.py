"""The validated shape of airpods' configuration (pydantic v2).

Values here are already template-resolved: the loader renders `{{ ... }}` first and validates the
result, so every error can name the key path the user wrote.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from airpods.fields import (
    _SCALAR_TYPES,
    ArgKey,
    ArgValue,
    Scalar,
    StrictModel,
    check_name,
)
from airpods.gpu import ACCELERATORS, REQUESTS
from airpods.values import check_image_ref, finite, no_control, not_bool, size_bytes

Capability = Annotated[str, StringConstraints(pattern=r"^(CAP_)?[A-Z_]+$")]
Accelerator = Literal[ACCELERATORS]  # type: ignore[valid-type]
AcceleratorRequest = Literal[REQUESTS]  # type: ignore[valid-type]

# Every name is checked with fullmatch: `match` with `$` would let a trailing newline through.
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_CONTAINER_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_VOLUME_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_ALIAS_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Public: the loader checks names with this before it uses them as paths (generated secrets).
ENV_KEY_RE = _ENV_KEY_RE
# A service's name becomes its pod `airpods-<name>`, container `airpods-<name>-server`, network
# alias `<name>` and a directory of its generated secrets. 48 keeps `airpods-<name>-server`
# within 63 characters, the limit of a DNS label and of the hostname a pod gets.
MAX_SERVICE_NAME = 48
MAX_DNS_LABEL = 63



def _check_env_value(v: Any) -> Any:
    if not isinstance(v, _SCALAR_TYPES):
        raise ValueError("must be a string, number or boolean, not a table or list")
    return v


def _rooted(must: str) -> AfterValidator:
    """A path that starts with '/' (`must` says how, after the value)."""

    def check(v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"{v!r} {must}")
        return v

    return AfterValidator(check)


def is_service_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and _NAME_RE.fullmatch(value) is not None
        and len(value) <= MAX_SERVICE_NAME
    )


def _fits(v: str, pattern: re.Pattern[str], limit: int, bad: str, too_long: str) -> str:
    """`v` when `pattern` matches all of it and it has at most `limit` characters."""
    if not pattern.fullmatch(v):
        raise ValueError(bad)
    if len(v) > limit:
        raise ValueError(too_long)
    return v


def _check_service_name(v: str) -> str:
    return _fits(
        v, _NAME_RE, MAX_SERVICE_NAME,
        f"{v!r} is not a valid service name (lowercase letters, digits, '_.-')",
        f"service name is {len(v)} characters long; at most {MAX_SERVICE_NAME} are allowed "
        f"(its container `airpods-<name>-server` must fit a {MAX_DNS_LABEL}-character hostname)",
    )


# Numbers that refuse booleans; floats also refuse nan and inf (TOML has both).
Int = Annotated[int, BeforeValidator(not_bool)]
Float = Annotated[float, BeforeValidator(finite), Field(allow_inf_nan=False)]
PathText = Annotated[str, AfterValidator(no_control)]

# Keys checked as keys, so an error's location ends in the offending key (`env.1BAD`).
ServiceName = Annotated[str, AfterValidator(_check_service_name)]
EnvKey = Annotated[str, check_name(_ENV_KEY_RE, "environment variable name")]
EnvValue = Annotated[Scalar, BeforeValidator(_check_env_value)]


class RuntimeConfig(StrictModel):
    accelerator: AcceleratorRequest = "auto"
    network: str = "airpods"
    stop_timeout_s: Float = Field(default=10, ge=0, le=3600)

    @field_validator("network")
    @classmethod
    def _network_name(cls, v: str) -> str:
        if not _VOLUME_NAME_RE.fullmatch(v):
            raise ValueError(f"{v!r} is not a valid network name (letters, digits, '_.-')")
        return v


class CliConfig(StrictModel):
    max_concurrent_pulls: Int = Field(default=3, ge=1, le=16)
    failure_log_lines: Int = Field(default=30, ge=0, le=10000)


class PortSpec(StrictModel):
    host: Int = Field(ge=1, le=65535)
    container: Int = Field(ge=1, le=65535)
    host_ip: str = "127.0.0.1"
    protocol: Literal["tcp", "udp"] = "tcp"

    @field_validator("host_ip")
    @classmethod
    def _ip(cls, v: str) -> str:
        try:
            ip = ipaddress.ip_address(v)
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address (use 127.0.0.1 or 0.0.0.0)") from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
            # Podman parses the publish address with Go's net.ParseIP, which has no zones.
            raise ValueError(
                f"{v!r} has a zone id (%{ip.scope_id}): Podman cannot publish on a zoned "
                "address; use the address without it, a global IPv6 address, or ::1"
            )
        return v


class VolumeSpec(StrictModel):
    source: PathText
    target: Annotated[PathText, _rooted("must be an absolute path inside the container")]
    mode: Literal["ro", "rw"] = "rw"

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if v.startswith("/"):
            return v  # a bind mount of a host directory
        if not _VOLUME_NAME_RE.fullmatch(v):
            raise ValueError(
                f"{v!r} is neither a volume name (letters, digits, '_.-') nor an absolute path"
            )
        return v

    @property
    def is_bind(self) -> bool:
        return self.source.startswith("/")


class GpuSpec(StrictModel):
    enabled: bool = True
    force_cpu: bool = False


class HealthSpec(StrictModel):
    path: Annotated[PathText, _rooted("must start with '/'")] = "/"
    expected_status: Int = Field(default=200, ge=100, le=599)
    timeout_s: Float = Field(default=120, gt=0, le=86400)
    interval_s: Float = Field(default=1.0, gt=0, le=60)


MAX_MEMORY = 1 << 60  # Podman's limit is an int64 of bytes


class ResourcesSpec(StrictModel):
    memory: str | None = None
    cpus: Float | None = Field(default=None, gt=0)

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        # The parser the Podman request and the fit estimate use: what passes here starts.
        if v is not None and not 0 < size_bytes(v) <= MAX_MEMORY:
            raise ValueError(f"{v!r}: a memory limit must be more than 0 and at most 1 EiB "
                             "(examples: 512m, 1.5g, 16g)")
        return v


class ServiceConfig(StrictModel):
    enabled: bool = True
    # The kind's name (kinds.DEFAULT_KIND); the registry checks it, above this module.
    kind: str = "generic"
    default_model: str | None = None
    # Where `start` downloads default_model from when the volume lacks it: "hf://ORG/REPO/FILE",
    # "ORG/REPO/FILE.gguf", "ORG/REPO:QUANT" (see `airpods models pull`) or "auto" (the
    # capability tier whose file is served: config/models.toml).
    model_source: str | None = None
    image: str | None = None
    images: dict[Accelerator, str] = Field(default_factory=dict)
    pod: str
    container: str
    network_aliases: list[str] = Field(default_factory=list)
    ports: list[PortSpec] = Field(default_factory=list)
    volumes: dict[str, VolumeSpec] = Field(default_factory=dict)
    gpu: GpuSpec = Field(default_factory=GpuSpec)
    health: HealthSpec | None = None
    env: dict[EnvKey, EnvValue] = Field(default_factory=dict)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    command_args: dict[ArgKey, ArgValue] = Field(default_factory=dict)
    entrypoint_override: list[str] | None = None
    depends_on: list[str] = Field(default_factory=list)
    # Env variables whose values airpods generates once and keeps (0600), unless `env` sets them.
    generated_secrets: list[EnvKey] = Field(default_factory=list)
    # Containers run with --cap-drop=ALL; these capabilities are given back (e.g. "CHOWN").
    cap_add: list[Capability] = Field(default_factory=list)
    # Free-form values for templates, e.g. `vars = { quant = "Q4_K_M" }` → `{{ quant }}`.
    vars: dict[str, Any] = Field(default_factory=dict)
    # "single": one model (today's behaviour); "router": many models behind one endpoint,
    # loaded on demand (kinds that support it: see `Kind.modes`). The keys a kind needs are its
    # own (`OwnsKeys.config_tables`: llama-server's `router`, `models` and `private`, the gateway's
    # `remotes`, `fallbacks` and `clients`, open-webui's `via_gateway`), added to this model
    # above the schema (airpods.config.kind_checks.config_model); on another kind's service
    # they are a config error (airpods.config.kind_checks.foreign_keys).
    mode: Literal["single", "router"] = "single"

    @field_validator("model_source")
    @classmethod
    def _model_source(cls, v: str | None) -> str | None:
        if v == "":
            return None  # "" = no source (a template's way to say none)
        if v is not None and v != "auto":  # auto: the catalogue tier (airpods.config.tiers)
            from airpods.errors import AirpodsError
            from airpods.hub.refs import parse_ref

            try:
                parse_ref(v)
            except AirpodsError as exc:
                raise ValueError(exc.one_line()) from None
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        if v is not None:
            check_image_ref(v)
        return v

    @field_validator("images")
    @classmethod
    def _images(cls, v: dict[str, str]) -> dict[str, str]:
        for ref in v.values():
            check_image_ref(ref)
        return v

    @field_validator("pod", "container")
    @classmethod
    def _object_name(cls, v: str) -> str:
        if not _CONTAINER_NAME_RE.fullmatch(v):
            raise ValueError(f"{v!r} is not a valid name (letters, digits, '_.-')")
        return v

    @field_validator("network_aliases")
    @classmethod
    def _aliases(cls, v: list[str]) -> list[str]:
        for alias in v:
            _fits(
                alias, _ALIAS_RE, MAX_DNS_LABEL,
                f"{alias!r} is not a valid DNS name (lowercase, digits, '-')",
                f"network alias {alias[:20]!r}... is {len(alias)} characters long; a DNS "
                f"name may have at most {MAX_DNS_LABEL}",
            )
        return v

    @model_validator(mode="after")
    def _has_image(self) -> ServiceConfig:
        if self.image is None and "cpu" not in self.images:
            raise ValueError("no image: set `image` (or `images.cpu`)")
        return self

    @model_validator(mode="after")
    def _unique_targets(self) -> ServiceConfig:
        seen: dict[str, str] = {}
        for name, vol in self.volumes.items():
            if vol.target in seen:
                raise ValueError(
                    f"volumes {seen[vol.target]!r} and {name!r} both mount at {vol.target}"
                )
            seen[vol.target] = name
        return self


class AirpodsConfig(StrictModel):
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    cli: CliConfig = Field(default_factory=CliConfig)
    services: dict[ServiceName, ServiceConfig] = Field(default_factory=dict)

    def enabled_services(self) -> list[str]:
        return [name for name, svc in self.services.items() if svc.enabled]
