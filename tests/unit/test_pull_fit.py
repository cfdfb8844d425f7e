"""`models pull ORG/REPO` without a quant: the largest quant whose listed size fits, why it was
picked, and a refusal before any byte moves when none fits (loopback hub, issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airpods.config.tiers import Budget
from airpods.errors import UsageError
from airpods.hub.client import Hub
from airpods.hub.refs import Ref, quant_sizes
from airpods.models.pull import choose_quant, pull
from tests.hf_server import FakeHub
from tests.tiny_model import write_tiny_gguf

GB = 10**9
REPO = "acme/Mixed-GGUF"


class Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def begin(self, name: str, total: int, done: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def note(self, text: str) -> None:
        self.lines.append(text)

    def end(self) -> None:
        pass


def room(usable: int) -> Budget:
    return Budget(int(usable / 0.8), usable, "RAM", 0.2)


@pytest.fixture
def hub(tmp_path: Path):
    with FakeHub() as fake:
        fake.listed(REPO, "mixed-F16.gguf", 30 * GB)
        fake.listed(REPO, "mixed-Q8_0-00001-of-00002.gguf", 8 * GB)
        fake.listed(REPO, "mixed-Q8_0-00002-of-00002.gguf", 8 * GB)  # 16 GB in all
        fake.listed(REPO, "mixed-Q6_K.gguf", 12 * GB)
        fake.add(REPO, "mixed-Q2_K.gguf", write_tiny_gguf(tmp_path / "q2.gguf"))
        fake.listed(REPO, "mmproj-mixed-F16.gguf", 1)  # a projector, not a model
        yield fake


def test_quant_sizes_groups_split_parts_and_skips_projectors() -> None:
    sizes = {"a-Q8_0-00001-of-00002.gguf": 5, "a-Q8_0-00002-of-00002.gguf": 6,
             "a-Q4_K_M.gguf": 3, "mmproj-a-f16.gguf": 1, "README.md": 9}
    assert quant_sizes(sizes) == {"Q8_0": ("a-Q8_0-00001-of-00002.gguf", 11),
                                  "Q4_K_M": ("a-Q4_K_M.gguf", 3)}


def test_picks_the_largest_quant_that_fits_and_says_why(hub: FakeHub, tmp_path: Path) -> None:
    notes: list[str] = []
    got = choose_quant(Ref(REPO), Hub(endpoint=hub.url, token=""), room(14 * GB), force=False,
                       note=notes.append)
    assert got == Ref(REPO, path="mixed-Q6_K.gguf")
    [why] = notes
    assert "picked Q6_K" in why and "F16, Q8_0 would not fit" in why and "14.0 GB" in why


def test_pulls_the_one_that_fits(hub: FakeHub, tmp_path: Path) -> None:
    notes = Notes()
    got = pull(REPO, tmp_path / "v", hub=Hub(endpoint=hub.url, token=""), progress=notes,
               room=room(10 * GB))
    assert got.names == ["mixed-Q2_K.gguf"]
    assert "picked Q2_K" in notes.lines[0] and "Q6_K" in notes.lines[0]


def test_nothing_fits_is_refused_before_a_byte_moves(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        pull(REPO, tmp_path / "v", hub=Hub(endpoint=hub.url, token=""), room=room(100))
    line = err.value.one_line()
    assert "no quant fits" in line and "--force" in line and "nothing was downloaded" in line
    assert not (tmp_path / "v").exists() or list((tmp_path / "v").iterdir()) == []
    assert all(hub.gets(p) == [] for p in hub.repos[REPO].files)


def test_force_pulls_the_smallest(hub: FakeHub, tmp_path: Path) -> None:
    notes = Notes()
    got = pull(REPO, tmp_path / "v", hub=Hub(endpoint=hub.url, token=""), progress=notes,
               room=room(100), force=True)
    assert got.names == ["mixed-Q2_K.gguf"] and "--force" in notes.lines[0]


def test_a_repo_without_ggufs_is_one_line(hub: FakeHub, tmp_path: Path) -> None:
    hub.add("acme/Docs", "README.md", write_tiny_gguf(tmp_path / "r.gguf"))
    with pytest.raises(UsageError, match="has no GGUF model files"):
        pull("acme/Docs", tmp_path / "v", hub=Hub(endpoint=hub.url, token=""), room=room(GB))


def test_models_pull_cli_refuses_a_repo_whose_quants_all_exceed_this_host(
        tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from airpods.cli import _run
    from tests.fake_podman import use_fake_podman

    for key, sub in (("XDG_CONFIG_HOME", "cfg"), ("XDG_DATA_HOME", "data"),
                     ("XDG_CACHE_HOME", "cache")):
        monkeypatch.setenv(key, str(tmp_path / sub))
    monkeypatch.setenv("AIRPODS_ACCELERATOR", "cpu")
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    volume = tmp_path / "volume"
    volume.mkdir()
    use_fake_podman(monkeypatch, volume_dir=volume)
    with FakeHub() as fake:
        fake.listed("acme/Huge-GGUF", "huge-Q4_K_M.gguf", 10**15)  # 1 PB: fits nowhere
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        code = _run(["models", "pull", "acme/Huge-GGUF"])
        err = capsys.readouterr().err.strip()
        assert fake.gets("huge-Q4_K_M.gguf") == []
    assert code == 2 and err.count("\n") == 0 and "no quant fits" in err, err
    assert list(volume.iterdir()) == []
