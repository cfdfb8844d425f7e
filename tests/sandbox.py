"""An isolated Podman sandbox, the local llama-server image and a tiny model: no pytest here.

Shared by the real-Podman test tier (tests/integration/conftest.py wraps these in fixtures) and
the benchmarks (bench/*.py), which import it as ``tests.sandbox`` with the repo root on sys.path.

An isolated Podman has its own storage (``--root``), run root (``--runroot``), libpod tmp dir
(``--tmpdir``), network config dir and default network (random id, bridge name and subnet), and
its own REST socket (``podman system service``), all under a short ``/tmp/<prefix>XXXXXXXX``
dir that is reset and removed at the end. Nothing touches the host's default Podman storage, its
networks or /etc/containers.

    with isolated_podman() as penv:           # PodmanEnv; raises SandboxUnavailable
        image = build_llama_image(penv)       # "localhost/airpods/llama-server:<ver>-cpu"
        gw = build_python_service_image(penv, "litellm")  # "localhost/airpods/litellm:<pin>"
        model = write_tiny_model(some_dir)    # Path of a ~240 KB random-weight GGUF
        with penv.client() as client:
            put_model(client, image, "vol", model)   # /models/tiny.gguf in volume "vol"

Knobs (environment): ``AIRPODS_IT_KEEP=1`` keeps the isolated Podman dir for debugging;
``AIRPODS_IT_STORAGE_DRIVER`` (e.g. ``vfs``) overrides the storage driver;
``AIRPODS_LLAMA_PREBUILT=/path/llama-server`` makes build.sh use that binary.

Podman facts this relies on: ``--tmpdir`` always goes with ``--root`` (without it ``system
reset`` may delete /run/libpod); ``CONTAINER_HOST`` makes the podman CLI remote, and then it
rejects ``--root``, so the local-mode CLI runs without it (:meth:`PodmanEnv.cli_env`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTAINERS_CONF = REPO_ROOT / "containers" / "containers.conf"
BUILD_SH = REPO_ROOT / "containers" / "llama-server" / "build.sh"
PYTHON_SERVICE_SH = REPO_ROOT / "containers" / "python-service" / "build.sh"

DEFAULT_NETWORK = "airpods-it-default"
DEFAULT_PREFIX = "airpods-it-"
# Sandbox dirs of every user of this module (tests, benchmarks): their subnets are avoided.
KNOWN_PREFIXES = ("airpods-it-", "airpods-bench-")
BUILD_TIMEOUT_S = 45 * 60  # a cold build compiles llama-server: ~7-10 min on 2 cores


class SandboxUnavailable(RuntimeError):
    """No usable Podman here (not installed, or the isolated one would not start)."""


class SandboxError(RuntimeError):
    """Something in the sandbox failed (image build, volume fill)."""


@dataclass
class PodmanEnv:
    """An isolated Podman: its storage, its REST socket, and how to reach both."""

    base: Path
    socket_path: Path
    containers_conf: Path
    global_args: tuple[str, ...]
    subnet: str
    service: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def socket_url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def extra_env(self) -> dict[str, str]:
        """Only the variables that select this Podman.

        ``CONTAINER_HOST`` points podman-py, and the podman CLI (which then runs in remote
        mode), at the isolated socket; ``CONTAINERS_CONF`` is the isolated containers.conf;
        ``PODMAN`` is the local-mode CLI command line for the same storage (build.sh honours
        it and then ignores CONTAINER_HOST).
        """
        return {
            "CONTAINER_HOST": self.socket_url,
            "CONTAINERS_CONF": str(self.containers_conf),
            "PODMAN": shlex.join(["podman", *self.global_args]),
        }

    @property
    def env(self) -> dict[str, str]:
        """A complete environment for a subprocess (``airpods ...``) that must use this Podman:
        os.environ (read now) plus :attr:`extra_env`. Pass it as ``env=``; copy before editing.
        """
        return {**os.environ, **self.extra_env}

    def subprocess_env(self, **extra: str) -> dict[str, str]:
        """:attr:`env` plus ``extra``."""
        return {**self.env, **extra}

    def cli_env(self) -> dict[str, str]:
        """Environment for the local-mode CLI: CONTAINER_HOST removed (it implies --remote)."""
        env = {k: v for k, v in os.environ.items() if k not in ("CONTAINER_HOST", "DOCKER_HOST")}
        env["CONTAINERS_CONF"] = str(self.containers_conf)
        return env

    def cli_argv(self, *args: str) -> list[str]:
        """``podman --root R --runroot RR --tmpdir T ARGS`` (run it with :meth:`cli_env`)."""
        return ["podman", *self.global_args, *args]

    def remote_argv(self, *args: str) -> list[str]:
        """``podman --remote --url unix://SOCK ARGS``: the same storage through the REST service
        (run it with :meth:`cli_env`)."""
        return ["podman", "--remote", "--url", self.socket_url, *args]

    def podman(
        self, *args: str, check: bool = False, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``podman --root R --runroot RR --tmpdir T ARGS`` (local mode, same storage).

        Returns the CompletedProcess (text stdout/stderr); ``check=True`` raises AssertionError
        with both outputs on a non-zero exit.
        """
        cmd = self.cli_argv(*args)
        proc = subprocess.run(
            cmd,
            env=self.cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{shlex.join(cmd)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def client(self, timeout: int = 60):
        """A new ``podman.PodmanClient`` on the isolated socket (close it when done)."""
        import podman

        return podman.PodmanClient(base_url=self.socket_url, timeout=timeout)

    def service_log(self) -> str:
        try:
            return (self.base / "service.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""


# --------------------------------------------------------------------------------------
# Creating and removing the isolated Podman
# --------------------------------------------------------------------------------------


def _used_second_octets() -> set[int]:
    """Second octets of 10.x networks routed on this host or used by other sandboxes."""
    used = {88, 89}  # podman's default network and default pool
    try:
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            dest = int(line.split()[1], 16)  # little-endian hex
            if dest & 0xFF == 10:
                used.add((dest >> 8) & 0xFF)
    except (OSError, ValueError, IndexError):
        pass
    tmp = Path(tempfile.gettempdir())
    for prefix in KNOWN_PREFIXES:
        for conf in tmp.glob(f"{prefix}*/containers.conf"):
            try:
                for part in conf.read_text().split('"10.')[1:]:
                    used.add(int(part.split(".", 1)[0]))
            except (OSError, ValueError):
                pass
    return used


def _write_isolated_config(base: Path) -> tuple[Path, str]:
    """containers.conf = the repo's + an isolated [network]; plus our own default network.

    Podman 4.3 keeps network definitions in /etc/containers/networks for every storage root,
    and its built-in default network always uses the bridge ``podman0`` and one fixed id; two
    Podmans sharing those step on each other's IPs and firewall rules (and ``system reset``
    deletes every network in the config dir). So: our own network dir, and a default network
    defined by file with a random id, bridge name and subnet (the file wins over the built-in).
    """
    base_text = CONTAINERS_CONF.read_text()
    if "[network]" in base_text:
        raise SandboxError(f"{CONTAINERS_CONF} must not have a [network] table (tests add one)")
    used = _used_second_octets()
    free = [n for n in range(100, 250) if n not in used]
    octet = random.choice(free) if free else random.randint(100, 249)
    subnet = f"10.{octet}.0.0/24"
    netdir = base / "networks"
    netdir.mkdir()
    conf = base / "containers.conf"
    conf.write_text(
        base_text
        + "\n# Added by tests/sandbox.py: an isolated network setup.\n"
        + "[network]\n"
        + f'network_config_dir = "{netdir}"\n'
        + f'default_network = "{DEFAULT_NETWORK}"\n'
        + f'default_subnet = "{subnet}"\n'
        + f'default_subnet_pools = [{{"base" = "10.{octet}.0.0/16", "size" = 24}}]\n'
    )
    network = {
        "name": DEFAULT_NETWORK,
        "id": secrets.token_hex(32),
        "driver": "bridge",
        "network_interface": "apit" + secrets.token_hex(4),  # <= 15 chars
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "subnets": [{"subnet": subnet, "gateway": f"10.{octet}.0.1"}],
        "ipv6_enabled": False,
        "internal": False,
        "dns_enabled": False,
        "ipam_options": {"driver": "host-local"},
    }
    (netdir / f"{DEFAULT_NETWORK}.json").write_text(json.dumps(network, indent=2))
    return conf, subnet


def _start_service(penv: PodmanEnv, timeout: float = 30) -> None:
    log = open(penv.base / "service.log", "wb")  # noqa: SIM115 - lives as long as the service
    penv.service = subprocess.Popen(
        ["podman", *penv.global_args, "system", "service", "--time=0", penv.socket_url],
        env=penv.cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: killed as a group at the end
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if penv.service.poll() is not None:
            raise RuntimeError(
                f"podman system service exited {penv.service.returncode}:\n{penv.service_log()}"
            )
        if penv.socket_path.exists():
            try:
                with penv.client(timeout=5) as client:
                    if client.ping():
                        return
            except Exception:  # not up yet
                pass
        time.sleep(0.1)
    raise RuntimeError(f"podman system service not ready in {timeout}s:\n{penv.service_log()}")


def _stop_service(penv: PodmanEnv) -> None:
    proc = penv.service
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def start_isolated_podman(prefix: str = DEFAULT_PREFIX) -> PodmanEnv:
    """Create an isolated Podman and start its REST service.

    Raises :class:`SandboxUnavailable` (after cleaning up what it made) when podman is missing
    or will not start. Pair with :func:`teardown_isolated_podman`, or use
    :func:`isolated_podman`.
    """
    if shutil.which("podman") is None:
        raise SandboxUnavailable("podman not found on PATH")
    # Short path: a unix socket path must stay under ~107 bytes.
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o755)
    try:
        conf, subnet = _write_isolated_config(base)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    global_args: list[str] = [
        "--root", str(base / "root"),
        "--runroot", str(base / "run"),
        "--tmpdir", str(base / "tmp"),
    ]  # fmt: skip
    driver = os.environ.get("AIRPODS_IT_STORAGE_DRIVER")
    if driver:
        global_args += ["--storage-driver", driver]
    penv = PodmanEnv(
        base=base,
        socket_path=base / "podman.sock",
        containers_conf=conf,
        global_args=tuple(global_args),
        subnet=subnet,
    )
    try:
        penv.podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=True, timeout=60)
        _start_service(penv)
    except (AssertionError, RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        teardown_isolated_podman(penv)
        raise SandboxUnavailable(f"cannot start an isolated podman: {exc}") from exc
    except BaseException:  # e.g. KeyboardInterrupt: still leave nothing behind
        teardown_isolated_podman(penv)
        raise
    return penv


def teardown_isolated_podman(penv: PodmanEnv) -> None:
    """Remove every pod and container, stop the service, reset OUR storage, delete the dir.

    ``AIRPODS_IT_KEEP=1`` keeps the dir (and its storage) for debugging.
    """
    for args in (("pod", "rm", "-a", "-f", "-t", "0"), ("rm", "-a", "-f", "-t", "0")):
        with contextlib.suppress(subprocess.TimeoutExpired):
            penv.podman(*args, check=False, timeout=120)
    _stop_service(penv)
    if os.environ.get("AIRPODS_IT_KEEP"):
        print(f"\nAIRPODS_IT_KEEP set: isolated podman kept in {penv.base}")
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        # Unmounts and deletes the storage, volumes, networks of OUR config dir, tmp dir.
        # global_args always carries --root, --runroot AND --tmpdir: never the default storage.
        penv.podman("system", "reset", "-f", check=False, timeout=300)
    shutil.rmtree(penv.base, ignore_errors=True)


@contextlib.contextmanager
def isolated_podman(prefix: str = DEFAULT_PREFIX) -> Iterator[PodmanEnv]:
    """``with isolated_podman() as penv:`` start, yield, always tear down."""
    penv = start_isolated_podman(prefix)
    try:
        yield penv
    finally:
        teardown_isolated_podman(penv)


# --------------------------------------------------------------------------------------
# Image, model, volume
# --------------------------------------------------------------------------------------


def _run_build(penv: PodmanEnv, cmd: list[str]) -> str:
    """Run a containers/*/build.sh into the isolated storage; the image name it printed."""
    env = penv.cli_env()
    env["PODMAN"] = penv.extra_env["PODMAN"]
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, cwd=REPO_ROOT
    )
    if proc.returncode != 0:
        raise SandboxError(
            f"{shlex.join(cmd)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-6000:]}"
        )
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise SandboxError(f"{cmd[1]} printed no image name\nstderr:\n{proc.stderr[-3000:]}")
    image = lines[-1].strip()
    exists = penv.podman("image", "exists", image)
    if exists.returncode != 0:
        raise SandboxError(f"{cmd[1]} said {image!r} but the isolated storage lacks it")
    return image


def build_python_service_image(penv: PodmanEnv, app: str) -> str:
    """Build (or load from the cache) the local image of a Python service: ``"litellm"`` ->
    ``localhost/airpods/litellm:<pin>``, ``"open-webui"`` -> ``localhost/airpods/open-webui:<pin>``.

    Runs containers/python-service/build.sh APP: the first build (Debian root by mmdebstrap,
    pip install, podman build) takes minutes; later ones `podman load` the image archive cached
    outside the repo (seconds). Raises :class:`SandboxError` with the script's output.
    """
    return _run_build(penv, ["bash", str(PYTHON_SERVICE_SH), app])


def build_llama_image(penv: PodmanEnv, prebuilt: str | None = None) -> str:
    """Build (or reuse) the local llama-server image in the isolated storage; its name.

    Runs containers/llama-server/build.sh (the compiled binary is cached outside the repo, so
    a warm build takes ~2 s). ``prebuilt`` defaults to ``$AIRPODS_LLAMA_PREBUILT``. Raises
    :class:`SandboxError` with the script's output when it fails.
    """
    cmd = ["bash", str(BUILD_SH)]
    prebuilt = prebuilt or os.environ.get("AIRPODS_LLAMA_PREBUILT")
    if prebuilt:
        cmd += ["--prebuilt", prebuilt]
    return _run_build(penv, cmd)


def write_tiny_model(directory: Path | str, name: str = "tiny.gguf") -> Path:
    """A tiny random-weight llama GGUF (~240 KB; its text output is noise) in ``directory``."""
    from tests.tiny_model import write_tiny_gguf

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return write_tiny_gguf(directory / name)


def put_model(
    client, image: str, volume_name: str, path: Path | str, filename: str | None = None
) -> str:
    """Copy ``path`` into the top of named volume ``volume_name`` as ``filename``; the name.

    ``client`` is a ``podman.PodmanClient`` on the sandbox; ``image`` any local image (the
    helper container is created, never started). Creates the volume if needed, so a container
    mounting it at /models sees /models/<filename>. Uses put_archive (podman 4.3 mis-sends
    ``mounts=[{"type": "volume"}]`` as a bind mount; ``volumes={name: {"bind": ..., "mode":
    ...}}`` works). Raises :class:`SandboxError` when the copy does not arrive whole.
    """
    path = Path(path)
    name = filename or path.name
    if not client.volumes.exists(volume_name):
        client.volumes.create(volume_name)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tar.gettarinfo(str(path), arcname=name)
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o644
        with path.open("rb") as fh:
            tar.addfile(info, fh)
    helper = client.containers.create(
        image,
        name=f"airpods-it-put-{secrets.token_hex(4)}",
        entrypoint=["/bin/true"],
        volumes={volume_name: {"bind": "/models", "mode": "rw"}},
    )
    try:
        if not helper.put_archive("/models", buf.getvalue()):
            raise SandboxError(f"put_archive into volume {volume_name} failed")
        _, stat = helper.get_archive(f"/models/{name}")
        size = path.stat().st_size
        if stat.get("size") != size:
            raise SandboxError(f"{volume_name}:/{name} has {stat.get('size')} bytes, not {size}")
    finally:
        helper.remove(force=True)
    return volume_name


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    return free_ports(1)[0]


def free_port_run(count: int, tries: int = 50) -> int:
    """The first of `count` consecutive TCP ports free on 127.0.0.1 right now (a service with
    `replicas = count` publishes base, base+1, ...)."""
    for _ in range(tries):
        base = free_port()
        if base + count - 1 > 65535:
            continue
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
            except OSError:
                continue
        return base
    raise SandboxError(f"no {count} consecutive free ports found")


def free_ports(count: int) -> list[int]:
    """`count` different TCP ports free on 127.0.0.1 right now: all bound at once while the
    kernel picks them, so two services of one config never get the same one."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
