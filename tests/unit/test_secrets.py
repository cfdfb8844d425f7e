"""Generated secrets: kept, never empty, never shown, never read from a path a name chose.

Every CLI test runs in process with XDG_CONFIG_HOME / XDG_DATA_HOME / XDG_CACHE_HOME in its own
tmp dir.
"""

from __future__ import annotations

import io
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from airpods.cli.output import make_console, podman_cli_lines, print_dry_run, spec_as_json
from airpods.config import load_config
from airpods.errors import AirpodsError, ConfigError
from airpods.host import HostFacts
from airpods.secrets import (
    MASK,
    SecretStore,
    is_secret_key,
    mask_argv,
    mask_text,
    mask_tree,
    secret_env_keys,
    secret_values,
)
from tests.specs import render_all
from tests.unit.test_config_cli import run

CPU = HostFacts(accelerator="cpu", reason="test", physical_cores=4, logical_cores=8)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("AIRPODS_ACCELERATOR", "cpu")
    for name in ("AIRPODS_CONFIG", "VISUAL", "EDITOR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def user_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xdg" / "airpods" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def secret_file(tmp_path: Path, service: str, var: str) -> Path:
    return tmp_path / "data" / "airpods" / "secrets" / service / var


def keep_secret(path: Path, text: str) -> Path:
    """A secret file as airpods keeps it: 0600 in 0700 directories."""
    for directory in (path.parent.parent, path.parent):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    path.chmod(0o600)
    return path


def load(tmp_path: Path, text: str, store: SecretStore) -> object:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_config(path, host=CPU, secrets=store, environ={})


def dry_run_text(specs: list) -> str:
    console = make_console(stderr=False)
    console.file = io.StringIO()
    print_dry_run(specs, console)
    return console.file.getvalue()


# --- 1. an empty secret file is no secret -----------------------------------------------------


@pytest.mark.parametrize("content", ["", "\n", "  \n\t\n"])
def test_empty_secret_file_gets_a_new_value_that_save_keeps(tmp_path: Path, content: str) -> None:
    root = tmp_path / "secrets"
    path = keep_secret(root / "llamacpp" / "LLAMA_API_KEY", content)
    store = SecretStore(root)
    loaded = load(tmp_path, "", store)
    key = loaded.config.services["llamacpp"].env["LLAMA_API_KEY"]
    assert len(key) >= 32
    # Open WebUI is given the same key llama-server checks.
    assert loaded.config.services["open-webui"].env["OPENAI_API_KEYS"] == key
    assert store.pending
    assert store.save() is True
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load(tmp_path, "", SecretStore(root))
    assert again.config.services["llamacpp"].env["LLAMA_API_KEY"] == key


def test_save_never_overwrites_a_value_saved_by_another_process(tmp_path: Path) -> None:
    root = tmp_path / "secrets"
    first, second = SecretStore(root), SecretStore(root)
    mine = second.get("llamacpp", "LLAMA_API_KEY")
    theirs = first.get("llamacpp", "LLAMA_API_KEY")
    assert first.save() is True
    assert second.save() is False  # the first to save wins
    assert (root / "llamacpp" / "LLAMA_API_KEY").read_text().strip() == theirs != mine
    assert second.get("llamacpp", "LLAMA_API_KEY") == theirs
    assert not [p for p in (root / "llamacpp").iterdir() if p.name.startswith(".")]


def test_save_into_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "secrets"
    store = SecretStore(root)
    store.get("llamacpp", "LLAMA_API_KEY")
    root.write_text("a file, not a directory\n")
    with pytest.raises(AirpodsError) as info:
        store.save()
    assert "cannot save the generated secret" in info.value.one_line()


# --- 2. every generated secret is secret, whatever its name ------------------------------------

SALT = """
[services.open-webui]
generated_secrets = ["WEBUI_SECRET_KEY", "WEBUI_AUTH_SALT"]
"""


def test_is_secret_key_and_secret_keys() -> None:
    assert is_secret_key("LLAMA_API_KEY") and is_secret_key("hf_token")
    assert not is_secret_key("WEBUI_AUTH_SALT")
    assert is_secret_key("WEBUI_AUTH_SALT", {"WEBUI_AUTH_SALT"})
    env = {"WEBUI_AUTH_SALT": "s", "PLAIN": "p", "A_PASSWORD": "x"}
    assert secret_env_keys(env, ["WEBUI_AUTH_SALT"]) == {"WEBUI_AUTH_SALT", "A_PASSWORD"}


def test_mask_tree_masks_generated_secrets_per_service() -> None:
    tree = {
        "runtime": {"network": "n"},
        "services": {
            "a": {"generated_secrets": ["SALT"], "env": {"SALT": "s1", "PLAIN": "p", "X": ""}},
            "b": {"generated_secrets": [], "env": {"SALT": "s2", "MY_TOKEN": "t"}},
        },
    }
    masked = mask_tree(tree)
    assert masked["services"]["a"]["env"] == {"SALT": MASK, "PLAIN": "p", "X": ""}
    assert masked["services"]["b"]["env"] == {"SALT": "s2", "MY_TOKEN": MASK}
    assert masked["runtime"] == {"network": "n"}
    args = {"api_key": "k", "hf_token": ["a", ""], "ctx_size": 8, "no_token_check": True}
    masked = mask_tree({"services": {"c": {"command_args": args}}})
    assert masked["services"]["c"]["command_args"] == {
        "api_key": MASK, "hf_token": [MASK, ""], "ctx_size": 8, "no_token_check": True
    }
    assert tree["services"]["a"]["env"]["SALT"] == "s1"  # the input is not changed


def test_generated_secret_with_a_plain_name_is_masked_in_the_dry_run(tmp_path: Path) -> None:
    loaded = load(tmp_path, SALT, SecretStore(tmp_path / "secrets"))
    salt = loaded.config.services["open-webui"].env["WEBUI_AUTH_SALT"]
    [spec] = render_all(loaded.config, loaded.host, ["open-webui"])
    assert "WEBUI_AUTH_SALT" in spec.secret_env
    assert spec.env["WEBUI_AUTH_SALT"] == salt  # the container still gets it
    text = dry_run_text([spec])
    assert salt not in text and f"WEBUI_AUTH_SALT={MASK}" in text
    blob = json.dumps(spec_as_json(spec))
    assert salt not in blob and f"WEBUI_AUTH_SALT={MASK}" in blob


def test_generated_secret_with_a_plain_name_is_masked_by_config_show(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    user_file(tmp_path, SALT)
    salt = "kept-salt-value-0123456789"
    path = secret_file(tmp_path, "open-webui", "WEBUI_AUTH_SALT")
    keep_secret(path, salt + "\n")
    code, out, err = run(capsys, "config", "get", "services.open-webui.env.WEBUI_AUTH_SALT")
    assert (code, out) == (0, salt + "\n"), err  # one key by name: printed, for scripts
    for args in (
        ("config", "show"),
        ("config", "show", "--json"),
        ("config", "get", "services.open-webui.env"),
        ("config", "get", "services.open-webui"),
        ("config", "get", "services", "--json"),
    ):
        code, out, err = run(capsys, *args)
        assert code == 0, err
        assert salt not in out, args
        assert MASK in out, args


# --- 3. a secret passed as a flag ---------------------------------------------------------------


def test_mask_argv() -> None:
    argv = ["--model", "/m.gguf", "--api-key", "s3cret", "--hf-token=hf_abc", "--port", "8080",
            "--api-key", "-starts-with-a-dash", "--token-file=", "-c", "4096", "--api-key"]
    assert mask_argv(argv) == [
        "--model", "/m.gguf", "--api-key", MASK, f"--hf-token={MASK}", "--port", "8080",
        "--api-key", MASK, "--token-file=", "-c", "4096", "--api-key",
    ]


FLAG_KEY = """
[services.llamacpp]
generated_secrets = []

[services.llamacpp.command_args]
api_key = "flag-key-123"
"""


def test_api_key_flag_is_masked_in_the_dry_run_and_given_to_open_webui(tmp_path: Path) -> None:
    loaded = load(tmp_path, FLAG_KEY, SecretStore(tmp_path / "secrets"))
    specs = render_all(loaded.config, loaded.host, ["llamacpp", "open-webui"])
    llama, webui = specs
    # The container still gets it, in the mounted secret file rather than its argv.
    assert [s.value for s in llama.secret_files] == ["flag-key-123\n"]
    assert "flag-key-123" not in llama.command and "--api-key" not in llama.command
    assert "LLAMA_API_KEY" not in llama.env
    assert webui.env["OPENAI_API_KEYS"] == "flag-key-123"
    text = dry_run_text(specs)
    assert "flag-key-123" not in text
    assert "--api-key-file /run/secrets/llama-api-key" in text
    for spec in specs:
        as_json = spec_as_json(spec)
        assert "flag-key-123" not in json.dumps(as_json)
        assert not any("flag-key-123" in line for line in podman_cli_lines(spec))
    assert spec_as_json(llama)["command"][-2:] == ["--api-key-file", "/run/secrets/llama-api-key"]


def test_api_key_flag_wins_over_the_env_key_for_open_webui(tmp_path: Path) -> None:
    # llama-server takes the flag over LLAMA_API_KEY: Open WebUI must send the flag's key.
    text = '[services.llamacpp.command_args]\napi_key = "flag-key,second-key"\n'
    loaded = load(tmp_path, text, SecretStore(tmp_path / "secrets"))
    assert loaded.config.services["llamacpp"].env["LLAMA_API_KEY"]  # still generated
    assert loaded.config.services["open-webui"].env["OPENAI_API_KEYS"] == "flag-key"


def test_api_key_flag_is_masked_by_config_show(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    user_file(tmp_path, FLAG_KEY)
    for args in (
        ("config", "show"),
        ("config", "show", "--json"),
        ("config", "get", "services.llamacpp.command_args"),
        ("config", "get", "services.open-webui.env"),
    ):
        code, out, err = run(capsys, *args)
        assert code == 0, err
        assert "flag-key-123" not in out, args
        assert MASK in out, args
    data = json.loads(run(capsys, "config", "show", "--json")[1])
    assert data["services"]["llamacpp"]["command_args"]["api_key"] == MASK
    assert data["services"]["llamacpp"]["command_args"]["ctx_size"] == 4096
    # Asked for by name, it is printed, for scripts.
    code, out, _ = run(capsys, "config", "get", "services.llamacpp.command_args.api_key")
    assert out == "flag-key-123\n"


def test_api_key_flag_in_start_dry_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    user_file(tmp_path, FLAG_KEY)
    for args in (("start", "--dry-run"), ("start", "--dry-run", "--json")):
        code, out, err = run(capsys, *args)
        assert code == 0, err
        assert "flag-key-123" not in out, args
        assert "--api-key" in out


# --- 4. the key `config get` prints is the key `start` uses ----------------------------------


def test_config_get_keeps_the_key_it_prints(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key_path = "services.llamacpp.env.LLAMA_API_KEY"
    code, first, err = run(capsys, "config", "get", key_path)
    assert code == 0, err
    code, second, _ = run(capsys, "config", "get", key_path)
    assert first == second and len(first.strip()) >= 32
    path = secret_file(tmp_path, "llamacpp", "LLAMA_API_KEY")
    assert path.read_text().strip() == first.strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # What `start` will use (the same loading, with its own store).
    loaded = load_config(None, host=CPU, secrets=SecretStore(path.parents[1]), environ={})
    assert loaded.config.services["llamacpp"].env["LLAMA_API_KEY"] == first.strip()


def test_config_show_keeps_secrets_and_a_broken_config_keeps_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    user_file(tmp_path, "[services.llamacpp]\nports = 3\n")
    code, _, _ = run(capsys, "config", "show")
    assert code == 2
    assert not (tmp_path / "data").exists()
    user_file(tmp_path, "")
    code, _, err = run(capsys, "config", "show")
    assert code == 0, err
    assert secret_file(tmp_path, "llamacpp", "LLAMA_API_KEY").read_text().strip()
    assert secret_file(tmp_path, "open-webui", "WEBUI_SECRET_KEY").read_text().strip()


# --- 5. names are checked before they become paths ---------------------------------------------


BAD_NAMES = ["", "../../etc/x", "A/B", "1BAD", "X\n", ".."]


class RecordingStore(SecretStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.asked: list[tuple[str, str]] = []

    def get(self, service: str, var: str) -> str:
        self.asked.append((service, var))
        return super().get(service, var)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_generated_secret_name_never_reaches_the_store(tmp_path: Path, name: str) -> None:
    root = tmp_path / "secrets"
    keep_secret(root / "llamacpp" / "LLAMA_API_KEY", "kept\n")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "x").write_text("not a secret\n")
    store = RecordingStore(root)
    text = f"[services.llamacpp]\ngenerated_secrets = [{json.dumps(name)}]\n"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, store)
    assert info.value.key_path == "services.llamacpp.generated_secrets[0]"
    assert "not a valid environment variable name" in info.value.message
    assert ("llamacpp", name) not in store.asked


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_generated_secret_name_is_a_config_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    # A secret already kept for the service: its directory exists ("" named it, once).
    kept = secret_file(tmp_path, "llamacpp", "LLAMA_API_KEY")
    keep_secret(kept, "kept\n")
    user_file(tmp_path, f"[services.llamacpp]\ngenerated_secrets = [{json.dumps(name)}]\n")
    for args in (("config", "validate"), ("config", "show"), ("start", "--dry-run")):
        code, out, err = run(capsys, *args)
        assert code == 2, (args, err)
        assert out == ""
        line = err.strip()
        assert "\n" not in line and "internal error" not in line
        assert line.startswith("airpods: config error: ")
        assert "services.llamacpp.generated_secrets[0]" in line
        assert "not a valid environment variable name" in line
    assert sorted(p.name for p in kept.parent.parent.rglob("*")) == ["LLAMA_API_KEY", "llamacpp"]


def test_bad_service_name_is_never_a_secret_path(tmp_path: Path) -> None:
    text = """
[services."../evil"]
image = "docker.io/library/busybox:latest"
pod = "evil"
container = "evil"
generated_secrets = ["TOKEN"]
"""
    store = RecordingStore(tmp_path / "secrets")
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, store)
    assert "service name" in info.value.one_line()
    assert store.asked and all(service != "../evil" for service, _ in store.asked)


def test_unreadable_secret_is_a_config_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = secret_file(tmp_path, "llamacpp", "LLAMA_API_KEY")
    keep_secret(path, "")
    path.unlink()
    path.mkdir(mode=0o700)  # not a file
    code, out, err = run(capsys, "config", "validate")
    assert code == 2 and out == ""
    line = err.strip()
    assert "\n" not in line and "internal error" not in line
    assert line.startswith("airpods: config error: ")
    assert "services.llamacpp.generated_secrets[0]" in line
    assert "cannot read the generated secret" in line and "LLAMA_API_KEY" in line


# --- 6. stored secrets are untrusted: no links, not another user's, not open to others ----------

KEY = "kept-key-0123456789abcdef"


def cli_lines(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code, out, err = run(capsys, *args)
    return code, out, err.strip()


def assert_one_config_line(err: str, *pieces: str) -> None:
    assert "\n" not in err and "internal error" not in err, err
    assert err.startswith("airpods: config error: "), err
    for piece in pieces:
        assert piece in err, (piece, err)


def test_symlinked_secret_file_is_refused_and_its_target_untouched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere" / "id_rsa"
    target.parent.mkdir()
    target.write_text(KEY + "\n")
    target.chmod(0o644)
    path = secret_file(tmp_path, "llamacpp", "LLAMA_API_KEY")
    keep_secret(path, "")
    path.unlink()
    path.symlink_to(target)
    for args in (("config", "validate"), ("config", "show"), ("start", "--dry-run")):
        code, out, err = cli_lines(capsys, *args)
        assert code == 2 and out == "", (args, err)
        assert_one_config_line(err, "services.llamacpp.generated_secrets[0]",
                               f"{path} is a symbolic link", f"remove the link {path}")
        assert KEY not in err
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # never chmod a link's target
    assert target.read_text() == KEY + "\n"
    assert path.is_symlink()


@pytest.mark.parametrize("level", ["root", "service"])
def test_symlinked_secret_directory_is_refused_for_reading_and_saving(
    tmp_path: Path, level: str
) -> None:
    root = tmp_path / "secrets"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    elsewhere.chmod(0o755)
    if level == "root":
        root.symlink_to(elsewhere)
        link = root
    else:
        root.mkdir(mode=0o700)
        link = root / "llamacpp"
        link.symlink_to(elsewhere)
    store = SecretStore(root)
    with pytest.raises(OSError) as info:
        store.get("llamacpp", "LLAMA_API_KEY")
    assert f"{link} is a symbolic link" in str(info.value.strerror)
    # Saving a value generated before the link appeared is refused as well, in one line.
    store = SecretStore(tmp_path / "fresh")
    store.get("llamacpp", "LLAMA_API_KEY")
    store.root = root
    store._pending = {store.path("llamacpp", "LLAMA_API_KEY"): "x" * 43}
    with pytest.raises(AirpodsError) as saved:
        store.save()
    line = saved.value.one_line()
    assert "cannot save the generated secret" in line and f"{link} is a symbolic link" in line
    assert "\n" not in line
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o755  # never chmod a link's target
    assert list(elsewhere.rglob("*")) == []


def test_secrets_open_to_others_are_tightened_with_a_note(tmp_path: Path) -> None:
    root = tmp_path / "secrets"
    path = keep_secret(root / "llamacpp" / "LLAMA_API_KEY", KEY + "\n")
    path.chmod(0o644)
    path.parent.chmod(0o775)
    root.chmod(0o757)
    notes: list[str] = []
    assert SecretStore(root, note=notes.append).get("llamacpp", "LLAMA_API_KEY") == KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert len(notes) == 3 and all("tightened" in note for note in notes), notes
    assert any(str(path) in note and "0644" in note for note in notes)
    notes.clear()
    SecretStore(root, note=notes.append).get("llamacpp", "LLAMA_API_KEY")
    assert notes == []  # nothing left to say


def test_a_new_secret_is_private_whatever_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0)
    try:
        store = SecretStore(tmp_path / "secrets", note=pytest.fail)
        store.get("llamacpp", "LLAMA_API_KEY")
        assert store.save() is True
    finally:
        os.umask(old)
    path = tmp_path / "secrets" / "llamacpp" / "LLAMA_API_KEY"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0,
                    reason="chown to another user needs root")
@pytest.mark.parametrize("what", ["file", "service directory", "root directory"])
def test_secret_owned_by_another_user_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, what: str
) -> None:
    import os

    path = keep_secret(secret_file(tmp_path, "llamacpp", "LLAMA_API_KEY"), KEY + "\n")
    foreign = {"file": path, "service directory": path.parent,
               "root directory": path.parent.parent}[what]
    os.chown(foreign, 1234, 1234)
    code, out, err = cli_lines(capsys, "config", "show")
    assert code == 2 and out == ""
    assert_one_config_line(err, f"{foreign} is owned by uid 1234, not by you (uid 0)")
    assert KEY not in err
    assert os.stat(foreign).st_uid == 1234  # refused, not taken over
    assert path.read_text() == KEY + "\n"


