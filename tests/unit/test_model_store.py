"""The model store: names refused before anything is touched, disk full on a real tmpfs, usage
records and cleanup with aged records."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airpods.errors import AirpodsError, UsageError
from airpods.hub.client import Hub
from airpods.models import store
from airpods.models.pull import pull
from airpods.models.store import add_model, check_name, list_models, model_path
from airpods.models.usage import UsageDB, Use, iso, parse_metrics, unused
from tests.tiny_model import write_tiny_gguf

BAD_NAMES = ["", ".", "..", "../x.gguf", "a/../../x.gguf", "/etc/x.gguf", "a//b.gguf",
             "x" * 252 + ".gguf", ".hidden.gguf", "model.bin", "a\nb.gguf", " x.gguf",
             "x.gguf.partial", "dir\\x.gguf"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError):
        check_name(name)


def test_good_names() -> None:
    for name in ("m.gguf", "qwen2.5-0.5b-instruct-q4_k_m.gguf", "sub/m.gguf", "x" * 250 + ".gguf"):
        assert check_name(name) == name


def test_symlink_out_of_the_volume_is_refused(tmp_path: Path) -> None:
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol/out").symlink_to(tmp_path)
    with pytest.raises(UsageError, match="outside the model volume"):
        model_path(tmp_path / "vol", "out/x.gguf")


@pytest.mark.parametrize("name", ["", ".", "..", "../escape.gguf", "x" * 300 + ".gguf"])
def test_import_bad_name_fails_before_podman_is_touched(tmp_path: Path, name: str) -> None:
    model = write_tiny_gguf(tmp_path / "m.gguf")
    env = {k: v for k, v in os.environ.items() if k != "CONTAINER_HOST"}
    env.update(PATH=str(tmp_path / "empty-bin"), XDG_RUNTIME_DIR=str(tmp_path / "run"),
               XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    for cmd in ("import", "add"):
        result = subprocess.run([sys.executable, "-m", "airpods", "models", cmd, str(model),
                                 "--name", name], env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("airpods: model name"), line
        assert not (tmp_path / "run").exists() and not (tmp_path / "data").exists()


def test_pull_bad_ref_fails_before_podman_is_touched(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CONTAINER_HOST"}
    env.update(PATH=str(tmp_path / "empty-bin"), XDG_RUNTIME_DIR=str(tmp_path / "run"),
               XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"))
    for args in (["org/repo/README.md"], ["org"], ["org/repo:Q4_K_M", "--name", "../x.gguf"]):
        result = subprocess.run([sys.executable, "-m", "airpods", "models", "pull", *args],
                                env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "run").exists()


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A real 1 MB file system: writing more fails with ENOSPC."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def _big_gguf(path: Path, size: int) -> Path:
    from tests.hf_server import write_gguf_blob

    return write_gguf_blob(path, size)


def test_import_disk_full_is_refused_up_front(tmpfs: Path, tmp_path: Path) -> None:
    big = _big_gguf(tmp_path / "big.gguf", 2 << 20)
    with pytest.raises(AirpodsError, match="not enough disk space for big.gguf"):
        add_model(big, tmpfs, "big.gguf")
    assert list(tmpfs.iterdir()) == []


def test_import_disk_full_mid_copy_leaves_nothing(tmpfs: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    big = _big_gguf(tmp_path / "big.gguf", 2 << 20)
    monkeypatch.setattr(store, "free_bytes", lambda root: 1 << 40)  # get past the pre-check
    with pytest.raises(AirpodsError, match="disk full while writing big.gguf.*partial file was "
                                           "removed") as err:
        add_model(big, tmpfs, "big.gguf")
    assert "\n" not in err.value.one_line()
    assert list(tmpfs.iterdir()) == []


def test_pull_disk_full_mid_file_leaves_nothing(tmpfs: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.hf_server import FakeHub

    big = _big_gguf(tmp_path / "big.gguf", 3 << 20)
    monkeypatch.setattr(store, "free_bytes", lambda root: 1 << 40)
    with FakeHub() as hub:
        hub.add("o/r", "big-Q8_0.gguf", big)
        with pytest.raises(AirpodsError, match="disk full while writing big-Q8_0.gguf"):
            pull("o/r:Q8_0", tmpfs, hub=Hub(endpoint=hub.url, token=""))
    assert list(tmpfs.iterdir()) == []


def test_pull_refused_up_front_when_space_is_short(tmpfs: Path, tmp_path: Path) -> None:
    from tests.hf_server import FakeHub

    big = _big_gguf(tmp_path / "big.gguf", 3 << 20)
    with FakeHub() as hub:
        hub.add("o/r", "big-Q8_0.gguf", big)
        with pytest.raises(AirpodsError, match="not enough disk space"):
            pull("o/r:Q8_0", tmpfs, hub=Hub(endpoint=hub.url, token=""))
        assert hub.gets("big-Q8_0.gguf") == []  # not a byte was asked for
    assert list(tmpfs.iterdir()) == []


def test_partial_and_hidden_files_are_not_models(tmp_path: Path) -> None:
    (tmp_path / "a.gguf").write_bytes(b"GGUF")
    (tmp_path / "b.gguf.partial").write_bytes(b"GGUF")
    (tmp_path / ".c.gguf").write_bytes(b"GGUF")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/d.gguf").write_bytes(b"GGUF")
    assert [m.name for m in list_models(tmp_path)] == ["a.gguf", "sub/d.gguf"]


DAY = 86400.0


def test_usage_and_cleanup_with_aged_records(tmp_path: Path) -> None:
    db = UsageDB(tmp_path / "usage.sqlite3")
    now = time.time()
    assert db.record("start", [Use("vol", "old.gguf", "llamacpp")], at=now - 45 * DAY)
    assert db.record("stop", [Use("vol", "old.gguf", "llamacpp")], at=now - 40 * DAY,
                     tokens={"llamacpp": (120, 30)})
    db.record("start", [Use("vol", "recent.gguf", "llamacpp")], at=now - 2 * DAY)
    db.record("start", [Use("vol", "running.gguf", "llamacpp")], at=now - 90 * DAY)
    db.record("pull", [Use("vol", "pulled.gguf", "")], at=now - 1 * DAY)  # not a use
    db.record("start", [Use("other", "old.gguf", "x")], at=now)  # another volume
    last = db.last_used("vol")
    assert last == {"old.gguf": pytest.approx(now - 40 * DAY),
                    "recent.gguf": pytest.approx(now - 2 * DAY),
                    "running.gguf": pytest.approx(now - 90 * DAY)}
    assert db.tokens("vol", "old.gguf") == (120, 30)
    models = [("old.gguf", 10), ("recent.gguf", 20), ("running.gguf", 30), ("pulled.gguf", 40),
              ("never.gguf", 50)]
    found = unused(models, last, 30, in_use={"running.gguf"}, now=now)
    assert [(c.name, c.size) for c in found] == [("old.gguf", 10), ("pulled.gguf", 40),
                                                 ("never.gguf", 50)]
    assert [c.name for c in unused(models, last, 50, set(), now=now)] == [
        "running.gguf", "pulled.gguf", "never.gguf"]
    db.forget("vol", "old.gguf")
    assert "old.gguf" not in db.last_used("vol")
    assert iso(0) == "1970-01-01T00:00:00+00:00" and iso(None) is None


def test_unusable_database_never_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    db = UsageDB(blocker / "usage.sqlite3")  # its parent is a file
    assert db.record("start", [Use("v", "m.gguf", "s")]) is False
    assert db.last_used("v") == {}


def test_parse_metrics() -> None:
    text = ("# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n"
            "# TYPE llamacpp:prompt_tokens_total counter\n"
            "llamacpp:prompt_tokens_total 1234\n"
            "llamacpp:tokens_predicted_total 56\n")
    assert parse_metrics(text) == (1234, 56)
    assert parse_metrics("nothing here 1\n") is None
