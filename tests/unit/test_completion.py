"""Shell completion (click's), as the README documents it for bash, zsh and fish."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def complete(shell_mode: str, **env: str) -> str:
    result = subprocess.run([sys.executable, "-m", "airpods"],
                            env={**os.environ, "_AIRPODS_COMPLETE": shell_mode, **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("shell,marker", [("bash", "complete -o nosort -F _airpods_completion"),
                                          ("zsh", "#compdef airpods"),
                                          ("fish", "complete --no-files --command airpods")])
def test_source_scripts(shell: str, marker: str) -> None:
    assert marker in complete(f"{shell}_source")


def test_completes_commands_and_options() -> None:
    assert "plain,export" in complete("bash_complete", COMP_WORDS="airpods ex", COMP_CWORD="1")
    words = complete("bash_complete", COMP_WORDS="airpods export ", COMP_CWORD="2").split()
    assert words == ["plain,kube", "plain,quadlet"]
    options = complete("bash_complete", COMP_WORDS="airpods doctor --", COMP_CWORD="2")
    assert "plain,--json" in options.split()
