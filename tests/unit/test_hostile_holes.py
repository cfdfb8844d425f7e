"""Holes a hostile pass found outside the gateway's own suites, each through the CLI: the LAN
warning for every spelling of the wildcard address, and URL passwords in messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from airpods.masking import mask_url, mask_urls_in

REPO = Path(__file__).resolve().parents[2]


def airpods(
    tmp_path: Path, text: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(text)
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AIRPODS_", "CONTAINER_"))}
    full |= {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
            "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"), "AIRPODS_NO_CACHE": "1",
            # Nothing may be started: a socket that is not there would fail loudly.
            "CONTAINER_HOST": f"unix://{tmp_path}/no-podman.sock"} | (env or {})
    return subprocess.run([sys.executable, "-m", "airpods", "--config", str(config), *args],
                          capture_output=True, text=True, env=full, cwd=REPO, timeout=60)


@pytest.mark.parametrize("host_ip", ["0.0.0.0", "::", "::0", "0:0:0:0:0:0:0:0", "0000::",
                                     "::ffff:0.0.0.0"])
def test_every_spelling_of_every_interface_is_warned_about(host_ip: str, tmp_path: Path) -> None:
    text = (f'[services.llamacpp]\nports = [{{ host = 18080, container = 8080, '
            f'host_ip = "{host_ip}" }}]\n[services.open-webui]\nenabled = false\n')
    out = airpods(tmp_path, text, "start", "llamacpp", "--dry-run")
    assert out.returncode == 0, out.stderr
    shown = out.stdout + out.stderr
    assert f"published on {host_ip}: reachable from other machines" in shown, shown
    # Its health check goes through loopback, as for 0.0.0.0.
    assert "health:   http://127.0.0.1:18080/" in shown, shown


@pytest.mark.parametrize("host_ip", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_not_warned_about(host_ip: str, tmp_path: Path) -> None:
    text = (f'[services.llamacpp]\nports = [{{ host = 18080, container = 8080, '
            f'host_ip = "{host_ip}" }}]\n[services.open-webui]\nenabled = false\n')
    out = airpods(tmp_path, text, "start", "llamacpp", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "reachable from other machines" not in out.stdout + out.stderr


def test_a_wildcard_and_a_mapped_wildcard_clash_on_one_port(tmp_path: Path) -> None:
    text = ('[services.llamacpp]\nports = [{ host = 18080, container = 8080, '
            'host_ip = "::ffff:0.0.0.0" }]\n[services.open-webui]\nenabled = false\n'
            '[services.other]\nimage = "x"\nports = [{ host = 18080, container = 80, '
            'host_ip = "192.168.1.5" }]\n')
    out = airpods(tmp_path, text, "config", "validate")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "18080" in out.stderr and out.stderr.count("\n") == 1, out.stderr


@pytest.mark.parametrize(("url", "shown"), [
    ("http://u:hunter2@h:1/v1", "http://****@h:1/v1"),
    ("https://tok@h/v1?a=1&api_key=hunter2;sig=hunter2#f", "https://****@h/v1?a=1&api_key=****;sig=****#f"),
    ("http://u:p@ss:hunter2@h/x", "http://****@h/x"),
    ("http://us\ner:hunter2@h/v1", "http://****@h/v1"),
    ("http://h/v1?token=hunter2", "http://h/v1?token=****"),
    ("http://h/v1?model=a&mode=b", "http://h/v1?model=a&mode=b"),
])
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert "hunter2" not in mask_urls_in(f"error: {url!r} is bad")


def test_models_search_shows_a_hostile_repo_name_escaped(tmp_path: Path) -> None:
    from tests.hf_server import FakeHub

    hostile = "acme/Qwen\x1b]0;pwn\x07\r\nFAKE-GGUF"
    with FakeHub() as hub:
        hub.listed(hostile, "q-Q4_K_M.gguf", 10**9)
        hub.listed("acme/Qwen-GGUF", "q-Q4_K_M.gguf", 10**9)
        env = {"HF_ENDPOINT": hub.url, "AIRPODS_ACCELERATOR": "cpu"}
        exact = airpods(tmp_path, "", "models", "search", "qwen", "--json", env=env)
        text = airpods(tmp_path, "", "models", "search", "qwen", env=env)
    for out in (exact, text):
        shown = out.stdout + out.stderr
        assert "\x1b" not in shown and "\r" not in shown and "\x07" not in shown, repr(shown)
        assert "FAKE-GGUF" not in shown or "\\x1b]0;pwn\\x07\\r\\nFAKE-GGUF" in shown, shown
        assert out.stderr.count("\n") <= 1, out.stderr


def test_status_shows_a_servers_model_ids_and_routes_escaped() -> None:
    import io

    from airpods.cli.plain import PlainConsole
    from airpods.cli.status_view import _print_routes, _print_table

    hostile = "m\x1b]0;pwn\x07\r\nFAKE [bold]ROW"
    console = PlainConsole(stderr=False)
    console.file = io.StringIO()
    row = {"name": "llamacpp", "state": "running", "health": "ready", "config_current": True,
           "url": "http://127.0.0.1:8080", "model": hostile, "uptime_s": 5, "accelerator": "cpu",
           "image": "img", "models": [{"id": hostile, "state": "loaded", "file": hostile}]}
    _print_table([row], console)
    _print_routes([{"gateway": "gateway", "model": hostile, "backend": "local",
                    "private": False, "route": "local", "via": "llamacpp"}], console)
    out = console.file.getvalue()
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out, repr(out)
    assert not any(line.startswith("FAKE") for line in out.splitlines()), out
    assert out.count("m\\x1b]0;pwn\\x07\\r\\nFAKE [bold]ROW") == 4, out
