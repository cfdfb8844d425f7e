"""nvidia-smi is looked up on PATH as shutil.which does, skipping entries that mean the cwd."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from airpods.gpu_probe import _on_path


def test_on_path_finds_what_which_finds_and_skips_the_cwd(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    bins = [tmp_path / name for name in ("a", "b", "c")]
    for directory in bins:
        directory.mkdir()
    (bins[0] / "tool").write_text("")  # not executable
    (bins[1] / "tool").mkdir()  # a directory
    (bins[2] / "tool").write_text("#!/bin/sh\n")
    (bins[2] / "tool").chmod(0o755)
    path = os.pathsep.join(str(d) for d in bins)
    monkeypatch.setenv("PATH", path)
    assert _on_path("tool") == shutil.which("tool") == str(bins[2] / "tool")
    assert _on_path("missing") is None
    monkeypatch.chdir(bins[2])
    monkeypatch.setenv("PATH", os.pathsep.join(["", ".", str(bins[0])]))
    assert _on_path("tool") is None  # shutil.which would run ./tool
