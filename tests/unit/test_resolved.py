"""The resolved-services stage and its on-disk cache (airpods.resolved, .resolving, .cache).

Every test runs with XDG_CACHE_HOME / XDG_CONFIG_HOME / XDG_DATA_HOME in its own tmp dir.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from airpods import cache as C
from airpods import host as host_module
from airpods import kinds
from airpods import resolved as R
from airpods import resolving as RV
from airpods.errors import ConfigError, UsageError
from airpods.host import GpuInfo, HostFacts
from airpods.record import replace
from airpods.secrets import SecretStore

USER = '[services.llamacpp.command_args]\nctx_size = 4096\n'


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    out = {name: tmp_path / name for name in ("cache", "config", "data")}
    monkeypatch.setenv("XDG_CACHE_HOME", str(out["cache"]))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(out["config"]))
    monkeypatch.setenv("XDG_DATA_HOME", str(out["data"]))
    for name in ("AIRPODS_ACCELERATOR", "AIRPODS_NO_CACHE", "AIRPODS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    out["user"] = tmp_path / "user.toml"
    out["user"].write_text(USER)
    out["entries"] = out["cache"] / "airpods" / "resolved"
    return out


@pytest.fixture
def misses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the full (uncached) resolutions."""
    calls: list[int] = []
    real = RV._resolve_uncached

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(RV, "_resolve_uncached", counting)
    return calls


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "AIRPODS_ACCELERATOR": "cpu", **extra}


def entries(dirs: dict[str, Path]) -> list[Path]:
    return sorted(dirs["entries"].glob("*.json")) if dirs["entries"].exists() else []


def saved_store() -> SecretStore:
    """A store whose generated secrets are on disk, as after a `start` (no entry written)."""
    store = SecretStore()
    RV.resolve(None, environ=env(AIRPODS_NO_CACHE="1"), secrets=store)
    store.save()
    return SecretStore()


def resolve(dirs: dict[str, Path], store: SecretStore | None = None, *, unsaved: bool = False,
            **extra: str) -> R.Resolved:
    return RV.resolve(dirs["user"], environ=env(**extra), cache_unsaved=unsaved,
                     secrets=store if store is not None else SecretStore())


def key_of(resolved: R.Resolved) -> str | None:
    return kinds.get("llama-server").api_key(resolved.specs["llamacpp"])


def llamacpp_argv(resolved: R.Resolved) -> tuple[str, ...]:
    return resolved.specs["llamacpp"].command


# ------------------------------------------------------------------------------------ hits


def test_second_resolve_is_a_hit_and_equal(dirs, misses) -> None:
    store = saved_store()
    first = resolve(dirs, store)
    assert len(entries(dirs)) == 1 and len(misses) == 2  # saved_store's, then this one
    second = resolve(dirs)
    assert len(misses) == 2
    assert second == first
    assert "4096" in llamacpp_argv(second)
    assert list(second.services) == list(first.services) == list(first.specs)
    assert second.user_path == dirs["user"]


def test_resolved_has_every_service_and_the_settings(dirs) -> None:
    saved_store()
    resolved = resolve(dirs)
    assert list(resolved.services) == ["llamacpp", "llamacpp-ui", "ollama", "open-webui",
                                      "gateway"]
    assert set(resolved.specs) == set(resolved.services)  # disabled ones are rendered too
    assert resolved.settings == R.Settings("airpods", 10.0, 3, 30)
    assert resolved.enabled_services() == [n for n, s in resolved.services.items() if s.enabled]
    llama = resolved.services["llamacpp"]
    assert llama.kind == "llama-server" and llama.container == "airpods-llamacpp-server"
    assert ("airpods_llamacpp_models", False) in llama.volumes


# ---------------------------------------------------------------------------------- misses


def test_one_byte_edit_of_the_user_file_is_a_miss(dirs, misses) -> None:
    saved_store()
    resolve(dirs)
    before = os.stat(dirs["user"])
    dirs["user"].write_text(USER.replace("4096", "4097"))
    os.utime(dirs["user"], ns=(before.st_atime_ns, before.st_mtime_ns))  # content, not mtime
    count = len(misses)
    after = resolve(dirs)
    assert len(misses) == count + 1
    assert "4097" in llamacpp_argv(after) and "4096" not in llamacpp_argv(after)
    assert resolve(dirs) == after and len(misses) == count + 1


def test_accelerator_override_is_a_miss(dirs, misses) -> None:
    saved_store()
    forced = resolve(dirs)
    count = len(misses)
    auto = resolve(dirs, AIRPODS_ACCELERATOR="auto")
    assert len(misses) == count + 1
    assert forced.host.reason == "runtime.accelerator = 'cpu'"
    assert auto.host.reason != forced.host.reason
    assert resolve(dirs, AIRPODS_ACCELERATOR="auto") == auto and len(misses) == count + 1


