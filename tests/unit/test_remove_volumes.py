"""`stop --remove-volumes` picks volumes conservatively: models only when their service is named."""

from __future__ import annotations

from pathlib import Path

from airpods.cli.lifecycle import _volumes_to_remove
from airpods.resolving import resolve
from airpods.secrets import SecretStore


def resolved_with_ollama(tmp_path: Path, monkeypatch):
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var))
    user = tmp_path / "config.toml"
    user.write_text("[services.ollama]\nenabled = true\n")
    return resolve(user, environ={"AIRPODS_ACCELERATOR": "cpu"},
                   secrets=SecretStore(tmp_path / "secrets"))


def test_unnamed_stop_never_picks_model_volumes(tmp_path: Path, monkeypatch) -> None:
    resolved = resolved_with_ollama(tmp_path, monkeypatch)
    names = ["llamacpp", "ollama", "open-webui"]
    remove, kept = _volumes_to_remove(resolved, names, explicit=False)
    assert remove == ["airpods_webui_data"]  # not the GGUF volume, not Ollama's model store
    assert kept == {}


def test_named_model_service_volume_is_picked_unless_shared(tmp_path: Path, monkeypatch) -> None:
    resolved = resolved_with_ollama(tmp_path, monkeypatch)
    remove, kept = _volumes_to_remove(resolved, ["ollama"], explicit=True)
    assert remove == ["airpods_ollama_data"] and kept == {}
    # llamacpp-ui (disabled, but configured) mounts the same GGUF volume: it is kept.
    remove, kept = _volumes_to_remove(resolved, ["llamacpp"], explicit=True)
    assert remove == [] and kept == {"airpods_llamacpp_models": ["llamacpp-ui"]}
