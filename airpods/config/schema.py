"""The validated shape of airpods' configuration (pydantic v2).

Values here are already template-resolved: the loader renders `{{ ... }}` first and validates the
result, so every error can name the key path the user wrote.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Accelerator = Literal["cpu", "cuda", "rocm", "vulkan"]
ACCELERATORS: tuple[str, ...] = ("cpu", "cuda", "rocm", "vulkan")
# Named hooks: anything special about a kind of service is keyed by this, never by its name.
SERVICE_KINDS: tuple[str, ...] = ("generic", "llama-server", "ollama", "open-webui")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_CONTAINER_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_ALIAS_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_RE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?)/)?"
    rf"{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[a-f0-9]{64})?$"
)
_MEMORY_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)?[bkmgBKMG]?$")
_ARG_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Scalar = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuntimeConfig(_Strict):
    accelerator: Literal["auto", "cpu", "cuda", "rocm", "vulkan"] = "auto"
    network: str = "airpods"
    stop_timeout_s: float = Field(default=10, ge=0, le=3600)

    @field_validator("network")
    @classmethod
    def _network_name(cls, v: str) -> str:
        if not _VOLUME_NAME_RE.match(v):
            raise ValueError(f"{v!r} is not a valid network name (letters, digits, '_.-')")
        return v


class CliConfig(_Strict):
    max_concurrent_pulls: int = Field(default=3, ge=1, le=16)
    failure_log_lines: int = Field(default=30, ge=0, le=10000)


class PortSpec(_Strict):
    host: int = Field(ge=1, le=65535)
    container: int = Field(ge=1, le=65535)
    host_ip: str = "127.0.0.1"
    protocol: Literal["tcp", "udp"] = "tcp"

    @field_validator("host_ip")
    @classmethod
    def _ip(cls, v: str) -> str:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address (use 127.0.0.1 or 0.0.0.0)") from None
        return v


class VolumeSpec(_Strict):
    source: str
    target: str
    mode: Literal["ro", "rw"] = "rw"

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if v.startswith("/"):
            return v  # a bind mount of a host directory
        if not _VOLUME_NAME_RE.match(v):
            raise ValueError(
                f"{v!r} is neither a volume name (letters, digits, '_.-') nor an absolute path"
            )
        return v

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"{v!r} must be an absolute path inside the container")
        return v

    @property
    def is_bind(self) -> bool:
        return self.source.startswith("/")


class GpuSpec(_Strict):
    enabled: bool = True
    force_cpu: bool = False


class HealthSpec(_Strict):
    path: str = "/"
    expected_status: int = Field(default=200, ge=100, le=599)
    timeout_s: float = Field(default=120, gt=0, le=86400)
    interval_s: float = Field(default=1.0, gt=0, le=60)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"{v!r} must start with '/'")
        return v


class ResourcesSpec(_Strict):
    memory: str | None = None
    cpus: float | None = Field(default=None, gt=0)

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        if v is not None and not _MEMORY_RE.match(v):
            raise ValueError(f"{v!r} is not a memory size (examples: 512m, 16g)")
        return v


class ServiceConfig(_Strict):
    enabled: bool = True
    kind: str = "generic"
    default_model: str | None = None
    image: str | None = None
    images: dict[Accelerator, str] = Field(default_factory=dict)
    pod: str
    container: str
    network_aliases: list[str] = Field(default_factory=list)
    ports: list[PortSpec] = Field(default_factory=list)
    volumes: dict[str, VolumeSpec] = Field(default_factory=dict)
    gpu: GpuSpec = Field(default_factory=GpuSpec)
    health: HealthSpec | None = None
    env: dict[str, Scalar] = Field(default_factory=dict)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    command_args: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    entrypoint_override: list[str] | None = None
    depends_on: list[str] = Field(default_factory=list)
    # Free-form values for templates, e.g. `vars = { quant = "Q4_K_M" }` → `{{ quant }}`.
    vars: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in SERVICE_KINDS:
            raise ValueError(f"unknown kind {v!r}; known kinds: {', '.join(SERVICE_KINDS)}")
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
        if not _CONTAINER_NAME_RE.match(v):
            raise ValueError(f"{v!r} is not a valid name (letters, digits, '_.-')")
        return v

    @field_validator("network_aliases")
    @classmethod
    def _aliases(cls, v: list[str]) -> list[str]:
        for alias in v:
            if not _ALIAS_RE.match(alias):
                raise ValueError(f"{alias!r} is not a valid DNS name (lowercase, digits, '-')")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, Scalar]) -> dict[str, Scalar]:
        for key in v:
            if not _ENV_KEY_RE.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
        return v

    @field_validator("command_args")
    @classmethod
    def _args(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if not _ARG_KEY_RE.match(key):
                raise ValueError(f"{key!r} is not a valid flag name (letters, digits, '_-')")
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


class AirpodsConfig(_Strict):
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    cli: CliConfig = Field(default_factory=CliConfig)
    services: dict[str, ServiceConfig] = Field(default_factory=dict)

    @field_validator("services")
    @classmethod
    def _service_names(cls, v: dict[str, ServiceConfig]) -> dict[str, ServiceConfig]:
        for name in v:
            if not _NAME_RE.match(name):
                raise ValueError(
                    f"{name!r} is not a valid service name (lowercase letters, digits, '_.-')"
                )
        return v

    def enabled_services(self) -> list[str]:
        return [name for name, svc in self.services.items() if svc.enabled]


def check_image_ref(ref: str) -> None:
    """Raise ValueError unless `ref` is a well-formed image reference."""
    if not _IMAGE_RE.match(ref):
        raise ValueError(
            f"{ref!r} is not a valid image reference (example: ghcr.io/ggml-org/llama.cpp:server)"
        )
