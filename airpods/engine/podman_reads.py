"""What Podman has, read through the thin libpod client (engine/libpod.py): no podman-py here.

These were the read-only methods of engine/podman.py's `Podman`, which now inherits them; each
asks the same libpod endpoint podman-py asked, so the answers are the same JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airpods.engine.libpod import Libpod, maps_lost_connection, quote
from airpods.engine.podman_socket import lost_connection_error
from airpods.errors import PodmanError
from airpods.record import replace
from airpods.spec import (
    LABEL_HASH,
    LABEL_KIND,
    LABEL_MANAGED,
    LABEL_REPLICA_OF,
    LABEL_SERVICE,
    Actual,
)


@maps_lost_connection
class PodmanReads:
    """Podman's state in airpods' terms. Every public method turns a lost connection to the API
    service into one PodmanError."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.api = Libpod(url)

    def lost_connection(self) -> PodmanError:
        return lost_connection_error(self.url)

    # -- objects ---------------------------------------------------------------------------------

    def image_exists(self, ref: str) -> bool:
        return self.api.exists(f"/images/{quote(ref)}/exists")

    def volume_exists(self, name: str) -> bool:
        return self.api.exists(f"/volumes/{quote(name)}/exists")

    def network_exists(self, name: str) -> bool:
        return self.api.exists(f"/networks/{quote(name)}/exists")

    def process_gone(self, container: str) -> bool:
        """True when Podman records the container as running but its process is gone: killed
        together with its monitor (conmon), which would have recorded the exit. Podman's own
        `top` reads the processes where Podman runs: a running container has at least one.
        Podman 4.3 answers 200 with an empty body there (the CLI says "open /proc/<pid>/ns/mnt:
        no such file or directory"); a later one may answer that error instead."""
        status, body = self.api.request(f"/containers/{quote(container)}/top",
                                        {"stream": "false"})
        if 200 <= status < 300:
            try:
                return not json.loads(body or b"{}").get("Processes")
            except (ValueError, AttributeError):
                return False
        message = body.decode("utf-8", "replace").lower()
        return "/proc/" in message and ("no such file" in message or "no such process" in message)

    def volume_path(self, name: str) -> Path:
        """The volume's directory on this host (local driver)."""
        volume = self.api.get(f"/volumes/{quote(name)}/json")
        if volume is None:
            raise PodmanError(f"no volume {name}")
        return Path(volume["Mountpoint"])

    def volume_owned(self, name: str) -> bool | None:
        """True when airpods created the volume, False when something else did, None if absent."""
        volume = self.api.get(f"/volumes/{quote(name)}/json")
        if volume is None:
            return None
        return (volume.get("Labels") or {}).get(LABEL_MANAGED) == "true"

    # -- what runs -------------------------------------------------------------------------------

    def managed(self, *, bare_pods: bool = False) -> dict[str, Actual]:
        """airpods' containers by service name (one per service).

        With `bare_pods`, a service whose pod exists without its container (left so by an
        interrupted start or stop) is included too, as an Actual with container "": its pod and
        the ports that pod publishes.
        """
        found: dict[str, Actual] = {}
        pods: dict[str, Actual] = {}
        # Podman 4.3 ignores a bare-key label filter: match key=value.
        filters = json.dumps({"label": [f"{LABEL_MANAGED}=true"]})
        for attrs in self.api.get("/containers/json", {"all": "true", "filters": filters}) or []:
            actual = actual_from(attrs)
            if actual is None:
                continue
            if attrs.get("IsInfra"):  # a pod's infra container carries the pod's labels
                pods[actual.service] = replace(actual, container="")
            else:
                found[actual.service] = actual
        return {**pods, **found} if bare_pods else found

    def container_state(self, name: str) -> tuple[bool, int | None, str]:
        """(running, exit code, status) of a container; a missing one counts as exited."""
        attrs = self.api.get(f"/containers/{quote(name)}/json")
        if attrs is None:
            return False, None, "removed"
        state = attrs.get("State", {})
        return bool(state.get("Running")), state.get("ExitCode"), state.get("Status", "")

    def name_owner(self, name: str) -> str | None:
        """The airpods service owning container `name`, "" if foreign, None if there is none."""
        attrs = self.api.get(f"/containers/{quote(name)}/json")
        if attrs is None:
            return None
        return (attrs.get("Config", {}).get("Labels") or {}).get(LABEL_SERVICE, "")

    def pod_owner(self, name: str) -> str | None:
        attrs = self.api.get(f"/pods/{quote(name)}/json")
        if attrs is None:
            return None
        return (attrs.get("Labels") or {}).get(LABEL_SERVICE, "")

    # -- read-only facts (doctor) ----------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """`podman info` as data: host (cgroups, OCI runtime, rootless), store paths, version."""
        return dict(self.api.get("/info") or {})

    def published_ports(self) -> dict[tuple[str, int], str]:
        """(host ip, host port) -> container name, for every running container's published port
        (airpods' or not)."""
        found: dict[tuple[str, int], str] = {}
        for attrs in self.api.get("/containers/json") or []:
            names = attrs.get("Names") or [attrs.get("Id", "")[:12]]
            for p in attrs.get("Ports") or []:
                if p.get("host_port"):
                    found[(p.get("host_ip") or "0.0.0.0", int(p["host_port"]))] = names[0]
        return found


def actual_from(attrs: Mapping[str, Any]) -> Actual | None:
    """An Actual from one entry of libpod's container list; None for a container not airpods'."""
    labels = attrs.get("Labels") or {}
    service = labels.get(LABEL_SERVICE)
    if not service:
        return None
    names = attrs.get("Names") or [""]
    ports = tuple(
        (p.get("host_ip") or "0.0.0.0", int(p["host_port"]), int(p["container_port"]))
        for p in (attrs.get("Ports") or [])
        if p.get("host_port")
    )
    return Actual(
        service=service,
        container=names[0],
        pod=attrs.get("PodName") or None,
        state=attrs.get("State", ""),
        config_hash=labels.get(LABEL_HASH, ""),
        image=attrs.get("Image", ""),
        started_at=str(attrs.get("StartedAt", "")),
        exit_code=attrs.get("ExitCode"),
        ports=ports,
        replica_of=labels.get(LABEL_REPLICA_OF, ""),
        kind=labels.get(LABEL_KIND, ""),
    )
