"""`airpods config ...` through the real entry point (in process, so it stays fast)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from airpods.cli import main


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    # `config show` / `config get` save the secrets they generate: never in the real home.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("AIRPODS_CONFIG", "AIRPODS_ACCELERATOR", "VISUAL", "EDITOR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def user_file(tmp_path: Path) -> Path:
    return tmp_path / "xdg" / "airpods" / "config.toml"


def test_path_reports_the_xdg_location(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "config", "path")
    assert code == 0
    assert out.strip() == str(user_file(tmp_path))
    assert "does not exist" in err


def test_validate_ok_lists_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "config", "validate")
    assert code == 0 and out.startswith("ok: ") and "airpods.toml" in out


def test_set_then_get_then_show(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "config", "set", "services.llamacpp.command_args.ctx_size", "8192")
    assert code == 0, err
    path = user_file(tmp_path)
    assert out.strip() == f"set services.llamacpp.command_args.ctx_size = 8192 in {path}"
    code, out, _ = run(capsys, "config", "get", "services.llamacpp.command_args.ctx_size")
    assert (code, out) == (0, "8192\n")
    code, out, _ = run(capsys, "config", "get", "services.llamacpp.ports[0]", "--json")
    assert json.loads(out) == {
        "host": 8080,
        "container": 8080,
        "host_ip": "127.0.0.1",
        "protocol": "tcp",
    }
    code, out, _ = run(capsys, "config", "show")
    assert code == 0 and "ctx_size = 8192" in out and "{{" not in out


def test_get_unknown_key_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "config", "get", "services.llamacpp.comand_args")
    assert code == 2
    assert err.strip() == (
        "airpods: no such key: services.llamacpp.comand_args (did you mean 'command_args'?)"
    )


def test_show_masks_secrets(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run(capsys, "config", "set", "services.llamacpp.env.LLAMA_API_KEY", "s3cret-value")
    for args in (
        ("config", "show"),
        ("config", "show", "--json"),
        ("config", "get", "services.open-webui.env"),
    ):
        code, out, _ = run(capsys, *args)
        assert code == 0
        assert "s3cret-value" not in out
        assert "****" in out
    data = json.loads(run(capsys, "config", "show", "--json")[1])
    assert data["services"]["open-webui"]["env"]["OPENAI_API_KEYS"] == "****"
    assert data["services"]["open-webui"]["env"]["ENABLE_OPENAI_API"] == "True"
    # Asking for the one secret by name prints it, for scripts.
    code, out, _ = run(capsys, "config", "get", "services.llamacpp.env.LLAMA_API_KEY")
    assert out == "s3cret-value\n"


def test_set_invalid_is_one_line_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capsys, "config", "init")
    path = user_file(tmp_path)
    before = path.read_bytes()
    code, out, err = run(
        capsys, "config", "set", "services.llamacpp.ports", "[{ host = 70000, container = 8080 }]"
    )
    assert code == 2
    assert err.count("\n") == 1
    assert "services.llamacpp.ports[0].host" in err and str(path) in err
    assert path.read_bytes() == before


def test_init_refuses_without_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "config", "init")
    assert code == 0 and str(user_file(tmp_path)) in out
    user_file(tmp_path).write_text("# mine\n")
    code, _, err = run(capsys, "config", "init")
    assert code == 2 and "already exists" in err and "--force" in err
    assert user_file(tmp_path).read_text() == "# mine\n"
    assert run(capsys, "config", "init", "--force")[0] == 0
    assert user_file(tmp_path).read_text() != "# mine\n"


def test_explicit_config_flag_and_env(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.toml"
    other.write_text("[cli]\nfailure_log_lines = 7\n")
    assert run(capsys, "--config", str(other), "config", "get", "cli.failure_log_lines")[1] == "7\n"
    monkeypatch.setenv("AIRPODS_CONFIG", str(other))
    assert run(capsys, "config", "get", "cli.failure_log_lines")[1] == "7\n"
    code, _, err = run(capsys, "--config", str(tmp_path / "missing.toml"), "config", "show")
    assert code == 2 and "missing.toml" in err and "file not found" in err


def _editor(tmp_path: Path, text: str) -> str:
    script = tmp_path / "fake-editor"
    script.write_text(f"#!{sys.executable}\nimport sys\nopen(sys.argv[1], 'w').write({text!r})\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_edit_creates_validates_and_reports(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDITOR", _editor(tmp_path, "[cli]\nfailure_log_lines = 9\n"))
    code, out, _ = run(capsys, "config", "edit")
    assert code == 0 and out.startswith("ok: ")
    assert run(capsys, "config", "get", "cli.failure_log_lines")[1] == "9\n"

    monkeypatch.setenv("VISUAL", _editor(tmp_path, "[cli]\n\nfailure_log_lines = -3\n"))
    code, _, err = run(capsys, "config", "edit")
    assert code == 2 and err.count("\n") == 1
    assert f"{user_file(tmp_path)}:3: cli.failure_log_lines" in err
    assert "saved but invalid" in err


def test_edit_with_a_missing_editor(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDITOR", str(tmp_path / "no-such-editor"))
    code, _, err = run(capsys, "config", "edit")
    assert code == 2 and "cannot run editor" in err


def test_show_toml_parses_back_to_the_json(capsys: pytest.CaptureFixture[str]) -> None:
    import tomlkit

    as_toml = tomlkit.parse(run(capsys, "config", "show")[1]).unwrap()
    as_json = json.loads(run(capsys, "config", "show", "--json")[1])

    def no_nulls(data: object) -> object:  # TOML has no null: unset keys are left out
        if isinstance(data, dict):
            return {k: no_nulls(v) for k, v in data.items() if v is not None}
        return data

    assert as_toml == no_nulls(as_json)


def test_get_list_prints_inline_toml(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "get", "services.llamacpp.ports")
    assert code == 0
    assert out.startswith("[{") and "host = 8080" in out


@pytest.mark.parametrize("value", ["-1", "-0.5"])
def test_set_takes_a_negative_number_without_double_dash(capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path, value: str) -> None:
    """Issue 23: `config set KEY -1` was "No such option: -1"; now -1 is the value."""
    key = "services.llamacpp.command_args.temp"
    code, out, err = run(capsys, "config", "set", key, value)
    assert code == 0, err
    assert f"{key} = {value}" in out
    assert f"temp = {value}" in user_file(tmp_path).read_text()


def test_set_a_negative_infinity_reaches_validation(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "config", "set", "services.llamacpp.command_args.temp", "-inf")
    assert code == 2 and "No such option" not in err and "finite number" in err, err
