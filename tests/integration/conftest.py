"""Fixtures for the real-Podman tier (everything under tests/integration).

Every test here runs against an ISOLATED Podman: its own storage (``--root``), run root
(``--runroot``), libpod tmp dir (``--tmpdir``), network config dir and default network, and its
own REST socket (``podman system service``), all under a short ``/tmp/airpods-it-XXXXXXXX`` dir
that is reset and removed at the end of the session. Nothing touches the host's default Podman
storage, its networks or /etc/containers.

Session fixtures:

* ``podman_env`` -> :class:`PodmanEnv`: ``socket_url``, ``env`` (full environment for a
  subprocess), ``extra_env`` (just the added variables), ``podman(*args)``, ``client()``
* ``podman_client`` -> ``podman.PodmanClient`` on that socket
* ``llama_image`` -> ``"localhost/airpods/llama-server:<version>-cpu"`` (built into the isolated
  storage by containers/llama-server/build.sh; the compiled binary is cached outside the repo)
* ``tiny_model`` -> ``Path`` of a tiny random-weight GGUF (airpods.models.tiny)
* ``model_volume`` -> ``put_model(volume_name, path, filename=None) -> str`` fills a named volume

Policy: all tests here get the ``integration`` marker. Without podman they are skipped, unless
``AIRPODS_REQUIRE_INTEGRATION=1`` (CI sets it), in which case they fail.

Knobs: ``AIRPODS_IT_KEEP=1`` keeps the isolated Podman dir for debugging;
``AIRPODS_IT_STORAGE_DRIVER`` (e.g. ``vfs``) overrides the storage driver;
``AIRPODS_LLAMA_PREBUILT=/path/llama-server`` makes build.sh use that binary.
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
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO_ROOT / "containers" / "containers.conf"
BUILD_SH = REPO_ROOT / "containers" / "llama-server" / "build.sh"
HERE = Path(__file__).resolve().parent

REQUIRE_ENV = "AIRPODS_REQUIRE_INTEGRATION"
DEFAULT_NETWORK = "airpods-it-default"
BUILD_TIMEOUT_S = 45 * 60  # a cold build compiles llama-server: ~7-10 min on 2 cores


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    """Skip, or fail when integration tests are required (CI)."""
    if _required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1, so this is a failure, not a skip)")
    pytest.skip(reason)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    podman_missing = shutil.which("podman") is None
    skip = pytest.mark.skip(
        reason=f"podman not found on PATH (set {REQUIRE_ENV}=1 to make this a failure)"
    )
    for item in items:
        # This hook sees every collected item, not only ours: filter on the path.
        if HERE not in Path(item.path).resolve().parents:
            continue
        item.add_marker(pytest.mark.integration)
        if podman_missing and not _required():
            item.add_marker(skip)


# --------------------------------------------------------------------------------------
# The isolated Podman
# --------------------------------------------------------------------------------------


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

    def podman(
        self, *args: str, check: bool = False, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``podman --root R --runroot RR --tmpdir T ARGS`` (local mode, same storage).

        Returns the CompletedProcess (text stdout/stderr); ``check=True`` raises AssertionError
        with both outputs on a non-zero exit.
        """
        cmd = ["podman", *self.global_args, *args]
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


