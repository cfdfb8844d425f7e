"""Fixtures shared by the unit tests' model files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_model import write_tiny_gguf


@pytest.fixture
def volume(tmp_path: Path) -> tuple[Path, Path]:
    """(config, volume directory): llamacpp serving good.gguf from a bind-mounted directory."""
    vol = tmp_path / "vol"
    vol.mkdir()
    config = tmp_path / "airpods.toml"
    config.write_text(
        '[services.llamacpp]\ndefault_model = "good.gguf"\n'
        f'volumes = {{ models = {{ source = "{vol}", target = "/models", mode = "ro" }} }}\n'
    )
    write_tiny_gguf(vol / "good.gguf")
    return config, vol
