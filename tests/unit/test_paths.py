"""airpods' own directories (paths.user_dir) are platformdirs' answer, without its import."""

from __future__ import annotations

import subprocess
import sys

import platformdirs
import pytest

from airpods.paths import user_config_path, user_dir

CASES = [
    {},  # nothing set: HOME's defaults
    {"XDG_CONFIG_HOME": "/x/conf", "XDG_DATA_HOME": "/x/data", "XDG_CACHE_HOME": "/x/cache"},
    {"XDG_CONFIG_HOME": "/x/conf/", "XDG_DATA_HOME": "/x//data", "XDG_CACHE_HOME": "/"},
    {"XDG_CONFIG_HOME": "relative", "XDG_DATA_HOME": "", "XDG_CACHE_HOME": "./c"},  # ignored
    {"HOME": "/"},
    {"HOME": "/home/someone/"},
    {"HOME": "relative/home"},  # platformdirs then asks the password database
    {"HOME": ""},
]


@pytest.mark.parametrize("env", CASES)
@pytest.mark.parametrize("which", ["config", "data", "cache"])
def test_user_dir_is_platformdirs_answer(env: dict[str, str], which: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", "/home/tester")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    expected = getattr(platformdirs, f"user_{which}_path")("airpods")
    assert user_dir(which) == expected


def test_status_paths_do_not_import_platformdirs(tmp_path) -> None:
    code = ("import sys; from airpods.paths import user_config_path, user_dir; "
            "user_config_path(); user_dir('cache'); user_dir('data'); "
            "print('platformdirs' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert run.stdout.strip() == "False", run.stderr
    assert user_config_path().name == "config.toml"
