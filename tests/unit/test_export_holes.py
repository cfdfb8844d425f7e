"""Where exports are written, through the real CLI: never through a symlink, never over a unit
without --force, `-o ''` refused and `-o -` stdout, an unwritable place one line, and
--pvc-size a Kubernetes quantity. Each refusal changes nothing on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from airpods.export.checks import check_quantity
from tests.unit.test_bad_files import airpods, one_line


def run(tmp_path: Path, *args: str):
    return airpods(tmp_path, *args, AIRPODS_ACCELERATOR="cpu")


def test_kube_refuses_to_write_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    link = tmp_path / "out.yaml"
    link.symlink_to(victim)
    line = one_line(run(tmp_path, "export", "kube", "-o", str(link)))
    assert "symlink" in line and str(link) in line
    assert victim.read_text() == "mine\n" and link.is_symlink()


def test_kube_podman_secret_files_are_never_written_through_a_symlink(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    (secrets / "airpods-kube-llamacpp-llama-api-key.json").symlink_to(victim)
    out = tmp_path / "stack.yaml"
    line = one_line(run(tmp_path, "export", "kube", "llamacpp", "--podman-secrets", str(secrets),
                        "-o", str(out)))
    assert "symlink" in line
    assert victim.read_text() == "mine\n" and not out.exists()
    assert sorted(p.name for p in secrets.iterdir()) == ["airpods-kube-llamacpp-llama-api-key.json"]


def test_empty_output_is_refused_and_dash_is_stdout(tmp_path: Path) -> None:
    for command in (("export", "kube", "-o", ""), ("export", "quadlet", "-o", ""),
                    ("export", "quadlet", "-o", "-")):
        line = one_line(run(tmp_path, *command))
        assert "--output" in line
    assert not list(Path(tmp_path).glob("*.container"))
    dash = run(tmp_path, "export", "kube", "llamacpp", "-o", "-")
    assert dash.returncode == 0, dash.stderr
    assert dash.stdout.startswith("---") or "kind: Pod" in dash.stdout or "kind:" in dash.stdout
    assert not (tmp_path / "-").exists()


def test_quadlet_keeps_existing_units_without_force(tmp_path: Path) -> None:
    units = tmp_path / "units"
    first = run(tmp_path, "export", "quadlet", "llamacpp", "-o", str(units))
    assert first.returncode == 0, first.stderr
    unit = units / "airpods-llamacpp-server.container"
    unit.write_text("# my own edit\n")
    line = one_line(run(tmp_path, "export", "quadlet", "llamacpp", "-o", str(units)))
    assert "already exists" in line and "--force" in line
    assert unit.read_text() == "# my own edit\n"
    forced = run(tmp_path, "export", "quadlet", "llamacpp", "-o", str(units), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "[Container]" in unit.read_text()


def test_quadlet_never_writes_a_unit_through_a_symlink(tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    (units / "airpods-llamacpp-server.container").symlink_to(victim)
    line = one_line(run(tmp_path, "export", "quadlet", "llamacpp", "-o", str(units), "--force"))
    assert "symlink" in line
    assert victim.read_text() == "mine\n"
    assert sorted(p.name for p in units.iterdir()) == ["airpods-llamacpp-server.container"]


@pytest.mark.parametrize("command", [
    ("export", "kube", "llamacpp", "--podman-secrets", "/proc/airpods-secrets"),
    ("export", "kube", "llamacpp", "-o", "/proc/airpods.yaml"),
    ("export", "kube", "llamacpp", "-o", "/proc/self/airpods/x.yaml"),
    ("export", "quadlet", "llamacpp", "-o", "/proc/airpods-units"),
    ("export", "quadlet", "llamacpp", "-o", str(Path("/tmp")), "--podman-secrets",
     "/proc/airpods-secrets"),
])
def test_an_unwritable_place_is_one_line(tmp_path: Path, command) -> None:
    result = run(tmp_path, *command)
    assert result.returncode in (1, 2), result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("airpods: ") and "internal error" not in line, line


@pytest.mark.parametrize("size", ["lots", "-1Gi", "0", "0Gi", "20GB", "20 Gi", "", "Gi", "1.2.3"])
def test_pvc_size_must_be_a_kubernetes_quantity(tmp_path: Path, size: str) -> None:
    out = tmp_path / "stack.yaml"
    line = one_line(run(tmp_path, "export", "kube", "--pvc-size", size, "-o", str(out)))
    assert "--pvc-size" in line and "Kubernetes quantity" in line
    assert not out.exists()


@pytest.mark.parametrize("size", ["20Gi", "1.5Ti", "500M", "1e9", "100", "0.5Gi", "128974848"])
def test_good_quantities(size: str) -> None:
    assert check_quantity(size, "--pvc-size") == size
