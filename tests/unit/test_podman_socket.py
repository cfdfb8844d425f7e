"""Finding Podman's API socket as Podman users expect; one clear line when there is none."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from airpods.engine.podman_socket import candidate_sockets, find_socket
from airpods.errors import PodmanError


def test_candidates_in_podman_order() -> None:
    env = {"CONTAINER_HOST": "unix:///x/podman.sock", "XDG_RUNTIME_DIR": "/run/user/1000"}
    assert candidate_sockets(env) == [
        "unix:///x/podman.sock",
        "unix:///run/user/1000/podman/podman.sock",
        "unix:///run/podman/podman.sock",
    ]
    assert candidate_sockets({}) == ["unix:///run/podman/podman.sock"]


def fake_api_socket(path: Path) -> socket.socket:
    """A unix socket answering like Podman's /_ping."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_rootless_socket_is_found(tmp_path: Path) -> None:
    (tmp_path / "podman").mkdir()
    server = fake_api_socket(tmp_path / "podman" / "podman.sock")
    try:
        url = find_socket({"XDG_RUNTIME_DIR": str(tmp_path)})
    finally:
        server.close()
    assert url == f"unix://{tmp_path}/podman/podman.sock"


def test_dead_container_host_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PodmanError) as err:
        find_socket({"CONTAINER_HOST": f"unix://{tmp_path}/nothing.sock"})
    assert "does not answer" in err.value.one_line()
    assert "unset CONTAINER_HOST" in err.value.one_line()


def test_podman_missing_is_one_line_with_install_hint(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CONTAINER_HOST"}
    env.update(PATH=str(tmp_path / "empty-bin"), XDG_RUNTIME_DIR=str(tmp_path / "run"),
               XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    if Path("/run/podman/podman.sock").exists():
        pytest.skip("a rootful Podman socket answers on this machine")
    result = subprocess.run([sys.executable, "-m", "airpods", "status"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == ["airpods: podman is not installed (install it: sudo apt-get install podman "
                     "(Debian/Ubuntu) or sudo dnf install podman)"]


@pytest.mark.parametrize("command", ["status", "stop"])  # without click, and through click
def test_unexpected_errors_are_one_line_unless_verbose(command, monkeypatch, capsys) -> None:
    from airpods import cli
    from airpods.cli import fast_run

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli.cli, "main", boom)
    monkeypatch.setattr(fast_run, "run", boom)
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["airpods: internal error: RuntimeError: kaboom (run with -v for details)"]
    with pytest.raises(RuntimeError):
        cli.main(["-v", command])


def test_runtime_dir_is_private(tmp_path: Path) -> None:
    from airpods.engine.lock import runtime_dir

    path = runtime_dir({"XDG_RUNTIME_DIR": str(tmp_path)})
    assert path == tmp_path / "airpods"
    assert (path.stat().st_mode & 0o777) == 0o700
    path.chmod(0o755)  # ours, readable by others (an older airpods made it so): tightened
    assert runtime_dir({"XDG_RUNTIME_DIR": str(tmp_path)}) == path
    assert (path.stat().st_mode & 0o777) == 0o700


@pytest.mark.parametrize("tamper", ["world-writable", "foreign-owner"])
def test_runtime_dir_someone_else_could_use_is_refused(tmp_path: Path, tamper: str) -> None:
    from airpods.engine.lock import runtime_dir
    from airpods.errors import AirpodsError

    path = tmp_path / "airpods"
    path.mkdir()
    if tamper == "world-writable":
        path.chmod(0o777)
    else:
        if os.getuid() != 0:
            pytest.skip("needs root to give the directory to another user")
        os.chown(path, 4242, 4242)
    with pytest.raises(AirpodsError) as err:
        runtime_dir({"XDG_RUNTIME_DIR": str(tmp_path)})
    assert "refusing to use" in err.value.one_line()


def test_non_unix_container_host_is_one_clear_error() -> None:
    with pytest.raises(PodmanError) as err:
        find_socket({"CONTAINER_HOST": "ssh://core@host/run/podman/podman.sock"})
    assert "unix:// socket only" in err.value.one_line()


@pytest.mark.parametrize("args", [
    ["logs", "llamacpp", "--since", "yesterday"],
    ["models", "add", "NOT_GGUF"],
])
def test_bad_input_fails_before_podman_is_touched(tmp_path: Path, args: list[str]) -> None:
    """With no Podman reachable at all, bad input still gets its own one-line usage error."""
    not_gguf = tmp_path / "notes.txt"
    not_gguf.write_text("hello")
    args = [str(not_gguf) if a == "NOT_GGUF" else a for a in args]
    env = {k: v for k, v in os.environ.items() if k != "CONTAINER_HOST"}
    env.update(PATH=str(tmp_path / "empty-bin"), XDG_RUNTIME_DIR=str(tmp_path / "run"),
               XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-m", "airpods", *args], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "podman" not in line and ("--since" in line or "not a GGUF file" in line
                                    or "does not end in .gguf" in line)
    assert not (tmp_path / "run").exists()
