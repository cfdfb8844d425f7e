"""The one place airpods changes Podman: podman-py over the Podman REST socket (the write path).

`Podman` inherits the reads (engine/podman_reads.py: the thin libpod client, no podman-py) and
adds what changes state: pull, create/start/remove, volumes, networks, secrets, and the log
stream. podman-py (with requests and urllib3, 100-140 ms to import) is imported on the first of
these calls, so `status` and an idempotent `start` never load it.

What moved where (from the 568-line module this was): socket discovery and the transient
service to engine/podman_socket.py; the lost-connection wrapper and `connection_lost` to
engine/libpod.py; the read-only methods and `_actual_from` (now `actual_from`) to
engine/podman_reads.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airpods.engine.args import container_kwargs, pod_kwargs
from airpods.engine.libpod import connection_lost, maps_lost_connection, quote
from airpods.engine.podman_reads import PodmanReads
from airpods.engine.podman_socket import find_socket
from airpods.engine.specgen import container_body
from airpods.errors import NoSuchContainer, PodmanError
from airpods.spec import LABEL_MANAGED, LABEL_SECRETS, ConfigFile, ContainerSpec, SecretFile

if TYPE_CHECKING:
    from podman import PodmanClient


def _podman_errors() -> tuple[type[Exception], ...]:
    from podman.errors import APIError
    from podman.errors import PodmanError as PyPodmanError

    return (APIError, PyPodmanError)


@maps_lost_connection
class Podman(PodmanReads):
    """Podman operations in airpods' terms. Only airpods-labelled objects are changed.

    Every public method turns a lost connection to the API service into one PodmanError.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._client: PodmanClient | None = None

    @classmethod
    def connect(
        cls, environ: Mapping[str, str] | None = None, note: Callable[[str], None] = lambda s: None
    ) -> Podman:
        return cls(find_socket(environ, note))

    @property
    def client(self) -> PodmanClient:
        """podman-py's client, made (and imported) on first use: only writes need it."""
        if self._client is None:
            from podman import PodmanClient

            self._client = PodmanClient(base_url=self.url, timeout=600)
        return self._client

    # -- images ---------------------------------------------------------------------------------

    def pull(self, ref: str, progress: Callable[[str], None] = lambda s: None) -> None:
        """Pull `ref`, reporting progress lines; one clear error when it cannot be pulled."""
        repo, tag = _split_ref(ref)
        try:
            for line in self.client.images.pull(repo, tag=tag, stream=True, decode=True):
                if isinstance(line, dict):
                    if line.get("error"):
                        raise PodmanError(
                            f"cannot pull {ref}: {line['error'].strip()}",
                            hint="check the name and your network, or build it locally "
                            "(see containers/ in the airpods repo)",
                        )
                    text = line.get("stream") or line.get("status") or ""
                    if text.strip():
                        progress(text.strip())
        except _podman_errors() as exc:
            if connection_lost(exc):
                raise self.lost_connection() from None
            raise PodmanError(
                f"cannot pull {ref}: {_short(exc)}",
                hint="check the name and your network, or build it locally "
                "(see containers/ in the airpods repo)",
            ) from None
        if not self.image_exists(ref):
            raise PodmanError(f"cannot pull {ref}: the image is still missing after the pull")

    # -- volumes and network ---------------------------------------------------------------------

    def ensure_volume(self, name: str) -> bool:
        """Create the named volume if missing. Returns True when it was created."""
        if self.volume_exists(name):
            return False
        self.client.volumes.create(name, labels={LABEL_MANAGED: "true"})
        return True

    def remove_volume(self, name: str) -> None:
        """Delete a volume airpods created; any other volume is refused, never deleted."""
        if not self.volume_owned(name):
            raise PodmanError(
                f"volume {name} was not created by airpods: not deleting it",
                hint=f"delete it yourself if you mean it: podman volume rm {name}",
            )
        self.client.volumes.get(name).remove(force=False)

    def ensure_network(self, name: str) -> bool:
        if self.network_exists(name):
            return False
        # DNS must be on so services reach each other by alias (off by default in the API).
        self.client.networks.create(name, dns_enabled=True, labels={LABEL_MANAGED: "true"})
        return True

    def pin_network_bridge(self, name: str) -> bool:
        """Keep the network's bridge MAC fixed once it exists (engine/bridge.py says why).
        True when it was pinned now."""
        from airpods.engine.bridge import pin_bridge_mac

        info = None
        with contextlib.suppress(PodmanError):  # best effort: never fails a start
            info = self.api.get(f"/networks/{quote(name)}/json")
        if not isinstance(info, dict) or info.get("driver") != "bridge":
            return False
        interface = info.get("network_interface")
        gateways = [s.get("gateway") for s in info.get("subnets") or [] if isinstance(s, dict)]
        return isinstance(interface, str) and any(
            isinstance(g, str) and pin_bridge_mac(interface, g) for g in gateways)


    # -- create / start / stop -------------------------------------------------------------------

    def create_service(self, spec: ContainerSpec) -> None:
        """Create the service's pod (network, published ports) and its container (not started).

        Through libpod directly, with the bodies podman-py sent (engine/specgen.py): a `start`
        that creates does not wait for podman-py's import.
        """
        pod = pod_kwargs(spec) | {"name": spec.pod}
        self.api.send("POST", "/pods/create", body=_json(pod))
        for secret in (*spec.secret_files, *spec.config_files):
            self.put_secret(secret)
        self.api.send("POST", "/containers/create", body=_json(container_body(
            container_kwargs(spec))))

    # -- secrets ---------------------------------------------------------------------------------

    def put_secret(self, secret: SecretFile | ConfigFile) -> None:
        """Create the Podman secret anew with `secret.value` (Podman cannot update one)."""
        self.remove_secret(secret.name)
        self.api.send("POST", "/secrets/create", {"name": secret.name},
                      body=secret.value.encode(), raw=True)

    def remove_secret(self, name: str) -> None:
        if not name.startswith("airpods-"):
            return  # only secrets airpods names itself
        self.api.send("DELETE", f"/secrets/{quote(name)}", missing_ok=True)

    def start(self, name: str) -> None:
        self.api.send("POST", f"/containers/{quote(name)}/start")

    def remove_service(self, pod: str | None, container: str, timeout: float) -> None:
        """Stop gracefully, then remove the container and its pod. Volumes are never touched.

        `container` "" is a pod without its container: only the pod goes.
        """
        from podman.errors import NotFound

        secrets: set[str] = set()
        if container:
            try:
                ctr = self.client.containers.get(container)
                secrets |= _secret_names(ctr.attrs.get("Config", {}).get("Labels"))
                if ctr.attrs.get("State", {}).get("Running"):
                    ctr.stop(timeout=int(timeout))
                ctr.remove(force=True, v=False)
            except NotFound:
                pass
        if pod:
            with contextlib.suppress(NotFound):
                found = self.client.pods.get(pod)
                # The pod carries the same labels: a start killed before its container was
                # created may still have made the secret.
                secrets |= _secret_names(found.attrs.get("Labels"))
                found.remove(force=True)
        for name in sorted(secrets):  # the key goes with the service that used it
            self.remove_secret(name)

    def logs(
        self, name: str, *, tail: int | None = None, follow: bool = False, since: int | None = None
    ) -> Iterator[str]:
        """The container's log lines (stdout and stderr interleaved)."""
        from podman.errors import NotFound

        try:
            ctr = self.client.containers.get(name)
        except NotFound:
            raise NoSuchContainer(f"no container {name}") from None
        kwargs: dict[str, Any] = {"stream": True, "follow": follow, "stdout": True, "stderr": True}
        if tail is not None:
            kwargs["tail"] = tail
        if since:
            kwargs["since"] = since
        pending = b""
        for chunk in ctr.logs(**kwargs):
            pending += chunk if isinstance(chunk, bytes) else str(chunk).encode()
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode(errors="replace")
        if pending:
            yield pending.decode(errors="replace")

    def log_tail(self, name: str, lines: int) -> str:
        try:
            return "\n".join(self.logs(name, tail=lines))
        except Exception:  # the log is a courtesy on an error path: never mask the real error
            return ""


def _secret_names(labels: Mapping[str, str] | None) -> set[str]:
    return {n for n in ((labels or {}).get(LABEL_SECRETS) or "").split(",") if n}


def _json(body: dict[str, Any]) -> bytes:
    import json

    return json.dumps(body).encode()


def _split_ref(ref: str) -> tuple[str, str | None]:
    if "@" in ref:
        return ref, None
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, "latest"


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