def _used_second_octets() -> set[int]:
    """Second octets of 10.x networks routed on this host or used by other test sessions."""
    used = {88, 89}  # podman's default network and default pool
    try:
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            dest = int(line.split()[1], 16)  # little-endian hex
            if dest & 0xFF == 10:
                used.add((dest >> 8) & 0xFF)
    except (OSError, ValueError, IndexError):
        pass
    for conf in Path(tempfile.gettempdir()).glob("airpods-it-*/containers.conf"):
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
        raise AssertionError(f"{CONTAINERS_CONF} must not have a [network] table (tests add one)")
    used = _used_second_octets()
    free = [n for n in range(100, 250) if n not in used]
    octet = random.choice(free) if free else random.randint(100, 249)
    subnet = f"10.{octet}.0.0/24"
    netdir = base / "networks"
    netdir.mkdir()
    conf = base / "containers.conf"
    conf.write_text(
        base_text
        + "\n# Added by tests/integration/conftest.py: an isolated network setup.\n"
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


def _teardown(penv: PodmanEnv) -> None:
    for args in (("pod", "rm", "-a", "-f", "-t", "0"), ("rm", "-a", "-f", "-t", "0")):
        with contextlib.suppress(subprocess.TimeoutExpired):
            penv.podman(*args, check=False, timeout=120)
    _stop_service(penv)
    if os.environ.get("AIRPODS_IT_KEEP"):
        print(f"\nAIRPODS_IT_KEEP set: isolated podman kept in {penv.base}")
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        # Unmounts and deletes the storage, volumes, networks of OUR config dir, tmp dir.
        penv.podman("system", "reset", "-f", check=False, timeout=300)
    shutil.rmtree(penv.base, ignore_errors=True)


@pytest.fixture(scope="session")
def podman_env() -> Iterator[PodmanEnv]:
    """An isolated Podman with its own storage and REST socket, torn down at session end."""
    if shutil.which("podman") is None:
        _unavailable("podman not found on PATH")
    # Short path: a unix socket path must stay under ~107 bytes.
    base = Path(tempfile.mkdtemp(prefix="airpods-it-", dir="/tmp"))
    base.chmod(0o755)
    conf, subnet = _write_isolated_config(base)
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
        _teardown(penv)
        _unavailable(f"cannot start an isolated podman: {exc}")
    try:
        yield penv
    finally:
        _teardown(penv)


@pytest.fixture(scope="session")
def podman_client(podman_env: PodmanEnv):
    """A ``podman.PodmanClient`` on the isolated socket, shared by the session."""
    with podman_env.client() as client:
        yield client


# --------------------------------------------------------------------------------------
# Image, model, volume
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def llama_image(podman_env: PodmanEnv) -> str:
    """Build (or reuse) the local llama-server image in the isolated storage; its name."""
    cmd = ["bash", str(BUILD_SH)]
    prebuilt = os.environ.get("AIRPODS_LLAMA_PREBUILT")
    if prebuilt:
        cmd += ["--prebuilt", prebuilt]
    env = podman_env.cli_env()
    env["PODMAN"] = podman_env.extra_env["PODMAN"]
    start = time.monotonic()
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, cwd=REPO_ROOT
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{shlex.join(cmd)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-6000:]}"
        )
    lines = proc.stdout.strip().splitlines()
    assert lines, f"build.sh printed no image name\nstderr:\n{proc.stderr[-3000:]}"
    image = lines[-1].strip()
    print(f"\nllama_image: {image} ready in {time.monotonic() - start:.1f}s")
    podman_env.podman("image", "exists", image, check=True)
    return image


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight llama GGUF (~240 KB; its text output is noise)."""
    from airpods.models.tiny import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny.gguf")


PutModel = Callable[..., str]


@pytest.fixture(scope="session")
def model_volume(podman_client, llama_image: str) -> PutModel:
    """``put_model(volume_name, path, filename=None) -> volume_name``.

    Creates the named volume if needed and copies ``path`` into its top directory as
    ``filename`` (default: the file's name), so a container mounting the volume at /models
    sees /models/<filename>. Uses a created-never-started helper container with the volume
    mounted rw and put_archive (podman 4.3 mis-sends ``mounts=[{"type": "volume"}]`` as a
    bind mount; ``volumes={name: {"bind": ..., "mode": ...}}`` works).
    """

    def put_model(volume_name: str, path: Path | str, filename: str | None = None) -> str:
        path = Path(path)
        name = filename or path.name
        if not podman_client.volumes.exists(volume_name):
            podman_client.volumes.create(volume_name)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o644
            with path.open("rb") as fh:
                tar.addfile(info, fh)
        helper = podman_client.containers.create(
            llama_image,
            name=f"airpods-it-put-{secrets.token_hex(4)}",
            entrypoint=["/bin/true"],
            volumes={volume_name: {"bind": "/models", "mode": "rw"}},
        )
        try:
            if not helper.put_archive("/models", buf.getvalue()):
                raise AssertionError(f"put_archive into volume {volume_name} failed")
            _, stat = helper.get_archive(f"/models/{name}")
            size = path.stat().st_size
            if stat.get("size") != size:
                raise AssertionError(
                    f"{volume_name}:/{name} has {stat.get('size')} bytes, not {size}"
                )
        finally:
            helper.remove(force=True)
        return volume_name

    return put_model