@pytest.mark.parametrize("content", ["two words\n", "line\nline\n", "tab\there", "nul\x00x",
                                     "bell\x07ring"])
def test_key_with_whitespace_inside_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str
) -> None:
    path = keep_secret(secret_file(tmp_path, "llamacpp", "LLAMA_API_KEY"), content)
    code, out, err = cli_lines(capsys, "config", "validate")
    assert code == 2 and out == ""
    assert_one_config_line(err, str(path), "inside the key", f"delete {path} to generate a new key")
    assert path.read_text() == content  # refused, not replaced


def test_oversized_or_special_secret_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import os

    path = keep_secret(secret_file(tmp_path, "llamacpp", "LLAMA_API_KEY"), "k" * 5000)
    code, _, err = cli_lines(capsys, "config", "validate")
    assert code == 2
    assert_one_config_line(err, "larger than 4096 bytes")
    path.unlink()
    os.mkfifo(path, 0o600)  # a FIFO: refused at once, never a hang
    code, _, err = cli_lines(capsys, "config", "validate")
    assert code == 2
    assert_one_config_line(err, f"{path} is not a regular file")


@pytest.mark.parametrize("value", ['"two words"', '"trailing\\n"', '"{{ \'a b\' }}"'])
def test_user_set_key_with_whitespace_is_a_config_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str
) -> None:
    user_file(tmp_path, f"\n[services.llamacpp.env]\nLLAMA_API_KEY = {value}\n")
    code, out, err = cli_lines(capsys, "config", "validate")
    assert code == 2 and out == ""
    assert_one_config_line(err, "config.toml:3: services.llamacpp.env.LLAMA_API_KEY:",
                           "whitespace")


