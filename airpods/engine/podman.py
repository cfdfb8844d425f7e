"""The one place airpods talks to Podman: podman-py over the Podman REST socket.

Socket discovery follows what Podman users expect: CONTAINER_HOST, then the rootless
$XDG_RUNTIME_DIR/podman/podman.sock, then the rootful /run/podman/podman.sock. When none answers,
airpods starts a transient `podman system service` on a private socket and reuses it while it
lives (it exits by itself after a few idle minutes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airpods.engine.args import container_kwargs, pod_kwargs
from airpods.errors import AirpodsError, NoSuchContainer, PodmanError
from airpods.spec import (
    LABEL_HASH,
    LABEL_MANAGED,
    LABEL_SECRETS,
    LABEL_SERVICE,
    Actual,
    ConfigFile,
    ContainerSpec,
    SecretFile,
)

if TYPE_CHECKING:
    from podman import PodmanClient

TRANSIENT_IDLE_S = 600
INSTALL_HINT = "install it: sudo apt-get install podman (Debian/Ubuntu) or sudo dnf install podman"


def _socket_answers(path: str, timeout: float = 0.5) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        return sock.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False
    finally:
        sock.close()


def candidate_sockets(environ: Mapping[str, str]) -> list[str]:
    found = []
    if environ.get("CONTAINER_HOST"):
        found.append(environ["CONTAINER_HOST"])
    if environ.get("XDG_RUNTIME_DIR"):
        found.append(f"unix://{environ['XDG_RUNTIME_DIR']}/podman/podman.sock")
    found.append("unix:///run/podman/podman.sock")
    return found


def _private_socket_path(environ: Mapping[str, str]) -> Path:
    from airpods.engine.lock import runtime_dir

    return runtime_dir(environ) / "podman.sock"


def _start_transient_service(path: Path) -> None:
    podman = shutil.which("podman")
    if podman is None:
        raise PodmanError("podman is not installed", hint=INSTALL_HINT)
    path.unlink(missing_ok=True)
    # A new session so the service outlives this command and serves the next ones.
    subprocess.Popen(
        [podman, "system", "service", f"--time={TRANSIENT_IDLE_S}", f"unix://{path}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    from tenacity import RetryError, retry_if_result, stop_after_delay, wait_fixed
    from tenacity import Retrying as Retry

    waiting = Retry(
        retry=retry_if_result(lambda answered: not answered),
        wait=wait_fixed(0.05),
        stop=stop_after_delay(15),
    )
    try:
        waiting(_socket_answers, str(path))
    except RetryError:
        raise PodmanError(
            "podman system service did not start",
            hint="run `podman info` to see why; `airpods doctor` checks the setup",
        ) from None


def answering_socket(environ: Mapping[str, str]) -> str | None:
    """The first of the usual sockets that answers, or None."""
    for url in candidate_sockets(environ):
        if url.startswith("unix://") and _socket_answers(url[len("unix://") :]):
            return url
    return None


def find_socket(
    environ: Mapping[str, str] | None = None, note: Callable[[str], None] = lambda s: None
) -> str:
    """The URL of a Podman socket that answers, starting a transient service if needed."""
    environ = os.environ if environ is None else environ
    url = answering_socket(environ)
    if url:
        return url
    host = environ.get("CONTAINER_HOST")
    if host and not host.startswith("unix://"):
        raise PodmanError(
            f"CONTAINER_HOST={host}: airpods talks to Podman over a local unix:// socket only",
            hint="unset CONTAINER_HOST, or point it at unix:///PATH/podman.sock",
        )
    if host:
        raise PodmanError(
            f"CONTAINER_HOST={host} does not answer",
            hint="start that Podman service or unset CONTAINER_HOST",
        )
    from airpods.engine.lock import state_lock

    private = _private_socket_path(environ)
    # Two commands started at once must not both start a service (the second would unlink the
    # first one's socket): decide under a lock.
    with state_lock(private.with_name("transient.lock")):
        if _socket_answers(str(private)):
            return f"unix://{private}"
        if shutil.which("podman") is None:
            raise PodmanError("podman is not installed", hint=INSTALL_HINT)
        _start_transient_service(private)
    note(
        f"started a transient Podman API service on {private} "
        "(enable the podman.socket unit to skip this: systemctl --user enable --now podman.socket)"
    )
    return f"unix://{private}"


def connection_lost(exc: BaseException) -> bool:
    """True when `exc` means the Podman API service stopped answering, not that it refused.

    podman-py wraps a refused connection in APIError (the requests error is its __cause__); a
    stream cut mid-way surfaces from urllib3 (ProtocolError: IncompleteRead) directly.
    """
    import requests
    from urllib3.exceptions import ProtocolError

    lost = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, ProtocolError,
            ConnectionError)
    seen: BaseException | None = exc
    for _ in range(8):  # a cause chain is short; never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, lost):
            return True
        seen = seen.__cause__
    return False


def _maps_lost_connection(cls: type[Podman]) -> type[Podman]:
    """Wrap every public method: a lost Podman connection becomes one PodmanError with a hint.

    Done once here so that no command has to know what podman-py, requests or urllib3 raise.
    """
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _mapped(member))
    return cls


def _mapped(fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(self: Podman, *args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(self, *args, **kwargs)
            except PodmanError:
                raise
            except Exception as exc:
                if not connection_lost(exc):
                    raise
                raise self.lost_connection() from None

        return streaming

    @functools.wraps(fn)
    def call(self: Podman, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except PodmanError:
            raise
        except Exception as exc:
            if not connection_lost(exc):
                raise
            raise self.lost_connection() from None

    return call


def _podman_errors() -> tuple[type[Exception], ...]:
    from podman.errors import APIError
    from podman.errors import PodmanError as PyPodmanError

    return (APIError, PyPodmanError)


@_maps_lost_connection
class Podman:
    """Podman operations in airpods' terms. Only airpods-labelled objects are changed.

    Every public method turns a lost connection to the API service into one PodmanError.
    """

    def __init__(self, client: PodmanClient, url: str) -> None:
        self.client = client
        self.url = url

    @classmethod
    def connect(
        cls, environ: Mapping[str, str] | None = None, note: Callable[[str], None] = lambda s: None
    ) -> Podman:
        url = find_socket(environ, note)
        from podman import PodmanClient

        return cls(PodmanClient(base_url=url, timeout=600), url)

    def lost_connection(self) -> PodmanError:
        """The one error for a Podman API service that stopped answering mid-command."""
        try:
            transient = self.url == f"unix://{_private_socket_path(os.environ)}"
        except AirpodsError:  # no private runtime dir: so not ours
            transient = False
        if transient:
            hint = "run the command again: airpods starts a fresh Podman API service"
        else:
            hint = "check that this Podman service runs (podman info), then run the command again"
        return PodmanError(f"lost the connection to Podman at {self.url}", hint=hint)

    # -- images ---------------------------------------------------------------------------------

    def image_exists(self, ref: str) -> bool:
        return bool(self.client.images.exists(ref))

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

    def volume_exists(self, name: str) -> bool:
        return bool(self.client.volumes.exists(name))

    def ensure_volume(self, name: str) -> bool:
        """Create the named volume if missing. Returns True when it was created."""
        if self.volume_exists(name):
            return False
        self.client.volumes.create(name, labels={LABEL_MANAGED: "true"})
        return True

    def volume_path(self, name: str) -> Path:
        """The volume's directory on this host (local driver)."""
        return Path(self.client.volumes.get(name).attrs["Mountpoint"])

    def volume_owned(self, name: str) -> bool | None:
        """True when airpods created the volume, False when something else did, None if absent."""
        from podman.errors import NotFound

        try:
            volume = self.client.volumes.get(name)
        except NotFound:
            return None
        return (volume.attrs.get("Labels") or {}).get(LABEL_MANAGED) == "true"

    def remove_volume(self, name: str) -> None:
        """Delete a volume airpods created; any other volume is refused, never deleted."""
        if not self.volume_owned(name):
            raise PodmanError(
                f"volume {name} was not created by airpods: not deleting it",
                hint=f"delete it yourself if you mean it: podman volume rm {name}",
            )
        self.client.volumes.get(name).remove(force=False)

    def network_exists(self, name: str) -> bool:
        return bool(self.client.networks.exists(name))

    def ensure_network(self, name: str) -> bool:
        if self.network_exists(name):
            return False
        # DNS must be on so services reach each other by alias (off by default in the API).
        self.client.networks.create(name, dns_enabled=True, labels={LABEL_MANAGED: "true"})
        return True

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
        listed = self.client.containers.list(all=True, filters={"label": f"{LABEL_MANAGED}=true"})
        for ctr in listed:
            actual = _actual_from(ctr.attrs)
            if actual is None:
                continue
            if ctr.attrs.get("IsInfra"):  # a pod's infra container carries the pod's labels
                pods[actual.service] = dataclasses.replace(actual, container="")
            else:
                found[actual.service] = actual
        return {**pods, **found} if bare_pods else found

    def container_state(self, name: str) -> tuple[bool, int | None, str]:
        """(running, exit code, status) of a container; a missing one counts as exited."""
        from podman.errors import NotFound

        try:
            ctr = self.client.containers.get(name)
        except NotFound:
            return False, None, "removed"
        state = ctr.attrs.get("State", {})
        return bool(state.get("Running")), state.get("ExitCode"), state.get("Status", "")

    def name_owner(self, name: str) -> str | None:
        """The airpods service owning container `name`, "" if foreign, None if there is none."""
        from podman.errors import NotFound

        try:
            ctr = self.client.containers.get(name)
        except NotFound:
            return None
        return (ctr.attrs.get("Config", {}).get("Labels") or {}).get(LABEL_SERVICE, "")

    def pod_owner(self, name: str) -> str | None:
        from podman.errors import NotFound

        try:
            pod = self.client.pods.get(name)
        except NotFound:
            return None
        return (pod.attrs.get("Labels") or {}).get(LABEL_SERVICE, "")

    # -- create / start / stop -------------------------------------------------------------------

    def create_service(self, spec: ContainerSpec) -> None:
        """Create the service's pod (network, published ports) and its container (not started)."""
        self.client.pods.create(spec.pod, **pod_kwargs(spec))
        for secret in (*spec.secret_files, *spec.config_files):
            self.put_secret(secret)
        self.client.containers.create(**container_kwargs(spec))

    # -- secrets ---------------------------------------------------------------------------------

    def put_secret(self, secret: SecretFile | ConfigFile) -> None:
        """Create the Podman secret anew with `secret.value` (Podman cannot update one)."""
        self.remove_secret(secret.name)
        self.client.secrets.create(secret.name, secret.value.encode())

    def remove_secret(self, name: str) -> None:
        from podman.errors import NotFound

        if not name.startswith("airpods-"):
            return  # only secrets airpods names itself
        with contextlib.suppress(NotFound):
            self.client.secrets.get(name).remove()

    def secret_exists(self, name: str) -> bool:
        return bool(self.client.secrets.exists(name))

    def start(self, name: str) -> None:
        self.client.containers.get(name).start()

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

    # -- read-only facts (doctor) ----------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """`podman info` as data: host (cgroups, OCI runtime, rootless), store paths, version."""
        return dict(self.client.info())

    def published_ports(self) -> dict[tuple[str, int], str]:
        """(host ip, host port) -> container name, for every running container's published port
        (airpods' or not)."""
        found: dict[tuple[str, int], str] = {}
        for ctr in self.client.containers.list(all=False):
            names = ctr.attrs.get("Names") or [ctr.attrs.get("Id", "")[:12]]
            for p in ctr.attrs.get("Ports") or []:
                if p.get("host_port"):
                    found[(p.get("host_ip") or "0.0.0.0", int(p["host_port"]))] = names[0]
        return found


def _secret_names(labels: Mapping[str, str] | None) -> set[str]:
    return {n for n in ((labels or {}).get(LABEL_SECRETS) or "").split(",") if n}


def _actual_from(attrs: Mapping[str, Any]) -> Actual | None:
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
    )


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
