"""The Kind interface: what a kind of service may add to the generic behaviour."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from airpods.errors import WiringError
from airpods.record import record

if TYPE_CHECKING:
    from pathlib import Path

    from airpods.config.schema import AirpodsConfig, ServiceConfig
    from airpods.host import HostFacts
    from airpods.spec import ContainerSpec

# Reads a resolved value of the service being wired, by key path relative to the service
# (("ports", 0, "container")); returns `default` when the key is absent.
Reader = Callable[[tuple[str | int, ...], Any], Any]
_ABSENT = object()


# A path inside the service's container -> where that file or directory is on this host
# (through the volume mounted there), or None when it is not there.
HostPath = Callable[[str], "Path | None"]


@record
class StatusContext:
    """What `Kind.status_fields` may look at besides the spec."""

    running: bool  # its container runs (so its API may be asked, bounded by `timeout_s`)
    host: HostFacts
    # The read side of the Podman adapter (engine/podman_reads.PodmanReads: libpod GETs, no
    # podman-py), e.g. `volume_path` to read a model file's header; None when not connected.
    podman: Any = None
    timeout_s: float = 1.0


@record
class Memory:
    """What models may take: total RAM, and the GPU's memory when the service uses one."""

    ram_total: int | None
    vram_total: int | None = None


@record
class ModelCheck:
    """Ready only when GET `path` lists one of `model_ids` (any model when empty).

    With `states` (a router serving many models): `states(body of GET path)` gives
    {id: (state, detail)} with state loaded / loading / unloaded / failed; ready once every one
    of `model_ids` is loaded (none: the list answering is enough); a failed one ends the wait.
    """

    path: str
    model_ids: tuple[str, ...]
    api_key: str | None
    states: Callable[[Any], dict[str, tuple[str, str]]] | None = None


@record
class Backend:
    """One entry of a template backend list (`openai_backends`): how Open WebUI reaches it."""

    name: str
    url: str
    api_key: str = ""
    # What Open WebUI calls the server's kind ("llama.cpp": it then shows load states and can
    # unload a router's models); "" for a plain OpenAI-compatible server.
    provider: str = ""


@record
class RouterModel:
    """One model a router serves, as its API (or, stopped, its presets) tells it."""

    id: str
    state: str  # loaded | loading | unloaded | failed
    file: str  # relative to the models dir when it lies there, else the router's path
    args: tuple[str, ...] = ()
    exit_code: int | None = None
    raw: str = ""  # the router's own status value (e.g. "sleeping")


class ModelRouter(Protocol):
    """A running service that serves many models and loads them on demand (`Kind.router`).

    What `status`, `models load/unload` and `models list` may ask; each kind that has a router
    mode implements it in its own module.
    """

    service: str

    def models(self, timeout_s: float = 5.0) -> list[RouterModel]:
        """The models it serves, from its API (AirpodsError when it does not answer)."""
        ...

    def presets(self) -> list[RouterModel]:
        """The models its configuration names (all "unloaded"): what it serves once started."""
        ...

    def load(self, model_id: str) -> None: ...

    def unload(self, model_id: str) -> None: ...


def instance_defaults(service: str) -> dict[str, Any]:
    """What every service gets from its name: pod, container and network alias."""
    return {
        "pod": f"airpods-{service}",
        "container": f"airpods-{service}-server",
        "network_aliases": [service],
    }