def test_changed_host_facts_are_a_miss(dirs, misses, monkeypatch) -> None:
    saved_store()
    resolve(dirs)
    count = len(misses)
    real = host_module.detect_host

    def more_cores(requested: str = "auto", **kw) -> HostFacts:
        facts = real(requested, **kw)
        return replace(facts, physical_cores=facts.physical_cores + 7)

    monkeypatch.setattr(host_module, "detect_host", more_cores)
    changed = resolve(dirs)
    assert len(misses) == count + 1
    argv = llamacpp_argv(changed)
    assert argv[argv.index("--threads") + 1] == str(changed.host.physical_cores)


def test_deleted_secret_file_is_a_miss_and_the_new_key_is_cached_pending(dirs, misses) -> None:
    saved_store()
    cached = resolve(dirs)
    old_key = key_of(cached)
    secret = SecretStore().path("llamacpp", "LLAMA_API_KEY")
    secret.unlink()

    store = SecretStore()
    count = len(misses)
    fresh = resolve(dirs, store, unsaved=True)  # as `status` does
    new_key = key_of(fresh)
    assert len(misses) == count + 1 and new_key != old_key
    assert store._pending  # generated in memory only
    assert not secret.exists()

    # The next command reads the entry, and the new key is pending in its store too.
    second = SecretStore()
    assert key_of(resolve(dirs, second)) == new_key and len(misses) == count + 1
    assert second.save() and secret.read_text().strip() == new_key
    again = SecretStore()
    assert resolve(dirs, again) == fresh and not again.pending
    assert len(misses) == count + 1


def test_changed_secret_file_is_a_miss(dirs, misses) -> None:
    saved_store()
    resolve(dirs)
    SecretStore().path("llamacpp", "LLAMA_API_KEY").write_text("chosen-by-hand\n")
    count = len(misses)
    assert key_of(resolve(dirs)) == "chosen-by-hand"
    assert len(misses) == count + 1


def test_secrets_no_file_holds_yet_are_cached_and_handed_back_pending(dirs, misses) -> None:
    # Any other command before the first `start` (`start --dry-run`) writes nothing.
    resolve(dirs)
    assert entries(dirs) == [] and not (dirs["data"] / "airpods").exists()
    # `status` before the first `start`: every secret is generated and none is saved.
    store = SecretStore()
    first = resolve(dirs, store, unsaved=True)
    assert store._pending and key_of(first) and len(entries(dirs)) == 1
    secret = store.path("llamacpp", "LLAMA_API_KEY")
    assert not secret.exists()  # the cache holds the value, the secrets directory nothing

    second = SecretStore()
    assert resolve(dirs, second) == first and len(misses) == 2  # a hit
    assert second._pending == store._pending  # as if the loader had generated them
    assert second.save() and secret.read_text().strip() == key_of(first)  # what specs use
    third = SecretStore()
    assert resolve(dirs, third) == first and not third.pending and len(misses) == 2

    secret.write_text("chosen-by-hand\n")  # another value saved since: a miss
    assert key_of(resolve(dirs)) == "chosen-by-hand" and len(misses) == 3


def test_a_revoked_client_key_is_never_cached_as_kept(dirs, misses) -> None:
    clients = "[services.gateway.clients.laptop]\n[services.gateway.clients.phone]\n"
    dirs["user"].write_text(USER + clients)
    store = SecretStore()
    resolve(dirs, store)
    assert store.save()
    phone = store.path("gateway", "CLIENT_PHONE")
    assert phone.exists()
    resolve(dirs)  # the saved keys: an entry
    written = {p: p.read_bytes() for p in entries(dirs)}

    dirs["user"].write_text(USER + clients.split("\n")[0] + "\n")  # the phone's key revoked
    revoking = SecretStore()
    count = len(misses)
    resolve(dirs, revoking)
    assert revoking.pending and len(misses) == count + 1
    # A hit could not delete the phone's file: no entry until the store saved the deletion.
    assert {p: p.read_bytes() for p in entries(dirs)} == written
    resolve(dirs)
    assert len(misses) == count + 2
    assert revoking.save() and not phone.exists()
    resolve(dirs)
    resolve(dirs)
    assert len(misses) == count + 3


def test_no_cache_variable_turns_it_off(dirs, misses) -> None:
    saved_store()
    count = len(misses)
    resolve(dirs, AIRPODS_NO_CACHE="1")
    resolve(dirs, AIRPODS_NO_CACHE="1")
    assert len(misses) == count + 2 and entries(dirs) == []


