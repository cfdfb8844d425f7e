"""Peers, the pure parts: the config keys and their bad input, what is rendered for the
container (peers file, keys as files, routing strategy, the poller module), `status`'s peer
routes from the poller's state file, and usage records naming peers.

The real thing (two sandboxes, LiteLLM, llama-server) is tests/integration/test_peers_podman.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airpods.kinds import gateway as g
from airpods.kinds import gateway_peers
from tests.unit.test_gateway import ON, _cli, _config, _gateway, _load, assert_refused
from tests.unit.test_gateway import (
    test_bad_gateway_config_is_one_line_and_starts_nothing as refused_in_one_line,
)

PEER = '[services.gateway.peers.gpubox]\nurl = "http://192.168.1.30:4000"\n'
KEYED = PEER + 'api_key_env = "GPUBOX_KEY"\n'


def test_no_peers_renders_as_before(tmp_path: Path) -> None:
    spec, _ = _gateway(ON, tmp_path)
    config = _config(spec)
    assert config["router_settings"]["routing_strategy"] == "least-busy"
    assert "airpods_peers.peers" not in config["litellm_settings"]["callbacks"]
    assert not [f for f in spec.config_files if "peers" in f.target]
    assert "AIRPODS_PEERS_FILE" not in spec.env


def test_peers_file_names_the_variable_never_the_key(tmp_path: Path, monkeypatch) -> None:
    text = ON.replace("enabled = true\n", 'enabled = true\nrouting_strategy = "simple-shuffle"\n',
                      1) + KEYED + 'weight = 3\n' + \
        '[services.gateway.peers.laptop]\nurl = "https://laptop.lan:4000/v1/"\nprivate_ok = true\n'
    spec, _ = _gateway(text, tmp_path)
    config = _config(spec)
    assert config["router_settings"]["routing_strategy"] == "simple-shuffle"
    assert config["litellm_settings"]["callbacks"][-1] == "airpods_peers.peers"
    assert gateway_peers.peers_of(spec) == [
        {"name": "gpubox", "url": "http://192.168.1.30:4000", "key_env": "AIRPODS_PEER_KEY_0",
         "weight": 3, "private_ok": False},
        {"name": "laptop", "url": "https://laptop.lan:4000", "key_env": None, "weight": 1,
         "private_ok": True},
    ]
    assert spec.env["AIRPODS_PEER_ENV_NAMES"] == "gpubox=GPUBOX_KEY"
    assert spec.env["AIRPODS_PEERS_STATE"] == f"{g.USAGE_DIR}/peers-state.json"
    shipped = {f.target for f in spec.config_files}
    assert f"{g.SECRETS_DIR}/airpods_peers.py" in shipped
    kind = g.Gateway()
    [problem] = kind.start_problems(spec, {})
    assert "peer 'gpubox'" in problem and "services.gateway.peers.gpubox.api_key_env" in problem
    monkeypatch.setenv("GPUBOX_KEY", "peer-secret")
    settled = kind.settle(spec, lambda p: None, None)  # type: ignore[arg-type]
    files = {f.target: f.value for f in settled.secret_files}
    assert files[g.ENV_PREFIX + "AIRPODS_PEER_KEY_0"] == "peer-secret"
    assert all("peer-secret" not in f.value for f in settled.config_files)
    assert "peer-secret" not in json.dumps(settled.env)


BAD = [
    ("ftp-url", PEER.replace("http://", "ftp://"), "services.gateway.peers.gpubox.url",
     "not an http(s) URL"),
    ("no-url", "[services.gateway.peers.gpubox]\nweight = 2\n", "services.gateway.peers.gpubox.url",
     "required key is missing"),
    ("itself-loopback", '[services.gateway.peers.me]\nurl = "http://127.0.0.1:4000"\n',
     "services.gateway.peers.me.url", "is this gateway itself"),
    ("itself-localhost", '[services.gateway.peers.me]\nurl = "http://localhost:4000/v1"\n',
     "services.gateway.peers.me.url", "is this gateway itself"),
    ("itself-published-address", 'ports = [{ host = 4100, container = 4000, host_ip = '
     '"192.168.1.5" }]\n[services.gateway.peers.me]\nurl = "http://192.168.1.5:4100"\n',
     "services.gateway.peers.me.url", "is this gateway itself"),
    ("reserved-key-variable", PEER + 'api_key_env = "LITELLM_MASTER_KEY"\n',
     "services.gateway.peers.gpubox.api_key_env", "is reserved"),
    ("literal-key", PEER + 'api_key = "sk-1"\n', "services.gateway.peers.gpubox",
     "literal key"),
    ("loose-private-ok", PEER + 'private_ok = "yes"\n',
     "services.gateway.peers.gpubox.private_ok", "valid boolean"),
    ("zero-weight", PEER + "weight = 0\n", "services.gateway.peers.gpubox.weight", "1"),
    ("private-ok-on-a-remote", '[services.gateway.remotes.r]\nbase_url = "http://x/v1"\n'
     'models = ["m"]\nprivate_ok = true\n', "services.gateway.remotes.r",
     "only to peers"),
    ("unknown-strategy", 'routing_strategy = "fastest"\n', "services.gateway.routing_strategy",
     "least-busy"),
]


@pytest.mark.parametrize(("case", "text", "key_path", "expect"), BAD, ids=[b[0] for b in BAD])
def test_bad_peer_config_is_one_line_and_starts_nothing(
    case: str, text: str, key_path: str, expect: str, tmp_path: Path
) -> None:
    # A key of the gateway's own table goes in it; a table of its own after it.
    text = ON + text if text.startswith("[") else \
        ON.replace("enabled = true\n", "enabled = true\n" + text, 1)
    refused_in_one_line(case, text, key_path, expect, tmp_path)


EVERYWHERE = 'ports = [{ host = 4100, container = 4000, host_ip = "0.0.0.0" }]\n'


def _own_hosts() -> list[str]:
    """Names this machine answers to without DNS: its host name, its .local name, and its
    non-loopback address where it has one."""
    import socket

    from tests.peer_machines import lan_address

    name = socket.gethostname()
    return [name, f"{name}.local"] + [a for a in (lan_address(),) if a]


@pytest.mark.parametrize("host", _own_hosts())
def test_published_everywhere_a_peer_on_this_machines_own_address_is_itself(
        host: str, tmp_path: Path) -> None:
    # Published on 0.0.0.0, the gateway answers on every address of this machine: a LAN peer URL
    # naming one of them is a loop, refused here, before the hop header has to stop it.
    text = ON.replace("enabled = true\n", "enabled = true\n" + EVERYWHERE, 1) + \
        f'[services.gateway.peers.me]\nurl = "http://{host}:4100"\n'
    assert_refused(text, "services.gateway.peers.me.url", "is this gateway itself", tmp_path)


@pytest.mark.parametrize("url", ["http://203.0.113.7:4100", "http://gpubox.lan:4100",
                                 "http://127.0.0.1:4101", "http://224.0.0.1:4100"])
def test_published_everywhere_another_machine_is_a_peer(url: str, tmp_path: Path) -> None:
    text = ON.replace("enabled = true\n", "enabled = true\n" + EVERYWHERE, 1) + \
        f'[services.gateway.peers.other]\nurl = "{url}"\n'
    assert _load(text, tmp_path).config.services["gateway"].peers["other"].url == url


def test_published_on_loopback_this_machines_lan_address_is_another_gateway(
        tmp_path: Path) -> None:
    # 127.0.0.1 only: the LAN address at that port is not this gateway (another program's).
    from tests.peer_machines import lan_address

    host = lan_address() or "203.0.113.7"
    text = ON + f'[services.gateway.peers.lan]\nurl = "http://{host}:4000"\n'
    assert _load(text, tmp_path).config.services["gateway"].peers["lan"].url.endswith(":4000")


def test_another_port_on_loopback_is_a_peer_not_itself(tmp_path: Path) -> None:
    text = ON + '[services.gateway.peers.other]\nurl = "http://127.0.0.1:4001"\n'
    assert _load(text, tmp_path).config.services["gateway"].peers["other"].url.endswith(":4001")


def test_peer_routes_come_from_the_pollers_state_file(tmp_path: Path) -> None:
    spec, _ = _gateway(ON + KEYED + '[services.gateway.peers.laptop]\n'
                       'url = "http://10.0.0.9:4000"\nprivate_ok = true\n', tmp_path)
    (tmp_path / "usage").mkdir()
    (tmp_path / "usage" / gateway_peers.STATE_NAME).write_text(json.dumps({
        "peers": {"gpubox": {"reachable": True, "models": ["big", "tiny"]},
                  "laptop": {"reachable": False, "models": ["tiny"]},
                  "stranger": {"reachable": True, "models": ["x"]}},
        "deployments": {"peer:gpubox:big": "up", "peer:gpubox:tiny": "cooldown"}}))
    rows = gateway_peers.peer_routes("gateway", spec, tmp_path / "usage")
    assert [(r["deployment"], r["state"], r["route"], r["private_ok"]) for r in rows] == [
        ("peer:gpubox:big", "up", "peer", False),
        ("peer:gpubox:tiny", "cooldown", "unavailable", False),
        ("peer:laptop:tiny", "down", "unavailable", True),
    ]
    assert all(r["state"] == "down" for r in gateway_peers.peer_routes("gateway", spec, None)
               ) is True


def test_usage_names_the_peer_and_counts_no_api_cost() -> None:
    from airpods.models.gateway_usage import group, parse_record

    lines = [{"ts": 1.0, "client": "master", "model": "tiny", "backend": "peer:gpubox",
              "prompt_tokens": 3, "completion_tokens": 2, "cost": 0.5, "ok": True},
             {"ts": 2.0, "client": "master", "model": "tiny", "backend": "local",
              "prompt_tokens": 3, "completion_tokens": 2, "cost": 0.0, "ok": True},
             {"ts": 3.0, "client": "master", "model": "tiny", "backend": "elsewhere",
              "prompt_tokens": 3, "completion_tokens": 2, "cost": 0.0, "ok": True}]
    records = [parse_record(json.dumps(x).encode()) for x in lines]
    assert [r.backend for r in records] == ["peer:gpubox", "local", None]
    assert records[0].cost == 0.0
    assert sorted(row.key for row in group(records, "backend")) == ["-", "local",
                                                                    "peer:gpubox"]


@pytest.mark.parametrize("kind", ["fifo", "symlink", "huge", "garbage"])
def test_a_planted_state_file_is_ignored_and_never_blocks_status(tmp_path: Path,
                                                                  kind: str) -> None:
    """`status` reads the poller's state file from the gateway's data directory: a FIFO there
    would block it forever, a symlink would read another file."""
    import os

    path = tmp_path / gateway_peers.STATE_NAME
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        target = tmp_path / "elsewhere.json"
        target.write_text(json.dumps({"peers": {"x": {}}}))
        path.symlink_to(target)
    elif kind == "huge":
        path.write_bytes(b'{"peers": "' + b"x" * (gateway_peers.MAX_STATE_BYTES + 10) + b'"}')
    else:
        path.write_bytes(b"\x00[[[[" * 1000)
    assert gateway_peers.read_state(tmp_path) == {}
    good = {"peers": {"gpubox": {"reachable": True}}}
    path.unlink()
    path.write_text(json.dumps(good))
    assert gateway_peers.read_state(tmp_path) == good


@pytest.mark.parametrize("as_json", [False, True])
def test_peers_with_a_closed_port_is_fast_one_line_exit_1(tmp_path: Path, as_json: bool) -> None:
    """`airpods peers` with a peer on a closed loopback port: fast, exit 1, unreachable."""
    import time

    text = ON + '[services.gateway.peers.lab]\nurl = "http://127.0.0.1:9"\n'
    t0 = time.monotonic()
    result = _cli(tmp_path, text, "peers", *(["--json"] if as_json else []))
    assert time.monotonic() - t0 < 15
    assert result.returncode == 1, result.stderr
    if as_json:
        [peer] = json.loads(result.stdout)["peers"]
        assert (peer["name"], peer["reachable"], peer["models"]) == ("lab", False, [])
    else:
        assert result.stdout.count("\n") == 1 and "lab" in result.stdout
        assert "unreachable" in result.stdout
