"""The one Podman fake for unit tests: airpods.engine.podman_protocol.Podman, in memory.

Unit tests of commands use it through `use_fake_podman`, the one place a test replaces
airpods.cli.context.connect. The real adapter (engine/podman.py) runs against real Podman in
tests/integration; tests/unit/test_seams.py checks that both have the protocol's methods with
its parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airpods.errors import PodmanError

if TYPE_CHECKING:
    from airpods.spec import Actual, ConfigFile, ContainerSpec, SecretFile


class FakePodman:
    """Nothing runs and no volume exists unless told: `volume_dir` makes every volume asked for
    exist there (one model volume stands for all), `volumes` names some; `running` is what
    `managed` answers; `refuse` maps a method's name to what it raises. Every write is
    recorded in `calls` and changes the state the reads see."""

    def __init__(self, *, volume_dir: Path | None = None, volumes: dict[str, Path] | None = None,
                 running: dict[str, Actual] | None = None, images: tuple[str, ...] = (),
                 refuse: dict[str, BaseException] | None = None) -> None:
        self.url = "unix:///fake/podman.sock"
        self.volume_dir = volume_dir
        self.volumes = dict(volumes or {})
        self.running = dict(running or {})
        self.images = set(images)
        self.networks: set[str] = set()
        self.secrets: dict[str, str] = {}
        self.refuse = dict(refuse or {})
        self.calls: list[tuple[str, Any]] = []

    def _call(self, name: str, arg: Any = None) -> None:
        self.calls.append((name, arg))
        if name in self.refuse:
            raise self.refuse[name]

    # -- reads -----------------------------------------------------------------------------------

    def image_exists(self, ref: str) -> bool:
        return ref in self.images

    def volume_exists(self, name: str) -> bool:
        return self.volume_dir is not None or name in self.volumes

    def network_exists(self, name: str) -> bool:
        return name in self.networks

    def process_gone(self, container: str) -> bool:
        return False

    def volume_path(self, name: str) -> Path:
        if name in self.volumes:
            return self.volumes[name]
        if self.volume_dir is None:
            raise PodmanError(f"no such volume: {name}")
        return self.volume_dir

    def volume_owned(self, name: str) -> bool | None:
        return True if self.volume_exists(name) else None

    def managed(self, *, bare_pods: bool = False) -> dict[str, Actual]:
        return dict(self.running)

    def container_state(self, name: str) -> tuple[bool, int | None, str]:
        for actual in self.running.values():
            if actual.container == name:
                return actual.state == "running", actual.exit_code, ""
        raise PodmanError(f"no such container: {name}")

    def name_owner(self, name: str) -> str | None:
        return None

    def pod_owner(self, name: str) -> str | None:
        return None

    def info(self) -> dict[str, Any]:
        return {"version": {"Version": "4.3.1"}, "host": {"security": {"rootless": True}}}

    def published_ports(self) -> dict[tuple[str, int], str]:
        return {(ip, host): actual.container for actual in self.running.values()
                for ip, host, _ in actual.ports}

    # -- writes ----------------------------------------------------------------------------------

    def pull(self, ref: str, progress: Callable[[str], None] = lambda s: None) -> None:
        self._call("pull", ref)
        self.images.add(ref)

    def ensure_volume(self, name: str) -> bool:
        self._call("ensure_volume", name)
        if self.volume_exists(name):
            return False
        raise PodmanError(f"the fake has no directory for volume {name}: give it volume_dir")

    def remove_volume(self, name: str) -> None:
        self._call("remove_volume", name)
        self.volumes.pop(name, None)

    def ensure_network(self, name: str) -> bool:
        self._call("ensure_network", name)
        created = name not in self.networks
        self.networks.add(name)
        return created

    def pin_network_bridge(self, name: str) -> bool:
        return False  # a host's bridge: tests/unit/test_bridge.py, the integration tier

    def create_service(self, spec: ContainerSpec) -> None:
        self._call("create_service", spec.service)

    def put_secret(self, secret: SecretFile | ConfigFile) -> None:
        self._call("put_secret", secret.name)
        self.secrets[secret.name] = secret.value

    def remove_secret(self, name: str) -> None:
        self._call("remove_secret", name)
        self.secrets.pop(name, None)

    def start(self, name: str) -> None:
        self._call("start", name)

    def remove_service(self, pod: str | None, container: str, timeout: float) -> None:
        self._call("remove_service", container)
        self.running = {k: v for k, v in self.running.items() if v.container != container}

    def logs(self, name: str, *, tail: int | None = None, follow: bool = False,
             since: int | None = None) -> Iterator[str]:
        self._call("logs", name)
        return iter(())

    def log_tail(self, name: str, lines: int) -> str:
        return ""


def use_fake_podman(monkeypatch: pytest.MonkeyPatch, podman: FakePodman | None = None,
                    **options: Any) -> FakePodman:
    """Commands run in this test talk to `podman` (a new FakePodman(**options) if none)."""
    fake = podman if podman is not None else FakePodman(**options)
    monkeypatch.setattr("airpods.cli.context.connect", lambda console: fake)
    return fake
