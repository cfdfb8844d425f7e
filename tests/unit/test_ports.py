"""engine/ports.py's pure parts: who holds a port (read from this machine's real /proc), and
Podman's "address already in use" refusal parsed."""

from __future__ import annotations

import os
import socket

from airpods.engine.ports import _hex_ip, in_use_error, port_holder
from airpods.errors import PortInUse
from tests.fake_podman import FakePodman


def test_a_listening_socket_is_found_with_its_process() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        for ip in ("127.0.0.1", "0.0.0.0"):  # a wildcard bind clashes with it too
            holder = port_holder(ip, port)
            assert holder is not None and holder.pid == os.getpid(), ip
            assert holder.describe() == f"{holder.name} (pid {os.getpid()})"
        marked = port_holder("127.0.0.1", port, transient_pid=os.getpid())
        assert marked is not None and marked.transient
        assert "transient Podman API service" in marked.describe()
    assert port_holder("127.0.0.1", port) is None  # closed: nobody


def test_proc_net_address_form() -> None:
    assert _hex_ip("127.0.0.1") == "0100007F"
    assert _hex_ip("::1") == "00000000000000000000000001000000"


def test_podman_refusal_is_parsed() -> None:
    text = ("starting container e5d7: cannot listen on the TCP port: listen tcp4 "
            "127.0.0.1:35127: bind: address already in use")
    assert in_use_error(Exception(text)) == ("127.0.0.1", 35127)
    assert in_use_error(Exception("listen tcp6 [::1]:8080: bind: address already in use")) == (
        "::1", 8080)
    assert in_use_error(Exception("no such image")) is None


def test_a_vague_start_failure_is_recognised_by_the_ports_holder(tmp_path, monkeypatch) -> None:
    import pytest

    from airpods.engine import apply, ports
    from airpods.record import replace
    from tests.unit.test_router import spec_of

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        spec = spec_of("[services.llamacpp]\n", tmp_path)
        # Podman 4.3's refusal after the leak can be only "internal libpod error".
        refusing = FakePodman(refuse={"start": RuntimeError("internal libpod error")})
        spec = replace(spec, ports=(replace(spec.ports[0], host_port=port),))
        monkeypatch.setattr(ports, "transient_service_pid", lambda environ: os.getpid())
        with pytest.raises(PortInUse) as err:
            apply._start(refusing, spec)
        assert err.value.holder is not None and err.value.holder.transient
        assert f"port {port} on 127.0.0.1 is already in use by airpods' transient" in (
            err.value.message)
        monkeypatch.setattr(ports, "transient_service_pid", lambda environ: None)
        with pytest.raises(RuntimeError, match="internal libpod error"):  # not ours: as it was
            apply._start(refusing, spec)
