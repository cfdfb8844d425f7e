"""`airpods --help` and `--version` answered without click print exactly what click prints."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from airpods import __version__
from airpods.cli import _COMMANDS, DESCRIPTION, OPTION_ROWS, cli
from airpods.cli.fast_help import group_help


def click_help(width: int) -> str:
    result = CliRunner().invoke(cli, ["--help"], prog_name="airpods", terminal_width=width)
    assert result.exit_code == 0
    return result.output


@pytest.mark.parametrize("width", [78, 60, 50])
def test_fast_help_is_clicks_help(width: int) -> None:
    rows = [(name, _COMMANDS[name][2]) for name in sorted(_COMMANDS)]
    fast = group_help("airpods", DESCRIPTION, OPTION_ROWS, rows, width=width) + "\n"
    assert fast == click_help(width)


def test_long_command_help_wraps_as_click_wraps(monkeypatch: pytest.MonkeyPatch) -> None:
    # A command added later with a long help line, or a long name, still lays out the same.
    monkeypatch.setitem(_COMMANDS, "a-rather-long-command-name-here", (
        "airpods.cli.status", "status",
        "A help text long enough to wrap onto a second line, and then onto a third one too."))
    rows = [(name, _COMMANDS[name][2]) for name in sorted(_COMMANDS)]
    assert group_help("airpods", DESCRIPTION, OPTION_ROWS, rows, width=78) + "\n" == \
        click_help(78)


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--version"]])
def test_the_real_command_prints_clicks_text_without_importing_click(args: list[str]) -> None:
    env = {"COLUMNS": "80", "PATH": "/usr/bin:/bin"}
    fast = subprocess.run([sys.executable, "-X", "importtime", "-m", "airpods", *args],
                          capture_output=True, text=True, timeout=60, env=env)
    assert fast.returncode == 0, fast.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in fast.stderr.splitlines()
                if line.startswith("import time:")}
    assert "click" not in imported
    expected = (f"airpods, version {__version__}\n" if args == ["--version"]
                else click_help(78))
    assert fast.stdout == expected
