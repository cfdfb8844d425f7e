"""One reading of sizes and one of durations (issue 23). `memory = "1.5g"` passed validation
(its parser took decimals) and then crashed `start` with a ValueError (the Podman request's
parser did not): four parsers disagreed. Now validation, the Podman request, the fit estimate
and the Kubernetes export all read a size with values.size_bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airpods.config.loader import load_config_text
from airpods.engine.args import container_kwargs
from airpods.engine.specgen import container_body
from airpods.errors import ConfigError
from airpods.export.checks import quantity_memory
from airpods.fit import parse_memory_limit
from airpods.values import duration_seconds, size_bytes
from tests.unit.test_specgen import spec

AIRPODS = Path(__file__).resolve().parents[2] / "airpods"
GiB = 1 << 30


def validates(memory: str, tmp_path: Path) -> bool:
    text = f'[services.llamacpp.resources]\nmemory = "{memory}"\n'
    try:
        load_config_text(tmp_path / "airpods.toml", text)
    except ConfigError:
        return False
    return True


def request_limit(memory: str) -> int:
    body = container_body(container_kwargs(spec(memory=memory)))
    return body["resource_limits"]["memory"]["limit"]


@pytest.mark.parametrize(("memory", "size"), [
    ("1.5g", int(1.5 * GiB)), ("512m", 512 << 20), ("1073741824", GiB), ("16GiB", 16 * GiB),
    ("2GB", 2 * GiB), ("0.5k", 512), ("1t", 1 << 40), ("100b", 100),
])
def test_a_valid_size_means_the_same_bytes_everywhere(memory: str, size: int,
                                                      tmp_path: Path) -> None:
    assert validates(memory, tmp_path)
    assert size_bytes(memory) == request_limit(memory) == parse_memory_limit(memory) == size


@pytest.mark.parametrize("memory", ["lots", "1e3", "1.5.g", "-1g", "512m\n", " 1g", "0g",
                                    "g", "1x", "9" * 40])
def test_what_validation_refuses_is_no_size_anywhere(memory: str, tmp_path: Path) -> None:
    assert not validates(memory, tmp_path)


def test_kubernetes_quantities_from_the_same_bytes() -> None:
    assert quantity_memory("1.5g") == "1536Mi" and quantity_memory("16g") == "16Gi"
    assert quantity_memory("1000") == "1000" and quantity_memory("2GB") == "2Gi"


def test_durations() -> None:
    assert duration_seconds("90s") == 90 and duration_seconds("1.5h") == 5400
    assert duration_seconds("1d") == 86400
    for bad in ("10", "10x", "h", "1e3s", " 10m"):
        with pytest.raises(ValueError):
            duration_seconds(bad)


def test_no_other_module_parses_sizes_or_durations() -> None:
    """A unit regex ([bkmg], [smhd]) or a 1024 ** ladder outside values.py is a second
    parser: it would disagree again."""
    unit_re = re.compile(r"\[(?:bkmg|kmg|bkmgt|smhd|kmgtp)\]|\*\* *\"bkmg\"", re.IGNORECASE)
    found = [str(p.relative_to(AIRPODS)) for p in AIRPODS.rglob("*.py")
             if p.name != "values.py" and unit_re.search(p.read_text())]
    assert found == []
