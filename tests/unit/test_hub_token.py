"""The token file's place is huggingface_hub's, and no token anywhere means no hub import."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from airpods.errors import HubAnswer, UsageError
from airpods.hub import client as hub

CASES = [
    {},
    {"XDG_CACHE_HOME": "/x/cache"},
    {"HF_HOME": "/x/hf"},
    {"HF_HOME": "~/hf-home", "XDG_CACHE_HOME": "/ignored"},
    {"HF_TOKEN_PATH": "/x/tok"},
    {"HF_TOKEN_PATH": "$HOME/t", "HF_HOME": "/x/hf"},
]


@pytest.mark.parametrize("env", CASES)
def test_token_path_is_huggingface_hubs(env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    for name in ("XDG_CACHE_HOME", "HF_HOME", "HF_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import huggingface_hub.constants as constants

    importlib.reload(constants)  # it reads the environment at import
    try:
        assert hub.token_path() == constants.HF_TOKEN_PATH
    finally:
        monkeypatch.undo()
        importlib.reload(constants)


def run_token(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", **extra}
    code = ("import sys; from airpods.hub.client import _token; "
            "print(repr(_token()), 'huggingface_hub' in sys.modules)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60)


def test_no_token_is_none_without_importing_huggingface_hub(tmp_path: Path) -> None:
    assert run_token(tmp_path).stdout.split() == ["None", "False"]


def test_a_token_file_is_read_by_huggingface_hub(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "token").write_text("hf_abc\n")
    assert run_token(tmp_path, HF_HOME=str(tmp_path / "hf")).stdout.split() == ["'hf_abc'",
                                                                               "True"]


@pytest.mark.parametrize(("repo", "path", "revision"), [
    ("acme/Tiny-GGUF", "tiny-Q4_K_M.gguf", "main"),
    ("acme/Tiny-GGUF", "sub dir/a+b#c?.gguf", "refs/pr/1"),
    ("o/r", "Q8_0/part-00001-of-00002.gguf", "0123abcd" * 5),
])
def test_resolve_url_is_hf_hub_url(repo: str, path: str, revision: str) -> None:
    from huggingface_hub import hf_hub_url

    for endpoint in ("https://huggingface.co", "http://127.0.0.1:8080"):
        assert hub.resolve_url(endpoint, repo, path, revision) == hf_hub_url(
            repo, path, revision=revision, endpoint=endpoint)


def test_a_pull_does_not_import_huggingface_hub(tmp_path: Path) -> None:
    """The HEAD and the GET go through airpods' own client (a loopback hub, no token)."""
    from tests.hf_server import FakeHub, write_gguf_blob

    source = write_gguf_blob(tmp_path / "src.gguf", 1 << 20)
    (tmp_path / "vol").mkdir()
    code = ("import sys; from pathlib import Path; from airpods.hub.client import Hub; "
            "from airpods.models.pull import pull; "
            "got = pull(sys.argv[2], Path(sys.argv[3]), hub=Hub(endpoint=sys.argv[1])); "
            "print(got.names, 'huggingface_hub' in sys.modules)")
    with FakeHub() as fake:
        fake.add("acme/Tiny-GGUF", "tiny.gguf", source)
        run = subprocess.run([sys.executable, "-c", code, fake.url, "acme/Tiny-GGUF/tiny.gguf",
                              str(tmp_path / "vol")], capture_output=True, text=True, timeout=60,
                             env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert run.stdout.split() == ["['tiny.gguf']", "False"], run.stderr
    assert (tmp_path / "vol" / "tiny.gguf").read_bytes() == source.read_bytes()


@pytest.mark.parametrize(("status", "code", "message", "expected"), [
    (404, "RepoNotFound", "", "no such repository"),
    (401, "", "", "no such repository"),
    (401, "", "Invalid credentials in Authorization header", "http://h answered HTTP 401"),
    (404, "EntryNotFound", "", "no such file in the repository"),
    (404, "RevisionNotFound", "", "no such revision"),
    (403, "GatedRepo", "", "the repository is gated"),
    (500, "", "", "http://h answered HTTP 500"),
])
def test_hub_answers_read_as_huggingface_hub_reads_them(status: int, code: str, message: str,
                                                        expected: str) -> None:
    import httpx

    headers = {k: v for k, v in (("X-Error-Code", code), ("X-Error-Message", message)) if v}
    answer = HubAnswer(httpx.Response(status, headers=headers))
    assert expected in hub._hub_error(answer, "o/r/x.gguf", "http://h").one_line()


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:99999", "ftp://mirror.example/",
                                      "http://:8080", "huggingface.co", "http://h:port"])
def test_a_bad_hf_endpoint_is_one_line_before_anything_is_touched(
        tmp_path: Path, endpoint: str) -> None:
    volume = tmp_path / "models"
    config = tmp_path / "c.toml"
    config.write_text(f'[services.llamacpp.volumes.models]\nsource = "{volume}"\n'
                      'target = "/models"\nmode = "ro"\n')
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HF_ENDPOINT": endpoint,
           "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "AIRPODS_ACCELERATOR": "cpu"}
    run = subprocess.run([sys.executable, "-m", "airpods", "--config", str(config), "models",
                          "pull", "acme/Tiny-GGUF/tiny.gguf"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [
        f"airpods: HF_ENDPOINT {endpoint.rstrip('/')!r} is not an http:// or https:// URL "
        "(set it to a hub or mirror, e.g. https://huggingface.co, or unset it)"]
    assert not volume.exists()
    with pytest.raises(UsageError, match="HF_ENDPOINT"):
        hub.Hub(endpoint=endpoint, token="")
