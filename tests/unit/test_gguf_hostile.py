"""GGUF headers are untrusted input: hostile files built byte by byte, through the real CLI.

Each file is written here with `struct`, so every length, count and type is exactly what the
test says. The model volume is a bind mount (an absolute path), so `models list/info/import`
need no Podman: a hang is a subprocess timeout, a crash a traceback on stderr.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from airpods.errors import UsageError
from airpods.gguf_meta import escape, read_meta, validate
from tests.tiny_model import write_tiny_gguf
from tests.unit.test_bad_files import airpods, one_line

U32, U64, STRING, ARRAY = 4, 10, 8, 9


def s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def kv(key: str, type_id: int, payload: bytes) -> bytes:
    return s(key) + struct.pack("<I", type_id) + payload


def u32(key: str, value: int) -> bytes:
    return kv(key, U32, struct.pack("<I", value))


def u64(key: str, value: int) -> bytes:
    return kv(key, U64, struct.pack("<Q", value))


def text(key: str, value: str | bytes) -> bytes:
    return kv(key, STRING, s(value))


def gguf(*kvs: bytes, version: int = 3, tensors: bytes = b"", n_tensors: int = 0,
         n_kv: int | None = None) -> bytes:
    head = b"GGUF" + struct.pack("<IQQ", version, n_tensors, len(kvs) if n_kv is None else n_kv)
    return head + b"".join(kvs) + tensors


def tensor(name: str, shape: tuple[int, ...], type_id: int = 0) -> bytes:
    dims = b"".join(struct.pack("<Q", d) for d in shape)
    return s(name) + struct.pack("<I", len(shape)) + dims + struct.pack("<IQ", type_id, 0)


def nested(depth: int) -> bytes:
    """One key whose value is an array of an array of ... `depth` deep (12 bytes a level)."""
    return kv("deep", ARRAY, struct.pack("<IQ", ARRAY, 1) * (depth - 1) + struct.pack("<IQ", 4, 0))


LLAMA = (text("general.architecture", "llama"),)
HOSTILE = {
    "deep-nesting": gguf(*LLAMA, nested(100_000)),  # 1.2 MB, as the hostile pass found
    "truncated": gguf(*LLAMA, n_kv=3),
    "count-2^63": gguf(*LLAMA, n_kv=1 << 63),
    "tensor-count-2^63": gguf(*LLAMA, n_tensors=1 << 63),
    "version-99": gguf(*LLAMA, version=99),
    "version-1": gguf(*LLAMA, version=1),
    "unknown-value-type": gguf(*LLAMA, kv("x", 77, b"\0" * 8)),
    "unknown-array-type": gguf(*LLAMA, kv("x", ARRAY, struct.pack("<IQ", 77, 1))),
    "array-2^63": gguf(*LLAMA, kv("x", ARRAY, struct.pack("<IQ", U32, 1 << 63))),
    "string-2^63": gguf(*LLAMA, kv("x", STRING, struct.pack("<Q", 1 << 63))),
    "key-2^63": gguf(struct.pack("<Q", 1 << 63)),
    "dims-2^63": gguf(*LLAMA, tensors=tensor("w", (1 << 63, 2)), n_tensors=1),
    "ten-dims": gguf(*LLAMA, tensors=tensor("w", (1,) * 10), n_tensors=1),
    "block-count-2^64": gguf(*LLAMA, u64("llama.block_count", (1 << 64) - 1)),
    "context-2^64": gguf(*LLAMA, u64("llama.context_length", (1 << 64) - 2)),
    "heads-2^63": gguf(*LLAMA, u64("llama.attention.head_count", 1 << 63)),
    "split-count-0": gguf(*LLAMA, kv("split.count", 2, struct.pack("<H", 0))),
    # 300 keys of 4096 one-byte values: small on disk, 1.2 M Python objects if all were kept.
    "many-short-arrays": gguf(*LLAMA, *(kv(f"k{i}", ARRAY, struct.pack("<IQ", 0, 4096)
                                           + b"\0" * 4096) for i in range(300))),
}




@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_header_is_one_error(tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(HOSTILE[case])
    with pytest.raises(UsageError) as err:
        read_meta(path)
    assert "\n" not in err.value.one_line() and len(err.value.one_line()) < 600


def test_the_deep_file_is_over_a_megabyte_and_read_quickly(tmp_path: Path) -> None:
    import time

    assert len(HOSTILE["deep-nesting"]) > 1_200_000
    path = tmp_path / "deep.gguf"
    path.write_bytes(HOSTILE["deep-nesting"])
    began = time.monotonic()
    with pytest.raises(UsageError, match="nested more than"):
        read_meta(path)
    assert time.monotonic() - began < 1.0  # refused at the cap, not after walking 1.2 MB


def test_listing_shows_damaged_files_and_carries_on(tmp_path: Path, volume) -> None:
    config, vol = volume
    for case in ("deep-nesting", "count-2^63", "block-count-2^64", "version-99"):
        (vol / f"{case}.gguf").write_bytes(HOSTILE[case])
    listed = airpods(tmp_path, "models", "list", config=config)
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr and "internal error" not in listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 5
    assert all("damaged: " in line for line in lines if "good.gguf" not in line)
    [good] = [line for line in lines if "good.gguf" in line]
    assert good.startswith("* good.gguf") and "llama" in good and "damaged" not in good
    data = json.loads(airpods(tmp_path, "models", "list", "--json", config=config).stdout)
    damaged = {m["name"]: m["damaged"] for m in data["models"]}
    assert damaged["good.gguf"] is None
    assert "nested more than" in damaged["deep-nesting.gguf"]
    assert "implausible llama.block_count" in damaged["block-count-2^64.gguf"]


@pytest.mark.parametrize("case", ["deep-nesting", "block-count-2^64", "context-2^64",
                                  "dims-2^63"])
def test_info_on_a_damaged_file_says_so_and_never_fits(tmp_path: Path, volume, case) -> None:
    config, vol = volume
    (vol / "bad.gguf").write_bytes(HOSTILE[case])
    shown = airpods(tmp_path, "models", "info", "bad.gguf", config=config)
    assert shown.returncode == 1, shown.stderr
    assert "Traceback" not in shown.stderr
    assert "damaged:" in shown.stdout and "fits:" not in shown.stdout
    data = json.loads(airpods(tmp_path, "models", "info", "bad.gguf", "--json",
                              config=config).stdout)
    assert data["damaged"] and data["fits"] is None and data["memory"] is None


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_import_refuses_a_hostile_header_in_one_line(tmp_path: Path, volume, case) -> None:
    config, vol = volume
    src = tmp_path / "src.gguf"
    src.write_bytes(HOSTILE[case])
    before = sorted(p.name for p in vol.iterdir())
    line = one_line(airpods(tmp_path, "models", "import", str(src), config=config))
    assert str(src) in line
    assert sorted(p.name for p in vol.iterdir()) == before


def test_import_refuses_a_file_cut_in_its_tensor_data(tmp_path: Path, volume) -> None:
    config, vol = volume
    whole = write_tiny_gguf(tmp_path / "whole.gguf").read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole[:-100])  # the header reads, the data is short
    line = one_line(airpods(tmp_path, "models", "import", str(cut), config=config))
    assert "truncated" in line
    assert not (vol / "cut.gguf").exists()
    with pytest.raises(UsageError, match="unknown tensor type 99"):
        bad = tmp_path / "type.gguf"
        bad.write_bytes(gguf(*LLAMA, tensors=tensor("w", (4,), 99), n_tensors=1) + b"\0" * 64)
        validate(bad)


def test_import_takes_a_good_file(tmp_path: Path, volume) -> None:
    config, vol = volume
    src = write_tiny_gguf(tmp_path / "fine.gguf")
    # A bind-mounted volume: `import` writes into the directory itself, no Podman needed.
    done = airpods(tmp_path, "models", "import", str(src), config=config)
    assert done.returncode == 0, done.stderr
    assert (vol / "fine.gguf").read_bytes() == src.read_bytes()


def test_control_characters_in_metadata_are_escaped(tmp_path: Path, volume) -> None:
    config, vol = volume
    evil = gguf(text("general.architecture", "ll\x1b[2Jama\n\rx"),
                text("general.name", "\x1b]0;pwned\x07"))
    (vol / "evil.gguf").write_bytes(evil)
    listed = airpods(tmp_path, "models", "list", config=config)
    shown = airpods(tmp_path, "models", "info", "evil.gguf", config=config)
    for out in (listed.stdout, shown.stdout):
        assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert "ll\\x1b[2Jama\\n\\rx" in shown.stdout
    assert len(listed.stdout.splitlines()) == 2
    assert escape("plain é") == "plain é"


def test_doctor_fit_check_calls_a_hostile_file_damaged(tmp_path: Path) -> None:
    from airpods.cli.doctor import fit_check
    from airpods.host import detect_host

    path = tmp_path / "deep.gguf"
    path.write_bytes(HOSTILE["deep-nesting"])

    class Spec:  # fit_check reads nothing from the spec before the header fails
        pass

    check = fit_check("llamacpp", Spec(), path, detect_host())  # type: ignore[arg-type]
    assert check.status == "warn" and check.found.startswith("damaged: ")
    assert "nested more than" in check.found