# --- 7. an empty generated secret is an error, not a server without auth -----------------------


@pytest.mark.parametrize("value", ['""', '"{{ \'\' }}"'])
def test_empty_generated_secret_is_a_config_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str
) -> None:
    user_file(tmp_path, f"[services.llamacpp.env]\nLLAMA_API_KEY = {value}\n")
    for args in (("config", "validate"), ("start", "--dry-run"), ("config", "show")):
        code, out, err = cli_lines(capsys, *args)
        assert code == 2 and out == "", (args, err)
        assert_one_config_line(
            err, "config.toml:2: services.llamacpp.env.LLAMA_API_KEY:",
            "generated secret set to an empty string",
            "remove the line to use the generated key",
            "generated_secrets = [] to run without a key",
        )
    assert not (tmp_path / "data").exists()


def test_empty_key_without_generated_secrets_runs_without_a_key(tmp_path: Path) -> None:
    text = '[services.llamacpp]\ngenerated_secrets = []\n'
    text += '[services.llamacpp.env]\nLLAMA_API_KEY = ""\n'
    loaded = load(tmp_path, text, SecretStore(tmp_path / "secrets"))
    assert "LLAMA_API_KEY" not in loaded.config.services["llamacpp"].env


# --- 8. masking by value: a key copied into another variable is never printed -------------------