class Kind:
    """A generic service: an image with ports, volumes and a health path. Subclasses add."""

    name = "generic"
    # Its volumes hold models (GGUF files, Ollama's store): hours of downloads to lose, so
    # `stop --remove-volumes` deletes them only when the service is named.
    holds_models = False
    # HTTP 503 from its health path means "loading a model", not "something is wrong".
    loading_on_503 = False
    # The template list this kind's enabled instances join (e.g. "openai_backends"), if any.
    backend_list: str | None = None
    # The values its `mode` key may take ("router": many models behind one endpoint).
    modes: tuple[str, ...] = ("single",)

    def defaults(self, service: str) -> dict[str, Any]:
        return instance_defaults(service)

    def ready_check(self, spec: ContainerSpec) -> ModelCheck | None:
        return None

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
        """The context length its argv asks for (None: the server's own default)."""
        return None

    def model_id(self, spec: ContainerSpec) -> str | None:
        """The model name clients use, for `status`."""
        return None

    def api_key(self, spec: ContainerSpec) -> str | None:
        """The key clients must send (Bearer), or None."""
        return None

    def backend(self, service: str, read: Reader) -> Backend:
        """This instance as an entry of `backend_list` (only called when that is set)."""
        raise NotImplementedError

    def configure(self, spec: ContainerSpec, svc: ServiceConfig, host: HostFacts) -> ContainerSpec:
        """What the kind renders from its own config keys (`mode`, `router`, `models`)."""
        return spec

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

    def config_problems(
        self, svc: ServiceConfig
    ) -> list[tuple[tuple[str | int, ...], str, str | None]]:
        """(key path within the service, message, hint) for what its mode cannot use."""
        return []

    def settle(self, spec: ContainerSpec, host_path: HostPath, memory: Memory) -> ContainerSpec:
        """`spec` with its `deferred` settings decided from the model files (start, status)."""
        return spec

    def finalize(self, spec: ContainerSpec) -> ContainerSpec:
        """The last word on a rendered spec (e.g. moving a key out of the environment)."""
        return spec

    def required_files(self, spec: ContainerSpec) -> tuple[tuple[str, str], ...]:
        """(what, path inside the container) of files that must exist before it is created."""
        return ()

    def router(self, spec: ContainerSpec) -> ModelRouter | None:
        """The model router's API when the service serves many models (router mode)."""
        return None

    def status_fields(self, spec: ContainerSpec, ctx: StatusContext) -> dict[str, Any]:
        """Keys this kind adds to its `status` row, after the common ones (`--json` too: name
        each in docs/json.md and tests/unit/test_json_contract.py).

        Runs on every `status`, in the service's probe thread (in parallel with the other
        services): keep it cheap. Import lazily, bound any request by `ctx.timeout_s`, read
        Podman only through `ctx.podman`, and never raise for a service that does not answer
        (leave the key out or say so in its value: `health` already says why).
        """
        return {}

    # --- the gateway (airpods/kinds/gateway.py) ---------------------------------------------

    def served_models(self, spec: ContainerSpec, svc: ServiceConfig) -> tuple[ServedModel, ...]:
        """The models a gateway can route to this service (none: it serves no model API)."""
        return ()

    def wire(
        self, spec: ContainerSpec, svc: ServiceConfig, config: AirpodsConfig, host: HostFacts
    ) -> ContainerSpec:
        """What a kind renders from the other services (the gateway: their models)."""
        return spec

    def config_problems_in(
        self, service: str, config: AirpodsConfig
    ) -> list[tuple[tuple[str | int, ...], str, str | None]]:
        """(full key path, message, hint) for what needs every service to check."""
        return []

    def for_export(self, spec: ContainerSpec, environ: Mapping[str, str]) -> ContainerSpec:
        """`spec` as `export` writes it: what `start` would take from this shell, taken now
        (`start_problems` were checked first)."""
        return spec

    def start_problems(self, spec: ContainerSpec, environ: Mapping[str, str]) -> list[str]:
        """One-line reasons `start` must refuse (an unset variable the service needs)."""
        return []


@record
class ServedModel:
    """One model a service serves, as a gateway routes to it."""

    id: str  # the name clients ask for
    api_base: str  # on the airpods network: http://<alias>:<port>/v1
    api_key: str  # "" for none
    private: bool = False  # never sent anywhere else


def service_url(service: str, read: Reader, scheme_path: str = "") -> str:
    """http://<first network alias or pod>:<ports[0].container><scheme_path> on the network."""
    host = read(("network_aliases", 0), _ABSENT)
    if host is _ABSENT:
        host = read(("pod",), service)
    port = read(("ports", 0, "container"), _ABSENT)
    if port is _ABSENT:
        raise WiringError(
            "needs a port: other services reach it on ports[0].container", ("ports",)
        )
    return f"http://{host}:{port}{scheme_path}"
