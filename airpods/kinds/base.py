"""The Kind interface: what a kind of service may add to the generic behaviour."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from airpods.errors import WiringError
from airpods.record import record

if TYPE_CHECKING:
    from pathlib import Path

    from airpods.host import HostFacts

# Reads a resolved value of the service being wired, by key path relative to the service
# (("ports", 0, "container")); returns `default` when the key is absent.
Reader = Callable[[tuple[str | int, ...], Any], Any]
_ABSENT = object()


# A path inside the service's container -> where that file or directory is on this host
# (through the volume mounted there), or None when it is not there.
HostPath = Callable[[str], "Path | None"]


@record
class StatusContext:
    """What `AddsStatus.status_fields` may look at besides the spec."""

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
    """A running service that serves many models and loads them on demand (`RoutesModels.router`).

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
    """What every kind has: a name and an instance's defaults (a generic service: an image with
    ports, volumes and a health path). Whatever else a kind adds is a capability it inherits
    (airpods/kinds/capabilities.py); callers ask for one with `kinds.capable`."""

    name = "generic"
    # Its volumes hold models (GGUF files, Ollama's store): hours of downloads to lose, so
    # `stop --remove-volumes` deletes them only when the service is named.
    holds_models = False
    # HTTP 503 from its health path means "loading a model", not "something is wrong".
    loading_on_503 = False
    # The values its `mode` key may take ("router": many models behind one endpoint).
    modes: tuple[str, ...] = ("single",)
    # How to build its image without a registry (a script in the airpods repo), if there is one.
    local_build: str | None = None

    def defaults(self, service: str) -> dict[str, Any]:
        return instance_defaults(service)


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