COPIED = """
[services.llamacpp.env]
AUTHORIZATION = "Bearer {{ services.llamacpp.env.LLAMA_API_KEY }}"

[services.open-webui.env]
UPSTREAM_AUTH = "{{ services.llamacpp.env.LLAMA_API_KEY }}"
"""


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "AIRPODS_ACCELERATOR": "cpu"}
    env.pop("AIRPODS_CONFIG", None)
    return env


def airpods(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "airpods", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_copied_key_is_masked_everywhere_through_the_real_cli(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    user_file(tmp_path, COPIED)
    got = airpods(cli_env, "config", "get", "services.llamacpp.env.LLAMA_API_KEY")
    assert got.returncode == 0, got.stderr
    key = got.stdout.strip()
    assert len(key) >= 32
    # The containers still get it.
    loaded = load_config(None, host=CPU, secrets=SecretStore(tmp_path / "data" / "airpods" /
                                                              "secrets"), environ={})
    assert loaded.config.services["llamacpp"].env["AUTHORIZATION"] == f"Bearer {key}"
    for args, shown in (
        (("config", "show"), 'AUTHORIZATION = "Bearer ****"'),
        (("config", "show", "--json"), '"AUTHORIZATION": "Bearer ****"'),
        (("config", "get", "services.llamacpp.env"), 'AUTHORIZATION = "Bearer ****"'),
        (("config", "get", "services", "--json"), '"UPSTREAM_AUTH": "****"'),
        (("start", "--dry-run"), "AUTHORIZATION=Bearer ****"),
        (("start", "--dry-run"), "-e 'AUTHORIZATION=Bearer ****'"),
        (("start", "--dry-run"), "UPSTREAM_AUTH=****"),
        (("start", "--dry-run", "--json"), '"AUTHORIZATION": "Bearer ****"'),
        (("start", "--dry-run", "--json"), "-e 'AUTHORIZATION=Bearer ****'"),
        # Open WebUI alone: llamacpp's key is still known, and masked.
        (("start", "open-webui", "--dry-run", "--json"), '"UPSTREAM_AUTH": "****"'),
    ):
        result = airpods(cli_env, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert key not in result.stdout and key not in result.stderr, args
        assert shown in result.stdout, (args, shown)


def test_a_copied_key_in_an_error_message_is_masked(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    user_file(tmp_path, '[services.llamacpp]\nimage = "{{ services.llamacpp.env.LLAMA_API_KEY '
                        '}}/not an image"\n')
    keep_secret(secret_file(tmp_path, "llamacpp", "LLAMA_API_KEY"), KEY + "\n")
    for args in (("config", "validate"), ("start", "--dry-run")):
        result = airpods(cli_env, *args)
        assert result.returncode == 2
        assert KEY not in result.stderr, args
        assert "'****/not an image' is not a valid image reference" in result.stderr


def test_a_flag_key_copied_by_a_template_is_masked(tmp_path: Path) -> None:
    text = FLAG_KEY + '\n[services.llamacpp.env]\n'
    text += 'AUTH = "Bearer {{ services.llamacpp.command_args.api_key }}"\n'
    loaded = load(tmp_path, text.replace("flag-key-123", "flag-key-1234,other-key-5678"),
                  SecretStore(tmp_path / "secrets"))
    specs = render_all(loaded.config, loaded.host, ["llamacpp", "open-webui"])
    assert specs[0].env["AUTH"] == "Bearer flag-key-1234,other-key-5678"
    text = dry_run_text(specs)
    blob = json.dumps([spec_as_json(s, secret_values(*specs)) for s in specs])
    for out in (text, blob):
        assert "flag-key-1234" not in out and "other-key-5678" not in out
    assert "AUTH=Bearer ****" in text


def test_secret_files_and_short_values() -> None:
    from airpods.spec import ContainerSpec, SecretFile

    spec = ContainerSpec(
        service="s", kind="generic", image="i", image_reason="r", accelerator="cpu", pod="p",
        container="c", network="n", network_aliases=(), ports=(), mounts=(),
        env={"A_KEY": "1", "PLAIN": "secret-in-a-file-0123 and 1"}, command=("--x", "1"),
        secret_env=frozenset({"A_KEY"}),
        secret_files=(SecretFile("airpods-s-k", "/run/secrets/k", "secret-in-a-file-0123"),),
    )
    assert secret_values(spec) == {"secret-in-a-file-0123"}  # "1" is too short to mask by value
    assert mask_text("x secret-in-a-file-0123 1", secret_values(spec)) == f"x {MASK} 1"
    assert spec_as_json(spec)["env"] == {"A_KEY": MASK, "PLAIN": f"{MASK} and 1"}


def test_status_masks_a_copied_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pure row building: Podman is replaced by an empty one (the real one is in integration).
    from tests.fake_podman import use_fake_podman

    use_fake_podman(monkeypatch)
    user_file(tmp_path, '[services.llamacpp.command_args]\nalias = "m-{{ '
                        'services.llamacpp.env.LLAMA_API_KEY }}"\n')
    keep_secret(secret_file(tmp_path, "llamacpp", "LLAMA_API_KEY"), KEY + "\n")
    for args in (("status",), ("status", "--json")):
        code, out, err = run(capsys, *args)
        assert code == 1, err  # nothing runs
        assert KEY not in out and KEY not in err
        assert f"m-{MASK}" in out


def test_progress_and_error_lines_mask_every_secret_seen(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from airpods.cli.output import ConsoleReporter
    from airpods.secrets import remember

    remember(["reporter-secret-1234"])
    console = make_console(stderr=False)
    console.file = io.StringIO()
    ConsoleReporter(console).note("a server said reporter-secret-1234")
    assert console.file.getvalue().strip() == f"note: a server said {MASK}"
    # The CLI's last-resort handler masks them in error lines too.
    user_file(tmp_path, '[services.llamacpp]\nimage = "reporter-secret-1234 x"\n')
    code, out, err = run(capsys, "config", "validate")
    assert code == 2 and "reporter-secret-1234" not in err and f"'{MASK} x'" in err
