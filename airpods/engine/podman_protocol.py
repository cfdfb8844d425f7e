"""What airpods asks of Podman, as a Protocol: the one seam between airpods and Podman.

engine/podman.Podman implements it over the Podman API socket (reads through engine/libpod.py,
writes through podman-py); commands and the engine are typed against this, so unit tests hand
them the one shared fake (tests/fake_podman.py) and the integration tier runs the real adapter
against real Podman. Names are airpods' (pods, containers, volumes, networks, secrets as
engine/specgen.py creates them); every method may raise PodmanError (errors.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from airpods.spec import Actual, ConfigFile, ContainerSpec, SecretFile


@runtime_checkable
class Podman(Protocol):
    url: str  # the API socket (unix://...): the state lock is named after it

    # -- reads (engine/podman_reads.py: libpod GETs, no podman-py) ------------------------------

    def image_exists(self, ref: str) -> bool: ...

    def volume_exists(self, name: str) -> bool: ...

    def network_exists(self, name: str) -> bool: ...

    def process_gone(self, container: str) -> bool:
        """Podman records the container as running but its process is gone."""
        ...

    def volume_path(self, name: str) -> Path:
        """Where the volume's files are on this host."""
        ...

    def volume_owned(self, name: str) -> bool | None:
        """airpods created it (True), another did (False), or it does not exist (None)."""
        ...

    def managed(self, *, bare_pods: bool = False) -> dict[str, Actual]:
        """service -> what runs for it, for every airpods-labelled container (and bare pod)."""
        ...

    def container_state(self, name: str) -> tuple[bool, int | None, str]:
        """(running, exit code, error) of a container."""
        ...

    def name_owner(self, name: str) -> str | None: ...

    def pod_owner(self, name: str) -> str | None: ...

    def info(self) -> dict[str, Any]: ...

    def published_ports(self) -> dict[tuple[str, int], str]: ...

    # -- writes (engine/podman.py) ---------------------------------------------------------------

    def pull(self, ref: str, progress: Callable[[str], None] = ...) -> None: ...

    def ensure_volume(self, name: str) -> bool:
        """Create it if missing; True when it was created."""
        ...

    def remove_volume(self, name: str) -> None: ...

    def ensure_network(self, name: str) -> bool: ...

    def pin_network_bridge(self, name: str) -> bool:
        """Fix the network's bridge MAC on this host (engine/bridge.py); True when pinned now."""
        ...

    def create_service(self, spec: ContainerSpec) -> None: ...

    def put_secret(self, secret: SecretFile | ConfigFile) -> None: ...

    def remove_secret(self, name: str) -> None: ...

    def start(self, name: str) -> None: ...

    def remove_service(self, pod: str | None, container: str, timeout: float) -> None: ...

    def logs(self, name: str, *, tail: int | None = None, follow: bool = False,
             since: int | None = None) -> Iterator[str]: ...

    def log_tail(self, name: str, lines: int) -> str: ...
