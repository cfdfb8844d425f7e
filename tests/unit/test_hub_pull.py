"""`models pull` against a loopback hub (tests/hf_server.py): real HTTP, huggingface_hub, GGUFs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airpods.errors import AirpodsError, UsageError
from airpods.hub import refs, retry
from airpods.hub.client import Hub
from airpods.hub.refs import parse_ref, pick_quant, quant_of, split_parts
from airpods.models import transfer
from airpods.models.pull import pull
from airpods.models.store import list_models
from tests.hf_server import FakeHub, write_gguf_blob
from tests.tiny_model import write_tiny_gguf

REPO = "acme/Tiny-GGUF"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "RETRY_WAIT_S", 0.01)


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("src")
    return {
        "q4": write_tiny_gguf(d / "q4.gguf", seed=1),
        "q8": write_tiny_gguf(d / "q8.gguf", seed=2, layers=3),
        "p1": write_tiny_gguf(d / "p1.gguf", seed=3),
        "p2": write_tiny_gguf(d / "p2.gguf", seed=4),
        "big": write_gguf_blob(d / "big.gguf", 6 << 20),
    }


@pytest.fixture(params=[False, True], ids=["direct", "redirect"])
def fake(request: pytest.FixtureRequest, ggufs: dict[str, Path]):
    with FakeHub(redirect=request.param) as hub:
        hub.add(REPO, "tiny-Q4_K_M.gguf", ggufs["q4"])
        hub.add(REPO, "sub/tiny-q8_0.gguf", ggufs["q8"])
        hub.add(REPO, "README.md", ggufs["q4"].with_name("q4.gguf"))
        hub.add("acme/Split-GGUF", "Split-Q4_K_M-00001-of-00002.gguf", ggufs["p1"])
        hub.add("acme/Split-GGUF", "Split-Q4_K_M-00002-of-00002.gguf", ggufs["p2"])
        hub.add("acme/Big-GGUF", "big-Q8_0.gguf", ggufs["big"])
        yield hub


def client(fake: FakeHub) -> Hub:
    return Hub(endpoint=fake.url, token="")


def test_parse_ref_forms() -> None:
    assert parse_ref("acme/Tiny-GGUF/tiny-Q4_K_M.gguf") == refs.Ref(REPO, "tiny-Q4_K_M.gguf")
    assert parse_ref("hf://acme/Tiny-GGUF/sub/x.gguf") == refs.Ref(REPO, "sub/x.gguf")
    assert parse_ref("acme/Tiny-GGUF:q4_k_m") == refs.Ref(REPO, quant="q4_k_m")
    assert parse_ref("hf://acme/Tiny-GGUF:Q8_0") == refs.Ref(REPO, quant="Q8_0")
    assert parse_ref("acme/Tiny-GGUF") == refs.Ref(REPO)  # the quant is picked by fit
    assert parse_ref("hf://acme/Tiny-GGUF") == refs.Ref(REPO)
    for bad in ("acme", "acme/repo/README.md", "acme/repo/../x.gguf",
                "acme/repo:", "a/b/c:d/e.gguf", "hf://", "acme/repo/x\n.gguf",
                "acme/repo/\x1b[31mx.gguf", "acme/repo/sub\\x.gguf", "acme/repo/x\x7f.gguf"):
        with pytest.raises(UsageError):
            parse_ref(bad)


def test_quant_tags_and_parts() -> None:
    assert quant_of("qwen2.5-0.5b-instruct-q4_k_m.gguf") == "Q4_K_M"
    assert quant_of("Meta-Llama-3-8B-Instruct.Q8_0.gguf") == "Q8_0"
    assert quant_of("Qwen2.5-7B-Instruct-Q4_K_M-00001-of-00002.gguf") == "Q4_K_M"
    assert quant_of("x-UD-IQ2_XXS.gguf") == "IQ2_XXS"
    assert quant_of("mmproj-model-f16.gguf") == "F16"
    assert quant_of("model.gguf") is None
    assert split_parts("a/M-Q4-00001-of-00003.gguf") == [
        "a/M-Q4-00001-of-00003.gguf", "a/M-Q4-00002-of-00003.gguf", "a/M-Q4-00003-of-00003.gguf"]
    files = ["m-Q4_K_M.gguf", "m-Q4_K_S.gguf", "m-Q8_0-00001-of-00002.gguf",
             "m-Q8_0-00002-of-00002.gguf"]
    ref = refs.Ref("o/r", quant="q8_0")
    assert pick_quant(ref, files) == "m-Q8_0-00001-of-00002.gguf"
    with pytest.raises(UsageError, match=r"no Q4_K file in o/r; quants available: "
                                         r"Q4_K_M, Q4_K_S, Q8_0"):
        pick_quant(refs.Ref("o/r", quant="Q4_K"), files)
    with pytest.raises(UsageError, match="2 files in o/r carry F16"):
        pick_quant(refs.Ref("o/r", quant="F16"), ["a-F16.gguf", "mmproj-F16.gguf"])


@pytest.mark.parametrize("ref,name", [
    ("acme/Tiny-GGUF/tiny-Q4_K_M.gguf", "tiny-Q4_K_M.gguf"),
    ("hf://acme/Tiny-GGUF/sub/tiny-q8_0.gguf", "tiny-q8_0.gguf"),
    ("acme/Tiny-GGUF:q4_k_m", "tiny-Q4_K_M.gguf"),
    ("hf://acme/Tiny-GGUF:Q8_0", "tiny-q8_0.gguf"),
])
def test_pull_each_ref_form(fake: FakeHub, tmp_path: Path, ggufs, ref: str, name: str) -> None:
    got = pull(ref, tmp_path, hub=client(fake))
    assert got.names == [name]
    source = ggufs["q4"] if "4" in name else ggufs["q8"]
    assert (tmp_path / name).read_bytes() == source.read_bytes()
    assert [m.name for m in list_models(tmp_path)] == [name]
    assert got.bytes_moved == source.stat().st_size
    # again: nothing moves
    again = pull(ref, tmp_path, hub=client(fake))
    assert again.skipped == [name] and again.bytes_moved == 0


def test_pull_with_name_and_split(fake: FakeHub, tmp_path: Path, ggufs) -> None:
    pull("acme/Tiny-GGUF:Q4_K_M", tmp_path, name="mine.gguf", hub=client(fake))
    assert (tmp_path / "mine.gguf").read_bytes() == ggufs["q4"].read_bytes()
    got = pull("acme/Split-GGUF:q4_k_m", tmp_path, hub=client(fake))
    assert got.names == ["Split-Q4_K_M-00001-of-00002.gguf", "Split-Q4_K_M-00002-of-00002.gguf"]
    assert (tmp_path / got.names[1]).read_bytes() == ggufs["p2"].read_bytes()
    renamed = pull("acme/Split-GGUF/Split-Q4_K_M-00001-of-00002.gguf", tmp_path,
                   name="s.gguf", hub=client(fake))
    assert renamed.names == ["s-00001-of-00002.gguf", "s-00002-of-00002.gguf"]


def test_unknown_repo_file_and_quant(fake: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such repository"):
        pull("acme/Nope/x.gguf", tmp_path, hub=client(fake))
    with pytest.raises(UsageError, match="no such file in the repository"):
        pull("acme/Tiny-GGUF/missing.gguf", tmp_path, hub=client(fake))
    with pytest.raises(UsageError, match="no Q2_K file in acme/Tiny-GGUF; quants available: "
                                         "Q4_K_M, Q8_0"):
        pull("acme/Tiny-GGUF:Q2_K", tmp_path, hub=client(fake))
    with pytest.raises(UsageError, match="no such repository"):
        pull("acme/Nope:Q4_K_M", tmp_path, hub=client(fake))
    assert list(tmp_path.iterdir()) == []


def test_network_down_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(AirpodsError, match=f"cannot reach http://127.0.0.1:{port}"):
        pull("acme/Tiny-GGUF/x.gguf", tmp_path, hub=Hub(endpoint=f"http://127.0.0.1:{port}",
                                                         token=""))
    assert list(tmp_path.iterdir()) == []


def test_5xx_and_dropped_connection_mid_file_are_retried(fake: FakeHub, tmp_path: Path,
                                                        ggufs) -> None:
    size = ggufs["big"].stat().st_size
    fake.fault("big-Q8_0.gguf", drop_after=size // 3, fail=2)
    got = pull("acme/Big-GGUF/big-Q8_0.gguf", tmp_path, hub=client(fake))
    assert (tmp_path / "big-Q8_0.gguf").read_bytes() == ggufs["big"].read_bytes()
    gets = fake.gets("big-Q8_0.gguf")
    statuses = [g.status for g in gets]
    # two 500s, a GET dropped after a third, then one that resumes with the rest
    assert statuses == [500, 500, 200, 206], statuses
    assert gets[2].sent == size // 3
    assert gets[3].range == f"bytes={size // 3}-" and gets[3].sent == size - size // 3
    assert got.bytes_moved == size


def test_persistent_5xx_gives_up_in_one_line_keeping_no_model(fake: FakeHub,
                                                              tmp_path: Path) -> None:
    fake.fault("tiny-Q4_K_M.gguf", fail=100, fail_status=503)
    with pytest.raises(AirpodsError, match="HTTP 503, 5 tries without progress"):
        pull("acme/Tiny-GGUF/tiny-Q4_K_M.gguf", tmp_path, hub=client(fake))
    assert list_models(tmp_path) == []


def test_checksum_mismatch_is_rejected_and_the_partial_deleted(fake: FakeHub,
                                                               tmp_path: Path) -> None:
    fake.fault("tiny-Q4_K_M.gguf", corrupt=True)
    with pytest.raises(AirpodsError, match="checksum mismatch.*partial download was deleted"):
        pull("acme/Tiny-GGUF/tiny-Q4_K_M.gguf", tmp_path, hub=client(fake))
    assert list(tmp_path.iterdir()) == []


def test_not_a_gguf_is_refused(fake: FakeHub, tmp_path: Path) -> None:
    text = tmp_path.parent / "notes.txt"
    text.write_text("hello, not a model\n" * 10)
    fake.add(REPO, "notes.gguf", text)
    with pytest.raises(UsageError, match="is not a GGUF file"):
        pull("acme/Tiny-GGUF/notes.gguf", tmp_path, hub=client(fake))
    assert list(tmp_path.iterdir()) == []


def test_existing_different_file_is_not_overwritten(fake: FakeHub, tmp_path: Path) -> None:
    (tmp_path / "tiny-Q4_K_M.gguf").write_bytes(b"GGUF mine")
    with pytest.raises(UsageError, match="already in the volume and differs"):
        pull("acme/Tiny-GGUF/tiny-Q4_K_M.gguf", tmp_path, hub=client(fake))
    assert (tmp_path / "tiny-Q4_K_M.gguf").read_bytes() == b"GGUF mine"


def test_changed_upstream_restarts_instead_of_splicing(fake: FakeHub, tmp_path: Path,
                                                       ggufs) -> None:
    # A partial downloaded for another version (its xattr names another ETag): start over.
    partial = tmp_path / "big-Q8_0.gguf.partial"
    partial.write_bytes(b"GGUF" + b"\0" * 1000)
    os.setxattr(partial, transfer.ETAG_XATTR, b"0" * 64)
    pull("acme/Big-GGUF/big-Q8_0.gguf", tmp_path, hub=client(fake))
    assert (tmp_path / "big-Q8_0.gguf").read_bytes() == ggufs["big"].read_bytes()
    assert [g.range for g in fake.gets("big-Q8_0.gguf")] == [None]


PULL_SCRIPT = """
import sys
from pathlib import Path
from airpods.hub.client import Hub
from airpods.models.pull import pull
got = pull(sys.argv[2], Path(sys.argv[3]), hub=Hub(endpoint=sys.argv[1], token=""))
print(got.bytes_moved)
"""


def test_kill_9_mid_file_then_rerun_moves_only_the_missing_bytes(fake: FakeHub, tmp_path: Path,
                                                                 ggufs) -> None:
    size = ggufs["big"].stat().st_size
    fake.fault("big-Q8_0.gguf", stall_after=size // 2)
    ref = "acme/Big-GGUF:Q8_0"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", PULL_SCRIPT, fake.url, ref, str(tmp_path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = tmp_path / "big-Q8_0.gguf.partial"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not partial.exists()
                                           or partial.stat().st_size < size // 2):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    fake.fault("big-Q8_0.gguf", stall_after=None)
    fake.release.set()
    kept = partial.stat().st_size
    assert 0 < kept <= size // 2
    assert list_models(tmp_path) == []  # the partial is not a model
    first = len(fake.gets("big-Q8_0.gguf"))
    out = subprocess.run([sys.executable, "-c", PULL_SCRIPT, fake.url, ref, str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    second = fake.gets("big-Q8_0.gguf")[first:]
    assert [g.range for g in second] == [f"bytes={kept}-"]
    assert second[0].sent == size - kept  # only the missing bytes crossed the wire
    assert int(out.stdout) == size - kept
    assert (tmp_path / "big-Q8_0.gguf").read_bytes() == ggufs["big"].read_bytes()
    assert not partial.exists()


def test_second_pull_of_the_same_file_is_refused_while_one_runs(fake: FakeHub,
                                                                tmp_path: Path) -> None:
    import fcntl

    partial = tmp_path / "tiny-Q4_K_M.gguf.partial"
    fd = os.open(partial, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(AirpodsError, match="another pull is writing tiny-Q4_K_M.gguf"):
            pull("acme/Tiny-GGUF/tiny-Q4_K_M.gguf", tmp_path, hub=client(fake))
    finally:
        os.close(fd)


@pytest.mark.parametrize("planted", ["symlink", "dangling symlink", "fifo", "directory"])
def test_a_partial_that_is_not_a_regular_file_is_refused_untouched(fake: FakeHub, tmp_path: Path,
                                                                   planted: str) -> None:
    """A link planted as `<name>.partial` would have the pull truncate and write its target;
    a FIFO would hang it. Each is one error, and nothing is written through it."""
    volume = tmp_path / "volume"
    volume.mkdir()
    partial = volume / "tiny-Q4_K_M.gguf.partial"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    if planted == "symlink":
        partial.symlink_to(victim)
    elif planted == "dangling symlink":
        partial.symlink_to(tmp_path / "created-through-the-link")
    elif planted == "fifo":
        os.mkfifo(partial)
    else:
        partial.mkdir()
    with pytest.raises(AirpodsError, match="is not a regular file"):
        pull("acme/Tiny-GGUF/tiny-Q4_K_M.gguf", volume, hub=client(fake))
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "created-through-the-link").exists()
    assert not (volume / "tiny-Q4_K_M.gguf").exists()