def test_corrupt_entries_are_ignored(dirs, misses) -> None:
    saved_store()
    good = resolve(dirs)
    [entry] = entries(dirs)
    text = entry.read_text()
    outer = json.loads(text)
    bad_body = json.dumps({**json.loads(outer["body"]), "resolved": {"specs": 3}})
    for broken in ("", "{not json", text[: len(text) // 2], json.dumps({"format": 1}),
                   json.dumps({**outer, "body": bad_body}), "\x00\xff"):
        entry.write_text(broken)
        count = len(misses)
        assert resolve(dirs) == good
        assert len(misses) == count + 1
        assert entry.read_text() == text  # rewritten whole
    count = len(misses)
    assert resolve(dirs) == good and len(misses) == count


def test_an_entry_others_may_write_is_ignored(dirs, misses) -> None:
    saved_store()
    resolve(dirs)
    [entry] = entries(dirs)
    entry.chmod(0o666)
    count = len(misses)
    resolve(dirs)
    assert len(misses) == count + 1
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600


def test_config_errors_are_reported_and_nothing_is_written(dirs) -> None:
    saved_store()
    from airpods.config.loader import load_config

    dirs["user"].write_text("[cli]\n\nmax_concurrent_pulls = 99\n")
    with pytest.raises(ConfigError) as caught:
        resolve(dirs)
    with pytest.raises(ConfigError) as expected:
        load_config(dirs["user"], environ=env(), secrets=SecretStore())
    assert caught.value.one_line() == expected.value.one_line()
    assert caught.value.file == str(dirs["user"]) and caught.value.line == 3
    assert entries(dirs) == []
    missing = dirs["user"].with_name("absent.toml")
    with pytest.raises(ConfigError, match="file not found"):
        RV.resolve(missing, environ=env(), secrets=SecretStore())


def test_an_explicit_missing_file_is_an_error_even_when_the_default_is_cached(dirs) -> None:
    saved_store()
    default = RV.resolve(None, environ=env(), secrets=SecretStore())
    assert not default.user_path.exists()
    with pytest.raises(ConfigError, match="file not found"):
        RV.resolve(default.user_path, environ=env(), secrets=SecretStore())


# ----------------------------------------------------------------------------- the files


def test_entry_is_0600_in_a_0700_directory(dirs) -> None:
    saved_store()
    resolve(dirs)
    [entry] = entries(dirs)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(dirs["entries"].stat().st_mode) == 0o700
    assert [p.name for p in dirs["entries"].iterdir()] == [entry.name]  # no temporary left


def test_only_the_newest_entries_are_kept(dirs) -> None:
    saved_store()
    for size in range(1000, 1000 + C.KEEP_ENTRIES + 3):
        dirs["user"].write_text(USER.replace("4096", str(size)))
        resolve(dirs)
    assert len(entries(dirs)) == C.KEEP_ENTRIES


def through_json(resolved: R.Resolved) -> R.Resolved:
    """What a cache entry holds, read back (cache.store writes it this way)."""
    return R.from_dict(json.loads(json.dumps(R.to_dict(resolved), sort_keys=True)))


def test_round_trip_is_exact_for_the_default_config(dirs) -> None:
    saved_store()
    resolved = RV.resolve(None, environ=dict(os.environ), secrets=SecretStore())
    assert through_json(resolved) == resolved


def test_round_trip_is_exact_with_a_gpu(dirs, monkeypatch) -> None:
    gpu = GpuInfo("nvidia", "NVIDIA H100", devices=("nvidia.com/gpu=all",), group_add=("44",),
                  usable=True, problem=None)
    facts = HostFacts("cuda", "NVIDIA H100 with a CDI spec", 8, 16, gpu=gpu,
                      selinux_enforcing=True, notes=("a note",))
    monkeypatch.setattr(host_module, "detect_host", lambda requested="auto", **kw: facts)
    resolved = RV.resolve(dirs["user"], environ=dict(os.environ), secrets=SecretStore())
    spec = resolved.specs["llamacpp"]
    assert spec.devices and spec.health and spec.secret_files
    assert through_json(resolved) == resolved
    assert through_json(resolved).host.gpu == gpu


# ------------------------------------------------------------------------- choosing services


def test_select_services_orders_and_reports_unknown_names(dirs) -> None:
    saved_store()
    resolved = resolve(dirs)
    assert R.select_services(resolved, ("open-webui", "llamacpp"))[-1] == "open-webui"
    assert R.select_services(resolved, ()) == R.order_by_dependencies(
        resolved, resolved.enabled_services()
    )
    with pytest.raises(UsageError, match="unknown service 'llamacp'") as caught:
        R.select_services(resolved, ("llamacp",))
    assert "did you mean 'llamacpp'?" in (caught.value.hint or "")


# ------------------------------------------------------------------ the fast path, for real


def test_warm_dry_run_imports_no_pydantic_jinja_or_tomlkit(dirs, tmp_path) -> None:
    saved_store()  # secrets on disk: the first run may cache what it resolved
    run_env = {k: v for k, v in os.environ.items() if k not in ("AIRPODS_CONFIG",)}
    run_env["AIRPODS_ACCELERATOR"] = "cpu"

    def dry_run(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *flags, "-m", "airpods", "start", "llamacpp", "--dry-run"],
            env=run_env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )

    cold = dry_run()
    assert cold.returncode == 0, cold.stderr
    assert len(entries(dirs)) == 1
    warm = dry_run("-X", "importtime")
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout == cold.stdout and "--api-key-file /run/secrets/llama-api-key" in warm.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in warm.stderr.splitlines()
                if line.startswith("import time:")}
    assert "airpods.resolved" in imported and "podman" not in imported  # dry-run: no Podman
    heavy = {m for m in imported if m.split(".")[0] in ("pydantic", "pydantic_core", "jinja2",
                                                        "tomlkit")}
    heavy |= imported & {"airpods.config.schema", "airpods.config.loader", "airpods.kinds.render",
                         "airpods.config.templates"}
    assert heavy == set()


