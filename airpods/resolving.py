"""Resolving the configuration into the services commands use, through the cache.

    resolved = resolve(config_path, environ=os.environ, secrets=SecretStore())

A valid cache entry (`airpods.cache`) answers without loading the configuration; otherwise the
configuration is loaded, validated and rendered, and the result stored for the next command.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airpods.paths import user_config_path
from airpods.record import replace
from airpods.resolved import Resolved, ServiceEntry, Settings

if TYPE_CHECKING:
    from airpods.secrets import SecretStore


def resolve(
    config_path: Path | None,
    *,
    environ: Mapping[str, str],
    secrets: SecretStore,
    cache_dir: Path | None = None,
    cache_unsaved: bool = False,
) -> Resolved:
    """The services in effect for `config_path` (None: the default user file).

    `environ` gives the overrides (as for load_config); `secrets` provides the generated
    secrets (new ones stay pending in it: the caller decides whether to save them).
    `cache_unsaved`: an entry may hold generated secrets no file holds yet (`status`, which
    scripts run in a loop before any `start`); otherwise a command that saves no secret writes
    no entry either, so one that only plans (`start --dry-run`) leaves no file.
    """
    from airpods import cache
    from airpods.secrets import local_key

    user_path = config_path if config_path is not None else user_config_path()
    key = _key_or_none(config_path, user_path, environ)
    directory = cache_dir if cache_dir is not None else cache.default_cache_dir()
    if key is not None:
        mac_key = _quietly(local_key, create=False)
        hit = cache.lookup(directory / f"{key}.json", secrets, mac_key) if mac_key else None
        if hit is not None:
            return replace(hit, user_path=user_path)
    recorder = _RecordingStore(secrets)
    resolved, requested = _resolve_uncached(config_path, environ, recorder)
    if (
        key is not None
        and (cache_unsaved or not secrets.pending)
        # A hit replays generated values (airpods.cache), not the deletion of revoked ones.
        and not recorder.dropped
        # The files did not change while they were read: the entry matches its key.
        and _key_or_none(config_path, user_path, environ) == key
        and (mac_key := _quietly(local_key)) is not None
    ):
        cache.store(directory, key, resolved, requested, recorder.used, secrets, mac_key)
    return resolved


def _quietly(get_key: Any, **kwargs: Any) -> bytes | None:
    try:
        return get_key(**kwargs)
    except OSError:
        return None  # no place for the key: no cache, as with AIRPODS_NO_CACHE


def _key_or_none(
    config_path: Path | None, user_path: Path, environ: Mapping[str, str]
) -> str | None:
    """The cache key, or None where the cache is off or the loader must report a problem."""
    from airpods import cache

    if not cache.enabled(environ):
        return None
    if config_path is not None and not user_path.exists():
        return None  # "file not found" comes from the loader
    from airpods.errors import ConfigError

    try:
        return cache.cache_key(user_path, environ)
    except (OSError, ConfigError):
        return None  # an unreadable or special file: the loader reports it


def _resolve_uncached(
    config_path: Path | None, environ: Mapping[str, str], secrets: Any
) -> tuple[Resolved, str]:
    """Load, validate and render every service. Returns it and the requested accelerator."""
    from airpods.config.loader import load_config
    from airpods.kinds.render import render_service
    from airpods.replica_names import replica_of

    loaded = load_config(config_path, environ=environ, secrets=secrets)
    config = loaded.config
    settings = Settings(
        network=config.runtime.network,
        stop_timeout_s=float(config.runtime.stop_timeout_s),
        max_concurrent_pulls=int(config.cli.max_concurrent_pulls),
        failure_log_lines=int(config.cli.failure_log_lines),
    )
    services = {
        name: ServiceEntry(
            name=name,
            enabled=svc.enabled,
            kind=svc.kind,
            pod=svc.pod,
            container=svc.container,
            depends_on=tuple(svc.depends_on),
            volumes=tuple((vol.source, vol.is_bind) for vol in svc.volumes.values()),
            replica_of=replica_of(config.services, name) or "",
        )
        for name, svc in config.services.items()
    }
    specs = {
        name: render_service(name, svc, config, loaded.host, loaded.image_origins.get(name))
        for name, svc in config.services.items()
    }
    resolved = Resolved(settings, services, specs, loaded.host, loaded.user_path)
    return resolved, str(config.runtime.accelerator)


class _RecordingStore:
    """A SecretStore that notes which (service, variable) secrets the config used."""

    def __init__(self, store: SecretStore) -> None:
        self.store = store
        self.used: dict[tuple[str, str], str] = {}  # (service, variable) -> the value given
        self.dropped = False

    def get(self, service: str, var: str) -> str:
        value = self.store.get(service, var)
        self.used[(service, var)] = value
        return value

    def drop(self, service: str, var: str) -> None:
        self.dropped = True
        self.store.drop(service, var)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)
