"""engine/bridge.py's guards: which interface gets its MAC pinned (the pin itself, on a real
bridge, is checked by tests/integration/test_peers_podman.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airpods.engine import bridge

MAC = "0e:1e:6a:7b:2e:5f"


def _iface(root: Path, name: str, *, is_bridge: bool = True, assign: int = 1) -> None:
    base = root / name
    base.mkdir(parents=True)
    if is_bridge:
        (base / "bridge").mkdir()
    (base / "addr_assign_type").write_text(f"{assign}\n")
    (base / "address").write_text(f"{MAC}\n")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    made: list[tuple[str, str]] = []
    monkeypatch.setattr(bridge.os, "geteuid", lambda: 0)
    monkeypatch.setattr(bridge, "ipv4_of", lambda name: "10.89.0.1")
    monkeypatch.setattr(bridge, "set_mac", lambda name, mac: made.append((name, mac)))
    return made


def test_a_floating_bridge_holding_the_gateway_is_pinned_to_its_own_mac(tmp_path, calls):
    _iface(tmp_path, "podman3")
    assert bridge.pin_bridge_mac("podman3", "10.89.0.1", tmp_path) is True
    assert calls == [("podman3", MAC)]


@pytest.mark.parametrize("setup, gateway", [
    ({"assign": bridge.NET_ADDR_SET}, "10.89.0.1"),  # already pinned (netavark >= 1.9, or us)
    ({"is_bridge": False}, "10.89.0.1"),  # not a bridge
    ({}, "10.77.0.1"),  # a bridge of that name, but not this network's gateway
])
def test_anything_else_is_left_alone(tmp_path, calls, setup, gateway):
    _iface(tmp_path, "podman3", **setup)
    assert bridge.pin_bridge_mac("podman3", gateway, tmp_path) is False
    assert calls == []


def test_no_such_interface_or_not_root_is_a_no_op(tmp_path, calls, monkeypatch):
    assert bridge.pin_bridge_mac("podman9", "10.89.0.1", tmp_path) is False
    _iface(tmp_path, "podman3")
    monkeypatch.setattr(bridge.os, "geteuid", lambda: 1000)  # rootless: its own namespace
    assert bridge.pin_bridge_mac("podman3", "10.89.0.1", tmp_path) is False
    assert calls == []


def test_a_refused_ioctl_is_not_an_error(tmp_path, monkeypatch):
    _iface(tmp_path, "podman3")
    monkeypatch.setattr(bridge.os, "geteuid", lambda: 0)
    monkeypatch.setattr(bridge, "ipv4_of", lambda name: "10.89.0.1")

    def refuse(name: str, mac: str) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(bridge, "set_mac", refuse)
    assert bridge.pin_bridge_mac("podman3", "10.89.0.1", tmp_path) is False