# --------------------------------------------------------------------- untrusted entries


def _tamper(entry: Path, change, *, resign: bool) -> None:
    """Rewrite the entry's first spec with `change`; `resign` signs it with the real key."""
    from airpods.secrets import local_key

    outer = json.loads(entry.read_text())
    body = json.loads(outer["body"])
    change(body["resolved"]["specs"][0])
    outer["body"] = json.dumps(body, sort_keys=True)
    if resign:
        outer["mac"] = C._mac(local_key(), outer["body"])
    entry.write_text(json.dumps(outer))


@pytest.mark.parametrize("change", [
    lambda s: s["mounts"].append({"source": "/", "target": "/host", "mode": "rw",
                                  "is_bind": True, "relabel": False}),
    lambda s: s.update(cap_add=["ALL"]),
    lambda s: s.update(ports=[{**s["ports"][0], "host_ip": "0.0.0.0"}]),
], ids=["root-bind", "cap-add-all", "publish-everywhere"])
def test_a_hand_edited_entry_is_a_miss(dirs, misses, change) -> None:
    saved_store()
    good = resolve(dirs)
    [entry] = entries(dirs)
    _tamper(entry, change, resign=False)
    count = len(misses)
    assert resolve(dirs) == good and len(misses) == count + 1


@pytest.mark.parametrize("change", [
    lambda s: s.update(cap_drop=[]),
    lambda s: s.update(security_opt=[]),
    lambda s: s.update(cap_add=["CAP_ALL"]),
    lambda s: s["mounts"][0].update(mode="rw"),
], ids=["no-cap-drop", "new-privileges", "cap-all", "writable-models"])
def test_even_a_validly_signed_entry_must_keep_the_safety_invariants(dirs, misses, change) -> None:
    saved_store()
    good = resolve(dirs)
    [entry] = entries(dirs)
    _tamper(entry, change, resign=True)
    count = len(misses)
    assert resolve(dirs) == good and len(misses) == count + 1


def test_a_fifo_or_a_link_in_place_of_an_entry_is_a_miss_not_a_hang(dirs, misses) -> None:
    saved_store()
    good = resolve(dirs)
    [entry] = entries(dirs)
    text = entry.read_text()
    entry.unlink()
    os.mkfifo(entry, 0o600)
    count = len(misses)
    assert resolve(dirs) == good and len(misses) == count + 1  # returns: no blocking open
    entry.unlink(missing_ok=True)
    real = dirs["entries"].parent / "elsewhere.json"
    real.write_text(text)
    real.chmod(0o600)
    for stale in entries(dirs):
        stale.unlink()
    entry.symlink_to(real)
    count = len(misses)
    assert resolve(dirs) == good and len(misses) == count + 1


def test_an_entry_in_a_directory_others_can_enter_is_a_miss(dirs, misses) -> None:
    saved_store()
    good = resolve(dirs)
    dirs["entries"].chmod(0o755)
    count = len(misses)
    assert resolve(dirs) == good and len(misses) == count + 1
    assert stat.S_IMODE(dirs["entries"].stat().st_mode) == 0o700  # tightened when stored


def test_the_engine_never_imports_the_cache() -> None:
    engine = Path(R.__file__).parent / "engine"
    for module in engine.glob("*.py"):
        text = module.read_text()
        assert "airpods.cache" not in text and "from airpods import cache" not in text, module
