"""`airpods --help` and `--version` stay instant: no podman-py, pydantic, jinja2, httpx, tomlkit."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("podman", "pydantic", "jinja2", "httpx", "tomlkit", "rich")


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["start", "--help"],
                                  ["config", "--help"]])
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "airpods", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "airpods" in imported  # the measurement itself works
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
