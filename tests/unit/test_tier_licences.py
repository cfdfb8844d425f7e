"""Licences in the tier catalogue (issue 21, part 6): each tier carries its licence, `auto`
skips a tier whose licence forbids commercial use and the start line says which it skipped,
`models recommend` shows the licence (text and --json)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airpods.cli.models_recommend import recommendation
from airpods.config.tiers import auto_pick, load_catalogue
from airpods.errors import ConfigError
from airpods.models import first_use
from tests.unit.test_host import write
from tests.unit.test_tiers import fake_host

APACHE = {"tiny", "small", "large", "xl", "xxl"}  # Qwen2.5 0.5B, 1.5B, 7B, 14B, 32B


@pytest.fixture(autouse=True)
def no_user_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))


def test_every_builtin_tier_names_its_licence() -> None:
    tiers = {t.name: t for t in load_catalogue()}
    medium = tiers["medium"]
    assert medium.repo == "Qwen/Qwen2.5-3B-Instruct-GGUF"
    assert (medium.licence, medium.commercial_use) == ("Qwen Research License", False)
    for name in APACHE:
        assert (tiers[name].licence, tiers[name].commercial_use) == ("Apache-2.0", True), name


def test_auto_skips_the_non_commercial_3b_where_it_was_the_best_fit(tmp_path: Path) -> None:
    # 6 physical cores and plenty of RAM: medium (cpu_min_cores 6) is the largest tier fast
    # enough here, and the one auto picked before licences were known.
    host = fake_host(tmp_path, ram_gib=64, cores=6)
    pick = auto_pick(host, 4096, load_catalogue())
    assert pick is not None and pick.tier.name == "small"
    assert host.auto_model == "qwen2.5-1.5b-instruct-q4_k_m.gguf"  # the built-in default_model
    doc = recommendation(host, 4096)
    assert doc["auto"] == "small"
    row = next(t for t in doc["tiers"] if t["tier"] == "medium")
    assert (row["licence"], row["commercial_use"], row["auto"]) == (
        "Qwen Research License", False, False)


def test_the_start_line_names_the_licence_and_the_skipped_tier(tmp_path: Path) -> None:
    host = fake_host(tmp_path, ram_gib=64, cores=6)
    line = first_use._auto_line("llamacpp", "qwen2.5-1.5b-instruct-q4_k_m.gguf", host)
    assert "tier small" in line and "licence Apache-2.0" in line
    assert "skipped tier medium (Qwen/Qwen2.5-3B-Instruct-GGUF: Qwen Research License" in line
    assert "\n" not in line
    # where auto's pick is above the 3B tier, nothing was passed over for its licence
    big = fake_host(tmp_path / "big", ram_gib=64, cores=8)
    line = first_use._auto_line("llamacpp", "Qwen2.5-7B-Instruct-Q4_K_M.gguf", big)
    assert "tier large" in line and "skipped" not in line


def test_recommend_text_shows_each_licence(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from airpods.cli import cli

    host = fake_host(tmp_path, ram_gib=64, cores=6)
    monkeypatch.setattr("airpods.cli.models_recommend._host", lambda app: host)
    result = CliRunner().invoke(cli, ["models", "recommend"])
    assert result.exit_code == 0, result.output
    medium = next(line for line in result.output.splitlines() if "medium" in line)
    assert "licence: Qwen Research License, non-commercial: auto skips it" in medium
    assert "<- auto" not in medium
    small = next(line for line in result.output.splitlines() if line.strip().startswith("small"))
    assert "licence: Apache-2.0" in small and "<- auto" in small


def test_a_user_tier_may_leave_the_licence_out_but_not_mistype_it(tmp_path: Path) -> None:
    body = ("[tiers.mine]\nrepo = 'me/M-GGUF'\nfile = 'm.gguf'\nquant = 'Q4'\nparameters = 1\n"
            "size_bytes = 1\nlayers = 1\nkv_heads = 1\nhead_dim = 1\n")
    mine = {t.name: t for t in load_catalogue(write(tmp_path / "a.toml", body))}["mine"]
    assert (mine.licence, mine.commercial_use) == ("not stated", None)
    bad = write(tmp_path / "b.toml", body + "commercial_use = 'no'\n")
    with pytest.raises(ConfigError) as err:
        load_catalogue(bad)
    assert err.value.key_path == "tiers.mine.commercial_use"
    assert "true or false" in err.value.one_line()
