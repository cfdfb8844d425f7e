"""Config paths that are not plain files, and the CLI's edges, through the real CLI.

Every bad input is one line on stderr and a non-zero exit, quickly (a hang is a subprocess
timeout), with nothing changed on disk: a device or FIFO is never read past 4 MiB nor replaced.
The device nodes are `mknod` copies in a temporary directory, never the real /dev/null.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="mknod and chown need root")
GOOD = "[cli]\nfailure_log_lines = 7\n"


def airpods(
    tmp_path: Path, *args: str, config: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the CLI with every per-user directory inside `tmp_path` and no Podman reachable."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AIRPODS_")}
    environ.pop("CONTAINER_HOST", None)
    environ.update(
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
        XDG_RUNTIME_DIR=str(tmp_path / "xdg-run"),
    )
    environ.update(env)
    argv = [sys.executable, "-m", "airpods"]
    if config is not None:
        argv += ["--config", str(config)]
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, env=environ, cwd=REPO, timeout=30
    )


def one_line(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    err = result.stderr
    assert result.returncode == code, err
    assert "Traceback" not in err
    assert err.startswith("airpods: ") and err.count("\n") == 1, err
    return err


# --- special files as the config to read ------------------------------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


def _zero_copy(path: Path) -> Path:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero: endless bytes
    return path


def _huge(path: Path) -> Path:
    with path.open("wb") as handle:
        handle.truncate(5 * 1024 * 1024)  # sparse: costs no disk
    return path


def _loop(path: Path) -> Path:
    other = path.with_name("other")
    other.symlink_to(path)
    path.symlink_to(other)
    return path


def _socket(path: Path) -> Iterator[Path]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        yield path


READ_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "fifo": (_fifo, "is a named pipe (FIFO), not a regular file"),
    "directory": (_directory, "is a directory, not a regular file"),
    "huge-file": (_huge, "too big to be a config file (5242880 bytes; the limit is 4 MiB)"),
    "symlink-loop": (_loop, "symlink loop"),
}


@pytest.mark.parametrize("via", ["--config", "AIRPODS_CONFIG", "default path"])
@pytest.mark.parametrize("case", sorted(READ_CASES))
def test_a_special_file_as_config_is_one_line(tmp_path: Path, case: str, via: str) -> None:
    make, expect = READ_CASES[case]
    if via == "default path":
        (tmp_path / "xdg-config" / "airpods").mkdir(parents=True)
        path = make(tmp_path / "xdg-config" / "airpods" / "config.toml")
        result = airpods(tmp_path, "config", "validate")
    elif via == "AIRPODS_CONFIG":
        path = make(tmp_path / "config.toml")
        result = airpods(tmp_path, "config", "validate", AIRPODS_CONFIG=str(path))
    else:
        path = make(tmp_path / "config.toml")
        result = airpods(tmp_path, "config", "validate", config=path)
    err = one_line(result)
    assert f"config error: {path}: " in err and expect in err, err


def test_dev_zero_is_refused_without_reading_it(tmp_path: Path) -> None:
    err = one_line(airpods(tmp_path, "config", "validate", config=Path("/dev/zero")))
    assert "/dev/zero: is a character device, not a regular file" in err


@AS_ROOT
def test_a_device_copy_is_refused(tmp_path: Path) -> None:
    path = _zero_copy(tmp_path / "zero")
    err = one_line(airpods(tmp_path, "config", "show", config=path))
    assert f"{path}: is a character device" in err


def test_a_socket_is_refused(tmp_path: Path) -> None:
    for path in _socket(tmp_path / "config.sock"):
        err = one_line(airpods(tmp_path, "config", "validate", config=path))
        assert f"{path}: is a socket, not a regular file" in err


def test_dev_null_reads_as_an_empty_config(tmp_path: Path) -> None:
    result = airpods(tmp_path, "config", "validate", config=Path("/dev/null"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(", /dev/null")


def test_a_file_of_exactly_4_mib_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    comment = "#" * 1023 + "\n"
    path.write_text(GOOD + comment * (4096 - 1) + "#" * (1024 - len(GOOD) - 1) + "\n")
    assert path.stat().st_size == 4 * 1024 * 1024
    result = airpods(tmp_path, "config", "get", "cli.failure_log_lines", config=path)
    assert (result.returncode, result.stdout) == (0, "7\n"), result.stderr
    with path.open("a") as handle:
        handle.write("\n")
    assert "too big to be a config file" in one_line(airpods(tmp_path, "config", "validate",
                                                             config=path))


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    result = airpods(tmp_path, "config", "get", "cli.failure_log_lines", config=path)
    assert (result.returncode, result.stdout) == (0, "7\n"), result.stderr
    result = airpods(tmp_path, "config", "set", "cli.max_concurrent_pulls", "2", config=path)
    assert result.returncode == 0, result.stderr
    text = path.read_text(encoding="utf-8")
    assert "failure_log_lines = 7" in text and "max_concurrent_pulls = 2" in text


# --- writing never replaces what is not a regular file ----------------------------------------

WRITES = {
    "set": ("config", "set", "cli.failure_log_lines", "5"),
    "init --force": ("config", "init", "--force"),
    "edit": ("config", "edit"),
}


def _null_copy(path: Path) -> Path:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return path


@pytest.mark.parametrize("command", sorted(WRITES))
@pytest.mark.parametrize("node", ["fifo", pytest.param("null-copy", marks=AS_ROOT)])
def test_writing_never_replaces_a_special_file(tmp_path: Path, command: str, node: str) -> None:
    path = (_fifo if node == "fifo" else _null_copy)(tmp_path / "config.toml")
    before = path.stat()
    # `true` as the editor: were the edit to go ahead, it would "succeed" and write a starter.
    result = airpods(tmp_path, *WRITES[command], config=path, EDITOR="true", VISUAL="")
    err = one_line(result)
    assert "not a regular file" in err and "will not replace it" in err, err
    after = path.stat()
    assert (after.st_mode, after.st_rdev, after.st_ino) == (
        before.st_mode, before.st_rdev, before.st_ino,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no temp file left


@pytest.mark.parametrize("command", sorted(WRITES))
def test_writing_through_a_symlink_loop_is_one_line(tmp_path: Path, command: str) -> None:
    path = _loop(tmp_path / "config.toml")
    err = one_line(airpods(tmp_path, *WRITES[command], config=path, EDITOR="true", VISUAL=""))
    assert "symlink loop" in err
    assert path.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == [
        "config.toml", "other",
    ]


# --- ownership and modes ----------------------------------------------------------------------


@AS_ROOT
def test_root_setting_a_users_key_keeps_the_file_theirs(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(GOOD)
    os.chown(path, 1234, 2345)
    path.chmod(0o640)
    result = airpods(tmp_path, "config", "set", "cli.max_concurrent_pulls", "2", config=path)
    assert result.returncode == 0, result.stderr
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 2345, 0o640)
    assert "max_concurrent_pulls = 2" in path.read_text()


@AS_ROOT
def test_init_force_keeps_owner_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(GOOD)
    os.chown(path, 1234, 1234)
    path.chmod(0o600)
    assert airpods(tmp_path, "config", "init", "--force", config=path).returncode == 0
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 1234, 0o600)
    assert path.read_text().startswith("# airpods user configuration.")


def test_a_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.toml"
    assert airpods(tmp_path, "config", "set", "cli.max_concurrent_pulls", "2",
                   config=path).returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- CLI edges --------------------------------------------------------------------------------


def test_setting_a_table_to_a_value_blames_the_set(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(GOOD)
    err = one_line(airpods(tmp_path, "config", "set", "services.llamacpp", "5", config=path))
    assert f"config error: {path}: services.llamacpp: is a table" in err, err
    assert "airpods.toml" not in err  # not the built-in file's line 98
    assert path.read_text() == GOOD


@pytest.mark.parametrize(
    ("editor", "expect"),
    [
        ("no-such-editor-anywhere --wait", "cannot run editor 'no-such-editor-anywhere'"),
        ("'unbalanced", "cannot parse $EDITOR"),
        ("   ", "$EDITOR is blank"),
    ],
)
def test_a_bad_editor_writes_nothing(tmp_path: Path, editor: str, expect: str) -> None:
    path = tmp_path / "sub" / "config.toml"
    err = one_line(airpods(tmp_path, "config", "edit", config=path, EDITOR=editor, VISUAL=""))
    assert expect in err, err
    assert not path.exists() and not path.parent.exists()


def test_the_editor_is_found_before_the_starter_is_written(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    result = airpods(tmp_path, "config", "edit", config=path, EDITOR="true", VISUAL="")
    assert result.returncode == 0, result.stderr
    assert path.read_text().startswith("# airpods user configuration.")


def test_getting_a_missing_key_creates_no_secret(tmp_path: Path) -> None:
    secrets = tmp_path / "xdg-data" / "airpods" / "secrets"
    err = one_line(airpods(tmp_path, "config", "get", "services.llamacpp.env.NOPE"))
    assert "no such key: services.llamacpp.env.NOPE" in err
    assert not secrets.exists()
    # The same command with a key that exists does keep the generated key: the check can fail.
    result = airpods(tmp_path, "config", "get", "services.llamacpp.env.LLAMA_API_KEY")
    assert result.returncode == 0 and result.stdout.strip(), result.stderr
    assert secrets.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "3601"])
def test_stop_timeout_must_be_a_sane_number(tmp_path: Path, value: str) -> None:
    result = airpods(tmp_path, "stop", "--timeout", value, PATH=str(tmp_path / "empty-bin"))
    err = one_line(result)
    assert "--timeout" in err and "from 0 to 3600" in err
    assert "podman" not in err.lower()
    assert not (tmp_path / "xdg-run").exists()  # Podman was never looked for


def test_ipv6_host_ip_is_bracketed_in_podman_args_and_urls(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[services.llamacpp]\nports = [{ host = 8080, container = 8080, '
                    'host_ip = "::1" }]\n')
    result = airpods(tmp_path, "start", "llamacpp", "--dry-run", "--json", config=path)
    assert result.returncode == 0, result.stderr
    [spec] = json.loads(result.stdout)["services"]
    [pod_line] = [line for line in spec["podman"] if line.startswith("podman pod create")]
    pod_args = shlex.split(pod_line)
    assert pod_args[pod_args.index("-p") + 1] == "[::1]:8080:8080"
    assert spec["health_url"].startswith("http://[::1]:8080/"), spec["health_url"]


@pytest.mark.parametrize("command", [("status",), ("start", "--dry-run"), ("stop",)])
def test_commands_that_use_the_cache_refuse_a_fifo_config_too(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    # The resolved-services cache hashes the user file before the loader runs: it must use
    # the same guarded reader, or these commands would block on the FIFO.
    path = _fifo(tmp_path / "config.toml")
    err = one_line(airpods(tmp_path, *command, config=path))
    assert f"config error: {path}: is a named pipe (FIFO)" in err, err
