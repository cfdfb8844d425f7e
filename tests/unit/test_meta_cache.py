"""`models list` remembers GGUF headers by file identity: a changed file is read again, a bad or
foreign cache file is a miss, and the cache never describes a file from another's facts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airpods.models.meta_cache import MetaCache, cached_meta
from airpods.models.services import read_meta_or_why
from tests.tiny_model import write_tiny_gguf


@pytest.fixture
def models(tmp_path: Path) -> Path:
    directory = tmp_path / "vol"
    directory.mkdir()
    write_tiny_gguf(directory / "a.gguf")
    (directory / "bad.gguf").write_bytes(b"GGUF but not really")
    return directory


def saved(models: Path, cache_file: Path) -> Path:
    """`cache_file` as a listing of `models/a.gguf` leaves it."""
    cache = MetaCache(cache_file)
    cached_meta(models / "a.gguf", cache, read_meta_or_why)
    cache.save()
    return cache_file


def read_again(models: Path, cache_file: Path) -> int:
    """How many headers a listing of `models/a.gguf` reads with `cache_file` (checking it got
    the model's facts)."""
    calls: list[Path] = []
    assert cached_meta(models / "a.gguf", MetaCache(cache_file), counting(calls))[0] is not None
    return len(calls)


def counting(calls: list[Path]):
    def read(path: Path):
        calls.append(path)
        return read_meta_or_why(path)
    return read


def test_a_second_listing_reads_no_header(models: Path, tmp_path: Path) -> None:
    cache_file = tmp_path / "cache" / "gguf" / "meta.json"
    calls: list[Path] = []
    first = MetaCache(cache_file)
    got = [cached_meta(models / n, first, counting(calls)) for n in ("a.gguf", "bad.gguf")]
    first.save()
    assert len(calls) == 2 and got[0][0] is not None and got[1][0] is None and got[1][1]
    assert oct(cache_file.stat().st_mode & 0o777) == "0o600"
    assert oct(cache_file.parent.stat().st_mode & 0o777) == "0o700"
    second = MetaCache(cache_file)
    again = [cached_meta(models / n, second, counting(calls)) for n in ("a.gguf", "bad.gguf")]
    assert len(calls) == 2 and again == got  # damaged files are remembered as damaged too


def test_a_changed_or_replaced_file_is_read_again(models: Path, tmp_path: Path) -> None:
    cache_file = tmp_path / "meta.json"
    calls: list[Path] = []
    cache = MetaCache(cache_file)
    good = cached_meta(models / "a.gguf", cache, counting(calls))
    cache.save()
    os.replace(models / "bad.gguf", models / "a.gguf")  # another file under the same name
    cache = MetaCache(cache_file)
    now = cached_meta(models / "a.gguf", cache, counting(calls))
    assert len(calls) == 2 and now[0] is None and good[0] is not None
    write_tiny_gguf(models / "a.gguf")
    os.utime(models / "a.gguf", ns=(1, 1))  # same path, rewritten: the change time moved
    assert cached_meta(models / "a.gguf", MetaCache(cache_file), counting(calls))[0] is not None
    assert len(calls) == 3


@pytest.mark.parametrize("content", [b"", b"not json", b"[]", b'{"format": 99, "entries": {}}',
                                     b'{"format": 1, "entries": {"x": 5}}'])
def test_a_bad_cache_file_is_a_miss(models: Path, tmp_path: Path, content: bytes) -> None:
    cache_file = tmp_path / "c" / "meta.json"
    cache_file.parent.mkdir(mode=0o700)
    cache_file.write_bytes(content)
    cache_file.chmod(0o600)
    assert read_again(models, cache_file) == 1


def test_a_forged_entry_of_the_wrong_shape_is_read_again(models: Path, tmp_path: Path) -> None:
    cache_file = saved(models, tmp_path / "c" / "meta.json")
    assert read_again(models, cache_file) == 0
    data = json.loads(cache_file.read_text())
    for entry in data["entries"].values():
        entry["meta"] = {"architecture": ["not", "a", "str"]}  # fields missing
    cache_file.write_text(json.dumps(data))
    assert read_again(models, cache_file) == 1


def test_links_fifos_and_open_modes_are_not_trusted(models: Path, tmp_path: Path) -> None:
    cache_file = saved(models, tmp_path / "c" / "meta.json")
    cache_file.chmod(0o644)  # readable by others: not airpods' file as it writes it
    assert MetaCache(cache_file).entries == {}
    cache_file.unlink()
    os.mkfifo(cache_file, 0o600)
    assert MetaCache(cache_file).entries == {}  # returns at once: no blocking open
    cache_file.unlink()
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"format": 1, "entries": {}}')
    cache_file.symlink_to(elsewhere)
    assert MetaCache(cache_file).entries == {}
