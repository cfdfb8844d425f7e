"""Editing the user file: comments kept, validation before writing, atomic replacement."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
import tomlkit

from airpods.config.edit import STARTER, atomic_write, init, set_value
from airpods.config.loader import load_config_text
from airpods.errors import AirpodsError, ConfigError, UsageError
from airpods.host import HostFacts

CPU = HostFacts(accelerator="cpu", reason="test", physical_cores=4, logical_cores=8)

COMMENTED = """\
# My airpods settings: keep this comment.

[services.llamacpp]
default_model = "mine.gguf"  # the model I like

[services.llamacpp.command_args]
# bigger context for long chats
ctx_size = 4096  # trailing comment
"""


def check(path: Path, text: str) -> None:
    load_config_text(path, text, host=CPU, environ={})


def set_(path: Path, key: str, value: str) -> object:
    return set_value(path, key, value, validate=check)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("8192", 8192),
        ("true", True),
        ("1.5", 1.5),
        ("[1, 2]", [1, 2]),
        ('"8080"', "8080"),
        ("plain words", "plain words"),
        ("/models/x.gguf", "/models/x.gguf"),
        ("{ enabled = false }", {"enabled": False}),
        ("1\nother = 2", "1\nother = 2"),  # a smuggled second key stays literal text
    ],
)
def test_cli_values_parse_as_toml_or_text(tmp_path: Path, raw: str, value: object) -> None:
    path = tmp_path / "config.toml"
    assert set_value(path, "cli.extra", raw, validate=lambda *_: None) == (("cli", "extra"), value)
    assert tomlkit.parse(path.read_text()).unwrap()["cli"]["extra"] == value


def test_set_keeps_comments_and_changes_the_value(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(COMMENTED)
    parts, value = set_(path, "services.llamacpp.command_args.ctx_size", "8192")  # type: ignore[misc]
    assert (parts, value) == (("services", "llamacpp", "command_args", "ctx_size"), 8192)
    text = path.read_text()
    assert "ctx_size = 8192  # trailing comment" in text
    for comment in (
        "# My airpods settings: keep this comment.",
        "# the model I like",
        "# bigger context for long chats",
    ):
        assert comment in text
    assert text.replace("8192", "4096") == COMMENTED  # nothing else moved
    assert (
        load_config_text(path, text, host=CPU, environ={})
        .config.services["llamacpp"]
        .command_args["ctx_size"]
        == 8192
    )


def test_set_adds_new_keys_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(COMMENTED)
    set_(path, "services.llamacpp.enabled", "false")
    set_(path, "services.ollama.enabled", "true")
    set_(path, "cli.max_concurrent_pulls", "5")
    loaded = load_config_text(path, path.read_text(), host=CPU, environ={})
    assert loaded.config.services["ollama"].enabled
    assert not loaded.config.services["llamacpp"].enabled
    assert loaded.config.cli.max_concurrent_pulls == 5
    assert "# the model I like" in path.read_text()


def test_set_creates_a_minimal_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "config.toml"
    set_(path, "services.llamacpp.command_args.ctx_size", "8192")
    assert path.read_text() == "[services.llamacpp.command_args]\nctx_size = 8192\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it may hold API keys


def test_invalid_value_leaves_the_file_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(COMMENTED.encode())
    before = path.stat().st_mtime_ns
    with pytest.raises(ConfigError) as info:
        set_(path, "services.llamacpp.ports", "[{ host = 70000, container = 8080 }]")
    assert info.value.key_path == "services.llamacpp.ports[0].host"
    assert path.read_bytes() == COMMENTED.encode()
    assert path.stat().st_mtime_ns == before
    assert leftovers(tmp_path) == []


def test_invalid_value_does_not_create_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    with pytest.raises(ConfigError):
        set_(path, "services.llamacpp.enabled", "maybe")
    assert not path.exists()


def test_set_refuses_list_items_and_keys_under_values(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(COMMENTED)
    with pytest.raises(UsageError, match="one item of a list"):
        set_(path, "services.llamacpp.ports[0].host", "9000")
    with pytest.raises(UsageError, match="is a value, not a table"):
        set_(path, "services.llamacpp.default_model.x", "1")
    with pytest.raises(UsageError, match="bad key"):
        set_(path, "services..x", "1")
    assert path.read_text() == COMMENTED


def test_set_on_a_broken_file_reports_its_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[cli]\nmax_concurrent_pulls = \n")
    with pytest.raises(ConfigError) as info:
        set_(path, "cli.max_concurrent_pulls", "2")
    assert info.value.line == 2


def test_failed_replace_keeps_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(COMMENTED)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(AirpodsError, match="No space left on device"):
        set_(path, "services.llamacpp.command_args.ctx_size", "8192")
    assert path.read_text() == COMMENTED
    assert leftovers(tmp_path) == []


def test_failed_write_keeps_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(COMMENTED)

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(AirpodsError, match="Input/output error"):
        atomic_write(path, "half")
    assert path.read_text() == COMMENTED
    assert leftovers(tmp_path) == []


def test_atomic_write_keeps_mode_and_follows_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    atomic_write(link, "new\n")
    assert link.is_symlink()
    assert real.read_text() == "new\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


def test_init_writes_a_valid_starter_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "airpods" / "config.toml"
    assert init(path) == path
    assert path.read_text() == STARTER
    check(path, path.read_text())
    path.write_text("# mine\n")
    with pytest.raises(UsageError, match="already exists"):
        init(path)
    assert path.read_text() == "# mine\n"
    init(path, force=True)
    assert path.read_text() == STARTER


def test_starter_examples_are_valid_when_uncommented(tmp_path: Path) -> None:
    # Every example line, uncommented at once, must still be a valid config.
    body = STARTER.split("Uncomment and edit the examples you need.", 1)[1]
    lines = []
    for line in body.splitlines():
        example = re.match(r"# (\[.*\]|[a-z_]+ = .*)$", line)
        lines.append(example.group(1) if example else "")
    text = "\n".join(lines) + "\n"
    loaded = load_config_text(tmp_path / "c.toml", text, host=CPU, environ={})
    assert loaded.config.services["llamacpp"].command_args["ctx_size"] == 8192
    assert "llamacpp-large" in loaded.config.enabled_services()
    assert loaded.config.runtime.accelerator == "cpu"


def test_atomic_write_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"named pipe \(FIFO\), not a regular file"):
        atomic_write(fifo, "x = 1\n")
    with pytest.raises(ConfigError, match="a directory, not a regular file"):
        atomic_write(tmp_path, "x = 1\n")
    link = tmp_path / "link"
    link.symlink_to(fifo)  # a symlink is followed to what it names, and that is checked
    with pytest.raises(ConfigError, match="named pipe"):
        atomic_write(link, "x = 1\n")
    assert stat.S_ISFIFO(fifo.stat().st_mode) and link.is_symlink()
    assert leftovers(tmp_path) == []


def test_an_error_a_set_causes_elsewhere_is_blamed_on_the_set(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(COMMENTED)

    def breaks_a_default(_path: Path, _text: str) -> None:
        raise ConfigError("boom", file="/defaults.toml", key_path="services.x.y", line=98)

    with pytest.raises(ConfigError) as err:
        set_value(path, "cli.failure_log_lines", "3", validate=breaks_a_default)
    line = err.value.one_line()
    assert line.startswith(f"config error: {path}: cli.failure_log_lines: setting it to '3' ")
    assert "breaks /defaults.toml:98: services.x.y: boom" in line
    assert path.read_text() == COMMENTED


def test_setting_a_table_to_a_value_is_refused_at_that_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    with pytest.raises(ConfigError) as err:
        set_(path, "services.llamacpp.command_args", "5")
    assert err.value.key_path == "services.llamacpp.command_args"
    assert err.value.file == str(path) and "is a table" in err.value.message
    assert not path.exists()
    set_(path, "services.llamacpp.gpu", "{ enabled = false }")  # a table may replace a table
    assert "enabled = false" in path.read_text()
