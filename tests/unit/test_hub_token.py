"""The token file's place is huggingface_hub's, and no token anywhere means no hub import."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from airpods.models import hub

CASES = [
    {},
    {"XDG_CACHE_HOME": "/x/cache"},
    {"HF_HOME": "/x/hf"},
    {"HF_HOME": "~/hf-home", "XDG_CACHE_HOME": "/ignored"},
    {"HF_TOKEN_PATH": "/x/tok"},
    {"HF_TOKEN_PATH": "$HOME/t", "HF_HOME": "/x/hf"},
]


@pytest.mark.parametrize("env", CASES)
def test_token_path_is_huggingface_hubs(env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    for name in ("XDG_CACHE_HOME", "HF_HOME", "HF_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import huggingface_hub.constants as constants

    importlib.reload(constants)  # it reads the environment at import
    try:
        assert hub.token_path() == constants.HF_TOKEN_PATH
    finally:
        monkeypatch.undo()
        importlib.reload(constants)


def run_token(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", **extra}
    code = ("import sys; from airpods.models.hub import _token; "
            "print(repr(_token()), 'huggingface_hub' in sys.modules)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60)


def test_no_token_is_none_without_importing_huggingface_hub(tmp_path: Path) -> None:
    assert run_token(tmp_path).stdout.split() == ["None", "False"]


def test_a_token_file_is_read_by_huggingface_hub(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "token").write_text("hf_abc\n")
    assert run_token(tmp_path, HF_HOME=str(tmp_path / "hf")).stdout.split() == ["'hf_abc'",
                                                                               "True"]
