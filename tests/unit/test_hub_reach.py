"""No route to the hub fails in one line, fast, naming the endpoint and the cause (issue 14).

Closed ports and an unresolvable name are real sockets and a real resolver; the timing is a
bench figure (bench/bench_pull.py), so these only guard against a hang (the old 36-73 s of
retries) with a generous bound.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from airpods.errors import AirpodsError, UsageError
from airpods.hub.client import Hub
from airpods.hub.reach import check_reachable, target
from airpods.models.pull import pull
from tests.fake_podman import use_fake_podman
from tests.hf_server import FakeHub

HANG_S = 60  # far above the fail-fast path, far below the retries it replaced


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


def test_closed_port_fails_in_one_line_naming_endpoint_and_cause(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    began = time.monotonic()
    with pytest.raises(AirpodsError) as err:
        pull("o/r:Q4_K_M", tmp_path, hub=Hub(endpoint=endpoint, token=""))
    assert time.monotonic() - began < HANG_S
    line = err.value.one_line()
    assert "\n" not in line
    assert endpoint in line and "refused" in line
    assert list(tmp_path.iterdir()) == []  # nothing started on disk


def test_dns_failure_names_the_host(tmp_path: Path) -> None:
    with pytest.raises(AirpodsError, match=r"cannot reach http://no-such-hub\.invalid: DNS"):
        check_reachable("http://no-such-hub.invalid", dns_timeout=HANG_S)


def test_a_resolver_that_never_answers_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from airpods.hub import reach

    monkeypatch.setattr(reach.socket, "getaddrinfo", lambda *a, **k: time.sleep(30))
    began = time.monotonic()
    with pytest.raises(AirpodsError, match="did not answer within 0.2 s"):
        check_reachable("http://slow.example", dns_timeout=0.2)
    assert time.monotonic() - began < 5


def test_a_proxy_is_what_is_probed() -> None:
    assert target("https://huggingface.co", {"HTTPS_PROXY": "http://proxy.lan:3128"}) == (
        "proxy.lan", 3128, "proxy http://proxy.lan:3128")
    assert target("http://127.0.0.1:9", {}) == ("127.0.0.1", 9, "http://127.0.0.1:9")


def test_a_reachable_hub_passes_and_is_probed_once(tmp_path: Path) -> None:
    from tests.tiny_model import write_tiny_gguf

    with FakeHub() as hub:
        hub.add("o/r", "m-Q4_K_M.gguf", write_tiny_gguf(tmp_path / "src.gguf"))
        client = Hub(endpoint=hub.url, token="")
        got = pull("o/r:Q4_K_M", tmp_path / "vol", hub=client)
    assert got.names == ["m-Q4_K_M.gguf"] and client.reached


def test_models_pull_cli_closed_port_is_one_line_exit_1(tmp_path: Path, capsys,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from airpods.cli import _run

    endpoint = f"http://127.0.0.1:{closed_port()}"
    for key, sub in (("XDG_CONFIG_HOME", "cfg"), ("XDG_DATA_HOME", "data"),
                     ("XDG_CACHE_HOME", "cache")):
        monkeypatch.setenv(key, str(tmp_path / sub))
    monkeypatch.setenv("AIRPODS_ACCELERATOR", "cpu")
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    use_fake_podman(monkeypatch, volume_dir=tmp_path)
    began = time.monotonic()
    code = _run(["models", "pull", "o/r:Q4_K_M"])
    err = capsys.readouterr().err.strip()
    assert time.monotonic() - began < HANG_S
    assert code == 1
    assert err.count("\n") == 0 and endpoint in err and "refused" in err, err


def test_a_token_file_that_cannot_be_sent_is_named_not_the_network(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    from huggingface_hub import constants

    token = tmp_path / "token"
    token.write_bytes("hf_\u4e2d\n".encode())
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(token))
    monkeypatch.setenv("HF_TOKEN_PATH", str(token))  # where it is found without the import
    with pytest.raises(UsageError) as err:
        Hub(endpoint="http://127.0.0.1:9")
    assert str(token) in err.value.one_line() and "cannot reach" not in err.value.one_line()
