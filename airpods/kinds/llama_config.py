"""llama-server's own config keys, for router mode: `[services.NAME.router]` and one
`[services.NAME.models.ID]` table per preset.

The shared schema (airpods.config.schema) knows none of them: the kind adds them to the service
model (`OwnsKeys.config_tables`, assembled by airpods.config.kind_checks.config_model), so TOML
keys, defaults and error messages are those of any schema key. Imported only to validate a
configuration: kind modules stay free of pydantic on the cache-hit path.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from airpods.fields import ArgKey, ArgValue, StrictModel, check_name
from airpods.values import listed_once

_MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
ModelId = Annotated[str, check_name(_MODEL_ID_RE, "model id (letters, digits, '_.-')")]


def _check_models_max(v: Any) -> Any:
    # One clear sentence instead of pydantic's error for each member of the union.
    if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
        return v
    raise ValueError(f'must be a whole number of at least 1, or "auto" (got {v!r})')


MAX_REPLICAS = 64  # several servers of one model on one machine: a typo past this is refused


def _check_replicas(v: Any) -> Any:
    # One sentence for every wrong value: 0, -1, 1.5, "2x", true (a template renders "2").
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v.strip())
    if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_REPLICAS:
        return v
    raise ValueError(f"must be a whole number from 1 to {MAX_REPLICAS} (got {v!r}): how many "
                     "llama-servers of this model to run, on consecutive host ports")


class RouterSpec(StrictModel):
    """`mode = "router"`: how many models may be loaded at once, and which at start."""

    models_max: Annotated[int | Literal["auto"], BeforeValidator(_check_models_max)] = "auto"
    idle_unload_s: int = Field(default=0, ge=0, le=10**7)  # 0 = never
    preload: list[ModelId] = Field(default_factory=list)

    @field_validator("preload")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return listed_once(v)


class ModelPreset(StrictModel):
    """One model a router serves: its file in the model volume and its own flags."""

    file: str
    command_args: dict[ArgKey, ArgValue] = Field(default_factory=dict)
    # The gateway never sends this model's requests anywhere else (no fallback, ever).
    private: bool = Field(default=False, strict=True)  # true/false only, never "yes"

    @field_validator("file")
    @classmethod
    def _relative(cls, v: str) -> str:
        parts = v.split("/")
        if not v or v.startswith("/") or ".." in parts or "" in parts or "\n" in v:
            raise ValueError(
                f"{v!r} must be a file name relative to the model volume (no '/' at the "
                "start, no '..')"
            )
        return v


def config_tables() -> dict[str, Any]:
    """The keys llama-server adds to a service (router mode's, the private lane's), as pydantic
    field definitions."""
    return {
        # The gateway never sends this server's models' requests anywhere else.
        "private": (bool, Field(default=False, strict=True)),
        "router": (RouterSpec, Field(default_factory=RouterSpec)),
        # One preset per model id (without any, every GGUF in the volume is served).
        "models": (dict[ModelId, ModelPreset], Field(default_factory=dict)),
        # How many servers of this model to run (airpods.config.replicas: NAME, NAME-2, ...).
        "replicas": (Annotated[int, BeforeValidator(_check_replicas)], Field(default=1)),
    }
