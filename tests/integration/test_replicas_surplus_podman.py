"""`replicas = N` lowered, on real Podman: the replicas the configuration no longer has are shown
by `status`, stopped and removed by the next `start` of their service (one line each, the model
volume kept), and by `stop` with no names; a container that is not airpods' is never touched.

One llama-server of the tiny model per replica (tests/stack_config.llama_config), no gateway.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gateway_stack import network_of
from tests.sandbox import free_port_run
from tests.stack_config import airpods_env, llama_config

Airpods = Callable[..., subprocess.CompletedProcess[str]]
GONE = "no longer in services.llamacpp.replicas = {n}, stopped and removed"


def _config(podman_env, llama_image: str, tmp_path: Path, port: int, volume: str,
            settings: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(llama_config(llama_image, port, volume, network=network_of(podman_env),
                                   settings=settings))
    return config


@pytest.fixture
def setup(podman_env, llama_image, tiny_model, tmp_path):
    port, volume = free_port_run(3), f"airpods_it_surplus_{secrets.token_hex(3)}"
    config = _config(podman_env, llama_image, tmp_path, port, volume, "replicas = 3")
    env = airpods_env(podman_env.env, tmp_path)

    def airpods(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "airpods", "--config", str(config), *argv],
                              env=env, capture_output=True, text=True, timeout=300)

    assert airpods("models", "add", str(tiny_model)).returncode == 0
    try:
        yield airpods, config, port, volume
    finally:
        airpods("config", "set", "services.llamacpp.replicas", "3")
        airpods("stop", "--timeout", "1")


def _running(podman_env) -> set[str]:
    return set(podman_env.podman("ps", "--format", "{{.Names}}", check=True).stdout.split())


def _pods(podman_env) -> set[str]:
    return set(podman_env.podman("pod", "ps", "--format", "{{.Name}}", check=True).stdout.split())


def _status(airpods: Airpods) -> dict[str, dict]:
    out = airpods("status", "--json")
    return {row["name"]: row for row in json.loads(out.stdout)["services"]}


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _id(podman_env, container: str) -> str:
    return podman_env.podman("inspect", "--format", "{{.Id}}", container, check=True).stdout


def test_start_removes_the_replicas_a_lowered_count_no_longer_has(
        podman_env, llama_image, setup) -> None:
    airpods, config, port, volume = setup
    names = {f"airpods-llamacpp{s}-server" for s in ("", "-2", "-3")}
    out = airpods("start")
    assert out.returncode == 0, out.stderr
    assert names <= _running(podman_env)
    first = _id(podman_env, "airpods-llamacpp-server")
    # Not airpods' own, though it carries the replica label and a replica's name: never touched.
    foreign = "airpods-llamacpp-4-server"
    podman_env.podman("create", "--name", foreign, "--label", "io.airpods.replica-of=llamacpp",
                      llama_image, check=True)
    try:
        # The key removed (replicas = 1 by default): status shows what still runs, and how to
        # remove it.
        config.write_text(config.read_text().replace("replicas = 3", ""))
        rows = _status(airpods)
        assert set(rows) == {"llamacpp", "llamacpp-2", "llamacpp-3"}, rows
        for name in ("llamacpp-2", "llamacpp-3"):
            assert rows[name]["leftover"] is True and rows[name]["state"] == "running", rows
            assert "airpods start llamacpp" in rows[name]["detail"], rows[name]
        assert rows["llamacpp-3"]["url"] == f"http://127.0.0.1:{port + 2}"
        named = json.loads(airpods("status", "llamacpp", "--json").stdout)["services"]
        assert [r["name"] for r in named] == ["llamacpp", "llamacpp-2", "llamacpp-3"], named
        text = airpods("status").stdout
        assert "llamacpp-2: no longer in services.llamacpp.replicas" in text, text
        dry = airpods("start", "--dry-run")  # says what start would remove, removes nothing
        assert dry.returncode == 0, dry.stderr
        assert [ln for ln in dry.stdout.splitlines() if ln.startswith("remove:")] == [
            f"remove:   llamacpp-{i}: no longer in services.llamacpp.replicas = 1: start stops "
            "and removes it" for i in (2, 3)], dry.stdout
        assert names <= _running(podman_env)

        out = airpods("start")
        assert out.returncode == 0, out.stderr
        print(f"\n{out.stderr}")
        said = [ln for ln in out.stderr.splitlines() if "no longer in" in ln]
        assert said == [f"note: llamacpp-{i}: {GONE.format(n=1)}" for i in (2, 3)], out.stderr
        running = _running(podman_env)
        assert "airpods-llamacpp-server" in running and not {
            "airpods-llamacpp-2-server", "airpods-llamacpp-3-server"} & running, running
        assert not {"airpods-llamacpp-2", "airpods-llamacpp-3"} & _pods(podman_env)
        assert _id(podman_env, "airpods-llamacpp-server") == first  # replica 1 left as it was
        assert _free(port + 1) and _free(port + 2)
        # Volume and model kept; the foreign container too.
        podman_env.podman("volume", "exists", volume, check=True)
        models = airpods("models", "list")
        assert "tiny.gguf" in models.stdout, models.stdout + models.stderr
        podman_env.podman("container", "exists", foreign, check=True)
        assert set(_status(airpods)) == {"llamacpp"}
        again = airpods("start")  # nothing left to remove: nothing said
        assert again.returncode == 0 and "no longer in" not in again.stderr, again.stderr
    finally:
        podman_env.podman("rm", "-f", foreign)


def test_lowered_to_two_only_the_third_goes_and_stop_removes_a_leftover(
        podman_env, setup) -> None:
    airpods, _, _, _ = setup
    doctor = airpods("doctor").stdout  # three servers of the tiny model fit together
    assert "ok    fit (llamacpp: 3 replicas together): 3 x " in doctor, doctor
    assert airpods("start", "llamacpp").returncode == 0
    assert airpods("config", "set", "services.llamacpp.replicas", "2").returncode == 0
    out = airpods("start", "llamacpp")
    assert out.returncode == 0, out.stderr
    said = [ln for ln in out.stderr.splitlines() if "no longer in" in ln]
    assert said == [f"note: llamacpp-3: {GONE.format(n=2)}"], out.stderr
    assert {"airpods-llamacpp-server", "airpods-llamacpp-2-server"} <= _running(podman_env)
    # Lowered again, not started: `stop llamacpp` stops the leftover with it...
    assert airpods("config", "set", "services.llamacpp.replicas", "1").returncode == 0
    out = airpods("stop", "llamacpp", "--timeout", "1")
    assert out.returncode == 0, out.stderr
    assert "stopped llamacpp-2, llamacpp" in out.stdout + out.stderr, out.stdout + out.stderr
    assert not {n for n in _running(podman_env) if n.startswith("airpods-llamacpp")}
    # ... and so does `stop` with no names.
    assert airpods("config", "set", "services.llamacpp.replicas", "2").returncode == 0
    assert airpods("start", "llamacpp").returncode == 0
    assert airpods("config", "set", "services.llamacpp.replicas", "1").returncode == 0
    out = airpods("stop", "--timeout", "1")
    assert out.returncode == 0 and "llamacpp-2" in out.stdout + out.stderr, out.stderr
    assert not {n for n in _running(podman_env) if n.startswith("airpods-llamacpp")}
    assert _status(airpods)["llamacpp"]["state"] == "absent"
    assert set(_status(airpods)) == {"llamacpp"}


BAD = ["replicas = 0", "replicas = -1", "replicas = 1.5", "replicas = 1000000000",
       'replicas = "2x"', 'mode = "router"\nreplicas = 2']


def test_a_bad_count_is_one_line_exit_2_and_nothing_started_or_removed(podman_env, setup) -> None:
    """Lowering replicas to a bad value removes nothing: the file is refused first."""
    airpods, config, _, _ = setup
    assert airpods("start", "llamacpp").returncode == 0
    ids = {n: _id(podman_env, n) for n in (f"airpods-llamacpp{s}-server" for s in ("", "-2", "-3"))}
    pods, good = _pods(podman_env), config.read_text()
    try:
        for bad in BAD:
            config.write_text(good.replace("replicas = 3", bad))
            for argv in (("start",), ("start", "llamacpp"), ("start", "--dry-run")):
                out = airpods(*argv)
                assert out.returncode == 2, (bad, argv, out.stderr)
                assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
                assert "services.llamacpp.replicas" in out.stderr, (bad, out.stderr)
            assert {n: _id(podman_env, n) for n in ids} == ids and _pods(podman_env) == pods
    finally:
        config.write_text(good)
