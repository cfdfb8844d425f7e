"""Every number the CLI takes is one shared type (airpods.cli.params.Number): nan, inf, 1e400,
negatives and out-of-range values are one line and exit 2, before Podman is looked for."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from airpods.cli.params import Number
from tests.unit.test_bad_files import airpods, one_line

BAD = ["-1", "nan", "1e400", "inf", "-inf", "abc", ""]
COMMANDS = [
    ("models", "load", "m", "--timeout"),
    ("models", "unload", "m", "--timeout"),
    ("stop", "--timeout"),
    ("models", "cleanup", "--days"),
    ("logs", "llamacpp", "--tail"),
]


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_a_bad_number_is_a_usage_error_before_podman(tmp_path: Path, command, value) -> None:
    result = airpods(tmp_path, *command, value, PATH=str(tmp_path / "no-podman-here"))
    line = one_line(result, 2)
    assert f"{command[-1]} {value}: must be a" in line
    assert "podman" not in line.lower()
    assert not (tmp_path / "xdg-run").exists()  # Podman was never looked for


def test_number_type_accepts_what_is_in_range() -> None:
    assert Number(0, 10, "s").convert("2.5", None, None) == 2.5
    assert Number(0, 10, "s").convert(" 10 ", None, None) == 10.0
    assert Number(0, 10, "lines", integer=True).convert("7", None, None) == 7
    from airpods.errors import UsageError

    with pytest.raises(UsageError, match="whole number"):
        Number(0, 10, "lines", integer=True).convert("2.5", None, None)


def _walk(command: click.Command, path: str = "airpods"):
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            yield from _walk(command.get_command(click.Context(command), name), f"{path} {name}")
    for param in command.params:
        yield path, param


def test_every_number_option_uses_the_shared_type() -> None:
    from airpods.cli import cli

    click_numbers = (click.types.FloatParamType, click.types.IntParamType)
    found = [(path, p.name) for path, p in _walk(cli) if isinstance(p.type, click_numbers)]
    assert found == [], f"use airpods.cli.params.Number for {found}"
    assert any(isinstance(p.type, Number) for _, p in _walk(cli))


def test_every_command_prints_its_help() -> None:
    """--help renders every option's metavar, the shared Number type's included."""
    from click.testing import CliRunner

    from airpods.cli import cli

    paths = sorted({path for path, _ in _walk(cli)})
    assert "airpods usage" in paths and "airpods models recommend" in paths
    for path in paths:
        result = CliRunner().invoke(cli, [*path.split()[1:], "--help"])
        assert result.exit_code == 0, f"{path} --help: {result.output}{result.exception!r}"
        assert "Usage:" in result.output
