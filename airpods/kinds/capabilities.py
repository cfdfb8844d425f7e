"""What a kind may add to the generic behaviour, grouped: a kind inherits the groups it uses.

    class Echo(Kind, HasApi):   # one file, plus `register(Echo())` in kinds/__init__.py
        name = "echo"
        def api_key(self, spec): ...

The engine, render and the CLI ask `kinds.capable(spec.kind, HasApi)` (the kind, or None)
instead of calling a hook every kind has as a no-op. Within a group, each hook has a default,
so a kind overrides only what it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airpods.config.schema import AirpodsConfig, ServiceConfig
    from airpods.host import HostFacts
    from airpods.kinds import base
    from airpods.spec import ContainerSpec

Problems = list[tuple[tuple[str | int, ...], str, str | None]]


class ServesModels:
    """Its containers serve model files (llama-server): `status`, `models`, fit, the gateway."""

    def model_path(self, spec: ContainerSpec) -> str | None:
        """The model file's path inside the container, when the kind serves one file."""
        return None

    def model_files(self, spec: ContainerSpec) -> tuple[str, ...]:
        """Every model file its config names, as paths inside the container (a router: each
        preset's file)."""
        path = self.model_path(spec)
        return (path,) if path else ()

    def model_dir(self, spec: ContainerSpec) -> str | None:
        """A directory inside the container whose every GGUF it serves (a router without
        presets), or None."""
        return None

    def context_size(self, spec: ContainerSpec) -> int | None:
        """The context length it is set to (None: the server's own default)."""
        return None

    def model_id(self, spec: ContainerSpec) -> str | None:
        """The model name clients use, for `status`."""
        return None

    def served_models(
        self, spec: ContainerSpec, svc: ServiceConfig
    ) -> tuple[base.ServedModel, ...]:
        """The models a gateway can route to this service."""
        return ()

    def required_files(self, spec: ContainerSpec) -> tuple[tuple[str, str], ...]:
        """(what, path inside the container) of files that must exist before it is created."""
        return ()


class HasApi:
    """An API clients reach with a key, ready only once it answers for its model."""

    def api_key(self, spec: ContainerSpec) -> str | None:
        """The key clients must send (Bearer), or None."""
        return None

    def ready_check(self, spec: ContainerSpec) -> base.ModelCheck | None:
        """An extra readiness check after its health path (llama-server: its model listed)."""
        return None


class RoutesModels:
    """Serves many models, loaded on demand (a router): `models load/unload`, `status`."""

    def router(self, spec: ContainerSpec) -> base.ModelRouter | None:
        """The model router's API when this service runs as one."""
        return None


class AddsStatus:
    """Keys of its own in its `status` row."""

    def status_fields(self, spec: ContainerSpec, ctx: base.StatusContext) -> dict[str, Any]:
        """Keys this kind adds to its `status` row, after the common ones (`--json` too: name
        each in docs/json.md and tests/unit/test_json_contract.py).

        Runs on every `status`, in the service's probe thread (in parallel with the other
        services): keep it cheap. Import lazily, bound any request by `ctx.timeout_s`, read
        Podman only through `ctx.podman`, and never raise for a service that does not answer
        (leave the key out or say so in its value: `health` already says why).
        """
        return {}


class OwnsKeys:
    """Config keys of its own, and checks of them."""

    def config_tables(self) -> dict[str, Any]:
        """Keys this kind adds to a service's table: {key: (type, pydantic Field)}, validated
        with the shared schema (config.kind_checks.config_model). Only this kind's services may
        set them (config.kind_checks.foreign_keys); `config_problems` says which of its modes
        use them. Import pydantic models lazily here: kind modules stay light."""
        return {}

    def missing_keys(self, svc: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        """(key, what it is, hint) for each key the service's table (raw, the kind's defaults
        merged in, before templates) must set but does not: said as the user's omission, not
        as a template of the kind's that names an undefined value."""
        return []

    def config_problems(self, svc: ServiceConfig) -> Problems:
        """(key path within the service, message, hint) for what its mode cannot use."""
        return []

    def config_problems_in(self, service: str, config: AirpodsConfig) -> Problems:
        """(full key path, message, hint) for what needs every service to check."""
        return []


class Renders:
    """Renders more than the generic spec: from its own keys, from other services, last."""

    def configure(self, spec: ContainerSpec, svc: ServiceConfig, host: HostFacts) -> ContainerSpec:
        """What the kind renders from its own config keys (`mode`, `router`, `models`)."""
        return spec

    def wire(
        self, spec: ContainerSpec, svc: ServiceConfig, config: AirpodsConfig, host: HostFacts
    ) -> ContainerSpec:
        """What a kind renders from the other services (the gateway: their models)."""
        return spec

    def finalize(self, spec: ContainerSpec) -> ContainerSpec:
        """The last word on a rendered spec (e.g. moving a key out of the environment)."""
        return spec


class Defers:
    """Settings decided only at start: from the model files, or from the user's shell."""

    def settle(
        self, spec: ContainerSpec, host_path: base.HostPath, memory: base.Memory
    ) -> ContainerSpec:
        """`spec` with its `deferred` settings decided from the model files (start, status)."""
        return spec

    def start_problems(self, spec: ContainerSpec, environ: Mapping[str, str]) -> list[str]:
        """One-line reasons `start` must refuse (an unset variable the service needs)."""
        return []

    def start_warnings(self, spec: ContainerSpec, environ: Mapping[str, str]) -> list[str]:
        """One-line warnings `start` prints and goes on (a gateway's peer that does not
        answer)."""
        return []

    def for_export(self, spec: ContainerSpec, environ: Mapping[str, str]) -> ContainerSpec:
        """`spec` as `export` writes it: what `start` would take from this shell, taken now
        (`start_problems` were checked first)."""
        return spec

    def prepare_host(self, spec: ContainerSpec) -> None:
        """Make what the container needs on this host (a bind-mounted directory), right before
        it is created or started: after every image is here, so a refused start makes nothing."""


class JoinsBackends:
    """Its enabled instances join a template backend list (Open WebUI's connections)."""

    backend_list: str  # the list's template name, e.g. "openai_backends"

    def backend(self, service: str, read: base.Reader) -> base.Backend:
        """This instance as an entry of `backend_list`."""
        raise NotImplementedError
