"""Fixtures for the real-Podman tier (everything under tests/integration).

Every test here runs against an ISOLATED Podman: its own storage (``--root``), run root
(``--runroot``), libpod tmp dir (``--tmpdir``), network config dir and default network, and its
own REST socket (``podman system service``), all under a short ``/tmp/airpods-it-XXXXXXXX`` dir
that is reset and removed at the end of the session. Nothing touches the host's default Podman
storage, its networks or /etc/containers. The sandbox itself lives in tests/sandbox.py (no
pytest there: the benchmarks in bench/ use it too); the fixtures below are thin wrappers.

Session fixtures:

* ``podman_env`` -> :class:`PodmanEnv`: ``socket_url``, ``env`` (full environment for a
  subprocess), ``extra_env`` (just the added variables), ``podman(*args)``, ``client()``
* ``podman_client`` -> ``podman.PodmanClient`` on that socket
* ``llama_image`` -> ``"localhost/airpods/llama-server:<version>-cpu"`` (built into the isolated
  storage by containers/llama-server/build.sh; the compiled binary is cached outside the repo)
* ``litellm_image`` -> ``"localhost/airpods/litellm:<pin>"``, ``open_webui_image`` ->
  ``"localhost/airpods/open-webui:<pin>"`` (containers/python-service/build.sh: built once, then
  loaded from an image archive cached outside the repo)
* ``running_gateway`` (module scope) -> tests.gateway_stack.GatewayStack with llamacpp, a
  stand-in remote and the gateway container started
* ``tiny_model`` -> ``Path`` of a tiny random-weight GGUF (tests.tiny_model)
* ``model_volume`` -> ``put_model(volume_name, path, filename=None) -> str`` fills a named volume

Policy: all tests here get the ``integration`` marker. Without podman they are skipped, unless
``AIRPODS_REQUIRE_INTEGRATION=1`` (CI sets it), in which case they fail.

Knobs: ``AIRPODS_IT_KEEP=1`` keeps the isolated Podman dir for debugging;
``AIRPODS_IT_STORAGE_DRIVER`` (e.g. ``vfs``) overrides the storage driver;
``AIRPODS_LLAMA_PREBUILT=/path/llama-server`` makes build.sh use that binary.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` (unlike `python -m pytest`) does not add the cwd
    sys.path.insert(0, str(REPO_ROOT))

from tests.sandbox import (  # noqa: E402
    PodmanEnv,
    SandboxError,
    SandboxUnavailable,
    build_llama_image,
    build_python_service_image,
    put_model,
    start_isolated_podman,
    teardown_isolated_podman,
    write_tiny_model,
)

HERE = Path(__file__).resolve().parent
REQUIRE_ENV = "AIRPODS_REQUIRE_INTEGRATION"


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


@pytest.fixture(scope="session")
def podman_env() -> Iterator[PodmanEnv]:
    """An isolated Podman with its own storage and REST socket, torn down at session end."""
    try:
        penv = start_isolated_podman()
    except SandboxUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield penv
    finally:
        teardown_isolated_podman(penv)


@pytest.fixture(scope="session")
def podman_client(podman_env: PodmanEnv):
    """A ``podman.PodmanClient`` on the isolated socket, shared by the session."""
    with podman_env.client() as client:
        yield client


@pytest.fixture(scope="session")
def llama_image(podman_env: PodmanEnv) -> str:
    """Build (or reuse) the local llama-server image in the isolated storage; its name."""
    start = time.monotonic()
    try:
        image = build_llama_image(podman_env)
    except SandboxError as exc:
        pytest.fail(str(exc))
    print(f"\nllama_image: {image} ready in {time.monotonic() - start:.1f}s")
    return image


def _python_service_image(podman_env: PodmanEnv, app: str) -> str:
    start = time.monotonic()
    try:
        image = build_python_service_image(podman_env, app)
    except SandboxError as exc:
        pytest.fail(str(exc))
    print(f"\n{app} image: {image} ready in {time.monotonic() - start:.1f}s")
    return image


@pytest.fixture(scope="session")
def litellm_image(podman_env: PodmanEnv) -> str:
    """The local LiteLLM proxy image (the pinned release) in the isolated storage; its name."""
    return _python_service_image(podman_env, "litellm")


@pytest.fixture(scope="session")
def open_webui_image(podman_env: PodmanEnv) -> str:
    """The local Open WebUI image (the pinned release) in the isolated storage; its name."""
    return _python_service_image(podman_env, "open-webui")


@pytest.fixture(scope="module")
def running_gateway(podman_env: PodmanEnv, llama_image: str, litellm_image: str,
                    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """tests/gateway_stack.py's stack with the gateway container started, for one module."""
    from tests.gateway_stack import gateway_stack

    tmp = tmp_path_factory.mktemp("gateway")
    with gateway_stack(podman_env, llama_image, litellm_image, tiny_model, tmp) as stack:
        stack.start("gateway")
        yield stack


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight llama GGUF (~240 KB; its text output is noise)."""
    return write_tiny_model(tmp_path_factory.mktemp("models"))


PutModel = Callable[..., str]


@pytest.fixture(scope="session")
def model_volume(podman_client, llama_image: str) -> PutModel:
    """``put_model(volume_name, path, filename=None) -> volume_name``.

    Creates the named volume if needed and copies ``path`` into its top directory as
    ``filename`` (default: the file's name), so a container mounting the volume at /models
    sees /models/<filename>. See tests.sandbox.put_model.
    """

    def _put_model(volume_name: str, path: Path | str, filename: str | None = None) -> str:
        return put_model(podman_client, llama_image, volume_name, path, filename)

    return _put_model
