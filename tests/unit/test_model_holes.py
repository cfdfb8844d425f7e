"""The models commands' file-system holes, through the real CLI: a FIFO to import, a name with a
sub-folder, symlinks that lead out of the model volume (info, cleanup).

The model volume is a bind mount (an absolute path) and PATH has no podman, so nothing here can
reach or start Podman; `cleanup` asks Podman what runs, so it runs in-process with an adapter
that answers "nothing runs" (tests/fake_podman.py).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.fake_podman import use_fake_podman
from tests.tiny_model import write_tiny_gguf
from tests.unit.test_bad_files import airpods, one_line


def run(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return airpods(tmp_path, *args, config=config, PATH=str(tmp_path / "no-podman-here"))


def test_import_refuses_a_fifo_without_hanging(tmp_path: Path, volume) -> None:
    config, vol = volume
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    began = time.monotonic()
    line = one_line(run(tmp_path, config, "models", "import", str(fifo)))
    assert time.monotonic() - began < 20
    assert "named pipe (FIFO)" in line and str(fifo) in line
    assert sorted(p.name for p in vol.iterdir()) == ["good.gguf"]


@pytest.mark.parametrize("name", ["sub/x.gguf", "../x.gguf", "a/b/c.gguf"])
def test_import_name_with_a_folder_is_refused(tmp_path: Path, volume, name: str) -> None:
    config, vol = volume
    src = write_tiny_gguf(tmp_path / "m.gguf")
    line = one_line(run(tmp_path, config, "models", "import", str(src), "--name", name))
    assert line.startswith("airpods: model name")
    assert sorted(p.name for p in vol.iterdir()) == ["good.gguf"]
    assert not (tmp_path / "x.gguf").exists()


def test_pull_name_with_a_folder_is_refused_before_anything(tmp_path: Path, volume) -> None:
    config, _ = volume
    line = one_line(run(tmp_path, config, "models", "pull", "org/repo:Q4_K_M", "--name",
                        "sub/x.gguf"))
    assert "sub-folder" in line


def test_info_refuses_a_symlink_out_of_the_volume(tmp_path: Path, volume) -> None:
    config, vol = volume
    outside = write_tiny_gguf(tmp_path / "secret.gguf")
    (vol / "link.gguf").symlink_to(outside)
    (vol / "dir").symlink_to(tmp_path)
    for name in ("link.gguf", "dir/secret.gguf"):
        line = one_line(run(tmp_path, config, "models", "info", name))
        assert "outside the model volume" in line
    inside = run(tmp_path, config, "models", "info", "good.gguf")
    assert inside.returncode == 0, inside.stderr


def test_cleanup_checks_everything_first_and_skips_a_symlink_out(
    tmp_path: Path, volume, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airpods.cli import cli

    config, vol = volume
    for key, value in {"XDG_CONFIG_HOME": "cfg", "XDG_DATA_HOME": "data",
                       "XDG_CACHE_HOME": "cache"}.items():
        monkeypatch.setenv(key, str(tmp_path / value))
    monkeypatch.setenv("AIRPODS_ACCELERATOR", "cpu")
    use_fake_podman(monkeypatch)
    outside = write_tiny_gguf(tmp_path / "keep-me.gguf")
    write_tiny_gguf(vol / "a-old.gguf")
    (vol / "b-link.gguf").symlink_to(outside)  # sorts between the two deletable files
    write_tiny_gguf(vol / "c-old.gguf")
    result = CliRunner().invoke(cli, ["--config", str(config), "models", "cleanup", "--days",
                                      "0", "--yes"])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.stderr and "b-link.gguf" in result.stderr
    assert "deleted" in result.stdout and "c-old.gguf" in result.stdout
    # Both plain files went (the run did not stop at the link); the link and its target stay.
    assert sorted(p.name for p in vol.iterdir()) == ["b-link.gguf"]
    assert outside.exists()
