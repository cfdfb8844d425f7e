"""The user's model catalogue, `models.toml`, is read beside the config file in effect (README:
"beside your config file"): beside `--config` or AIRPODS_CONFIG too, not only beside the default
file; a broken one, or a FIFO there, is one line and exit 2, never a hang (issue 23).

The real CLI in a subprocess with a timeout: a FIFO that hangs fails the test, not CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MINE = """[tiers.mine]
repo = "me/Mine-GGUF"
file = "mine-q4_k_m.gguf"
quant = "Q4_K_M"
parameters = 1_000_000
size_bytes = 1_000_000
layers = 2
kv_heads = 1
head_dim = 8
"""


def recommend(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "AIRPODS_CONFIG"}
    full |= {"XDG_CONFIG_HOME": str(tmp_path / "xdg"),
            "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "AIRPODS_ACCELERATOR": "cpu", **env}
    return subprocess.run([sys.executable, "-m", "airpods", *args, "models", "recommend",
                           "--json"], env=full, capture_output=True, text=True, timeout=30)


def config_in(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "airpods.toml"
    config.write_text("# mine\n")
    return config


def tiers(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [t["tier"] for t in json.loads(result.stdout)["tiers"]]


def test_the_catalogue_beside_config_is_read(tmp_path: Path) -> None:
    config = config_in(tmp_path / "elsewhere")
    (config.parent / "models.toml").write_text(MINE)
    assert "mine" in tiers(recommend(tmp_path, "--config", str(config)))
    assert "mine" in tiers(recommend(tmp_path, AIRPODS_CONFIG=str(config)))
    assert "mine" not in tiers(recommend(tmp_path))  # the default file's directory has none


def test_a_broken_catalogue_beside_config_is_one_line_exit_2(tmp_path: Path) -> None:
    config = config_in(tmp_path / "elsewhere")
    catalogue = config.parent / "models.toml"
    catalogue.write_text("[tiers.mine\n")
    result = recommend(tmp_path, "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and str(catalogue) in result.stderr
    assert "not valid TOML" in result.stderr


def test_a_fifo_at_the_catalogue_path_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "xdg" / "airpods" / "models.toml"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    result = recommend(tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and str(fifo) in result.stderr
    assert "not a regular file" in result.stderr
