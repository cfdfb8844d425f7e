"""The services as commands use them: the configuration resolved into ContainerSpecs, cached.

    resolved = resolve(config_path, environ=os.environ, secrets=SecretStore())
    names = select_services(resolved, ("llamacpp",))
    specs = [resolved.specs[n] for n in names]

Loading the configuration (TOML parsing, templates, pydantic validation) costs far more than
anything `status` or an idempotent `start` does, so the result is kept on disk and reused while
everything it was computed from is unchanged. An entry is used only when all of these match:

- the cache key: airpods' version and code (a stat of every module), the Python and the
  template/validation libraries in use, the defaults file's bytes, the user file's path and
  bytes (or its absence) and the environment overrides (`ENV_OVERRIDES`);
- the host facts: detection runs on every invocation, as without the cache, and an entry
  computed for other facts (a GPU plugged in, a CDI spec generated) is stale;
- the generated secrets the entry used: each file must still hold what it held.

An entry holds secret values (generated API keys are in the specs' env): it is written 0600 in a
0700 directory, and only when every secret it holds was saved (never a value generated in memory
that a failed or read-only command would drop). Anything wrong with an entry is a miss;
`AIRPODS_NO_CACHE=1` turns the cache off. Config errors come from the loader, as always.

This module imports no pydantic, jinja2 or tomlkit: a cache hit never loads them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import airpods
from airpods.config.paths import ENV_OVERRIDES, default_config_path, user_config_path
from airpods.host import GpuInfo, HostFacts
from airpods.spec import ContainerSpec, Health, Mount, PortMapping

if TYPE_CHECKING:
    from airpods.secrets import SecretStore

CACHE_FORMAT = 1
KEEP_ENTRIES = 8
NO_CACHE_ENV = "AIRPODS_NO_CACHE"
# Libraries whose behaviour shapes the result (parsing, templates, validation).
_DEPENDENCIES = ("tomlkit", "jinja2", "markupsafe", "pydantic", "pydantic_core")


@dataclass(frozen=True)
class Settings:
    """The global settings commands need."""

    network: str
    stop_timeout_s: float
    max_concurrent_pulls: int
    failure_log_lines: int


@dataclass(frozen=True)
class ServiceEntry:
    """What commands need to know about a service besides its ContainerSpec."""

    name: str
    enabled: bool
    kind: str
    pod: str
    container: str
    depends_on: tuple[str, ...] = ()
    volumes: tuple[tuple[str, bool], ...] = ()  # (source, is_bind), in config order


@dataclass(frozen=True)
class Resolved:
    """The configuration in effect, resolved: every service's ContainerSpec, rendered."""

    settings: Settings
    services: dict[str, ServiceEntry]  # config order
    specs: dict[str, ContainerSpec]  # every service, enabled or not
    host: HostFacts
    user_path: Path  # the user file in effect (it may not exist)

    def enabled_services(self) -> list[str]:
        return [name for name, svc in self.services.items() if svc.enabled]


# --- choosing services ------------------------------------------------------------------------


def select_services(resolved: Resolved, names: Sequence[str]) -> list[str]:
    """The services to act on, in dependency order: the named ones, or all enabled ones."""
    from airpods.errors import UsageError

    unknown = [n for n in names if n not in resolved.services]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], list(resolved.services), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see `airpods config show`"
        raise UsageError(f"unknown service {unknown[0]!r}", hint=hint)
    chosen = list(names) if names else resolved.enabled_services()
    return order_by_dependencies(resolved, chosen)


def order_by_dependencies(resolved: Resolved, chosen: Sequence[str]) -> list[str]:
    """Topological order of `chosen`; dependencies outside `chosen` only order, never add."""
    services = resolved.services
    picked = set(chosen)
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in services[name].depends_on:
            if dep in services:
                visit(dep)
        if name in picked:
            ordered.append(name)

    for name in chosen:
        visit(name)
    return ordered


# --- resolving --------------------------------------------------------------------------------


def resolve(
    config_path: Path | None,
    *,
    environ: Mapping[str, str],
    secrets: SecretStore,
    cache_dir: Path | None = None,
) -> Resolved:
    """The services in effect for `config_path` (None: the default user file).

    `environ` gives the overrides (as for load_config); `secrets` provides the generated
    secrets (new ones stay pending in it: the caller decides whether to save them).
    """
    user_path = config_path if config_path is not None else user_config_path()
    key = _key_or_none(config_path, user_path, environ)
    directory: Path | None = None
    if key is not None:
        directory = cache_dir if cache_dir is not None else default_cache_dir()
        hit = _lookup(directory / f"{key}.json", secrets)
        if hit is not None:
            return replace(hit, user_path=user_path)
    recorder = _RecordingStore(secrets)
    resolved, requested = _resolve_uncached(config_path, environ, recorder)
    if (
        key is not None
        and directory is not None
        and not getattr(secrets, "_pending", None)
        # The files did not change while they were read: the entry matches its key.
        and _key_or_none(config_path, user_path, environ) == key
    ):
        _store(directory, key, resolved, requested, recorder.used, secrets)
    return resolved


def _key_or_none(
    config_path: Path | None, user_path: Path, environ: Mapping[str, str]
) -> str | None:
    """The cache key, or None where the cache is off or the loader must report a problem."""
    if not _cache_enabled(environ):
        return None
    if config_path is not None and not user_path.exists():
        return None  # "file not found" comes from the loader
    try:
        return cache_key(user_path, environ)
    except OSError:
        return None  # an unreadable file: the loader reports it


def _resolve_uncached(
    config_path: Path | None, environ: Mapping[str, str], secrets: Any
) -> tuple[Resolved, str]:
    """Load, validate and render every service. Returns it and the requested accelerator."""
    from airpods.config.loader import load_config
    from airpods.render import render_service

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
        )
        for name, svc in config.services.items()
    }
    specs = {
        name: render_service(name, svc, config, loaded.host)
        for name, svc in config.services.items()
    }
    resolved = Resolved(settings, services, specs, loaded.host, loaded.user_path)
    return resolved, str(config.runtime.accelerator)


class _RecordingStore:
    """A SecretStore that notes which (service, variable) secrets the config used."""

    def __init__(self, store: SecretStore) -> None:
        self.store = store
        self.used: dict[tuple[str, str], str] = {}  # (service, variable) -> the value given

    def get(self, service: str, var: str) -> str:
        value = self.store.get(service, var)
        self.used[(service, var)] = value
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


# --- the cache --------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    import platformdirs

    return platformdirs.user_cache_path("airpods") / "resolved"


def _cache_enabled(environ: Mapping[str, str]) -> bool:
    return environ.get(NO_CACHE_ENV, "").strip().lower() in ("", "0", "false", "no")


def cache_key(user_path: Path, environ: Mapping[str, str]) -> str:
    """Hash of everything the resolved services are computed from, host and secrets aside."""
    digest = hashlib.sha256()

    def part(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    part("format", str(CACHE_FORMAT).encode())
    part("version", airpods.__version__.encode())
    part("python", f"{sys.executable}\0{sys.version}".encode())
    part("code", _code_fingerprint())
    part("dependencies", _dependencies_fingerprint())
    defaults = default_config_path()
    part("defaults-path", str(defaults).encode())
    part("defaults", defaults.read_bytes())
    part("user-path", str(user_path.absolute()).encode())
    try:
        part("user", b"present\0" + user_path.read_bytes())
    except FileNotFoundError:
        part("user", b"absent")
    for variable in sorted(ENV_OVERRIDES):
        value = environ.get(variable)
        part(f"env:{variable}", b"unset" if value is None else b"set\0" + value.encode())
    return digest.hexdigest()


def _code_fingerprint() -> bytes:
    """(path, size, mtime) of every module of the airpods package: a stat walk, no reads."""
    root = Path(airpods.__file__).parent
    rows: list[str] = []
    pending = [str(root)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    st = entry.stat()
                    rows.append(f"{entry.path}\0{st.st_size}\0{st.st_mtime_ns}")
    return "\n".join(sorted(rows)).encode()


def _dependencies_fingerprint() -> bytes:
    """Where the parsing/template/validation libraries are, and their files' stat (no import)."""
    from importlib.machinery import PathFinder

    rows = []
    for name in _DEPENDENCIES:
        spec = PathFinder.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None:
            rows.append(f"{name}\0missing")
            continue
        try:
            st = os.stat(origin)
            rows.append(f"{name}\0{origin}\0{st.st_size}\0{st.st_mtime_ns}")
        except OSError:
            rows.append(f"{name}\0{origin}\0unreadable")
    return "\n".join(rows).encode()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _lookup(path: Path, secrets: SecretStore) -> Resolved | None:
    """The cached services at `path` if the entry is sound and still valid, else None."""
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            mine = st.st_uid == os.getuid() if hasattr(os, "getuid") else True
            if not mine or st.st_mode & 0o077:
                return None  # not written by us, as we write it
            entry = json.loads(handle.read())
        if entry["format"] != CACHE_FORMAT:
            return None
        for service, var, expected in entry["secrets"]:
            try:
                current = secrets.path(service, var).read_bytes()
            except OSError:
                return None
            if _digest(current) != expected:
                return None
        requested = entry["requested_accelerator"]
        resolved = from_dict(entry["resolved"])
    except Exception:  # a corrupt, truncated or foreign entry is a miss, never an error
        return None
    from airpods import host as host_module  # looked up at call time: tests replace it

    if host_module.detect_host(requested) != resolved.host:
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: pruning keeps it
    return resolved


def _store(
    directory: Path,
    key: str,
    resolved: Resolved,
    requested: str,
    used: Mapping[tuple[str, str], str],
    secrets: SecretStore,
) -> None:
    """Write the entry atomically, 0600 in a 0700 directory; a failure only costs the cache."""
    import tempfile

    try:
        secret_digests = []
        for (service, var), value in used.items():
            data = secrets.path(service, var).read_bytes()
            if data.decode("utf-8", "replace").strip() != value:
                return  # the file changed since it was read: this entry would lie
            secret_digests.append([service, var, _digest(data)])
        text = json.dumps(
            {
                "format": CACHE_FORMAT,
                "requested_accelerator": requested,
                "secrets": secret_digests,
                "resolved": to_dict(resolved),
            },
            sort_keys=True,
        )
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")  # 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, directory / f"{key}.json")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _prune(directory)
    except OSError:
        pass


def _prune(directory: Path, keep: int = KEEP_ENTRIES) -> None:
    """Keep the `keep` most recently used entries."""
    entries = []
    for path in directory.glob("*.json"):
        with contextlib.suppress(OSError):
            entries.append((path.stat().st_mtime_ns, path))
    entries.sort(reverse=True)
    for _, path in entries[keep:]:
        with contextlib.suppress(OSError):
            path.unlink()


# --- serialization ----------------------------------------------------------------------------


def to_json(resolved: Resolved) -> str:
    return json.dumps(to_dict(resolved), sort_keys=True)


def from_json(text: str | bytes) -> Resolved:
    return from_dict(json.loads(text))


def to_dict(resolved: Resolved) -> dict[str, Any]:
    """Plain JSON values; the order of `services` and `specs` is kept as a list."""
    return {
        "settings": _plain(resolved.settings),
        "services": [_plain(svc) for svc in resolved.services.values()],
        "specs": [_plain(spec) for spec in resolved.specs.values()],
        "host": _plain(resolved.host),
        "user_path": str(resolved.user_path),
    }


def _plain(value: Any) -> Any:
    """Dataclasses → dicts, tuples → lists, frozensets → sorted lists."""
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def from_dict(data: Mapping[str, Any]) -> Resolved:
    services = [_service_from(item) for item in data["services"]]
    specs = [_spec_from(item) for item in data["specs"]]
    return Resolved(
        settings=_settings_from(data["settings"]),
        services={svc.name: svc for svc in services},
        specs={spec.service: spec for spec in specs},
        host=_host_from(data["host"]),
        user_path=Path(data["user_path"]),
    )


def _settings_from(d: Mapping[str, Any]) -> Settings:
    return Settings(
        network=d["network"],
        stop_timeout_s=float(d["stop_timeout_s"]),
        max_concurrent_pulls=d["max_concurrent_pulls"],
        failure_log_lines=d["failure_log_lines"],
    )


def _service_from(d: Mapping[str, Any]) -> ServiceEntry:
    return ServiceEntry(
        name=d["name"],
        enabled=d["enabled"],
        kind=d["kind"],
        pod=d["pod"],
        container=d["container"],
        depends_on=tuple(d["depends_on"]),
        volumes=tuple((source, is_bind) for source, is_bind in d["volumes"]),
    )


def _gpu_from(d: Mapping[str, Any] | None) -> GpuInfo | None:
    if d is None:
        return None
    return GpuInfo(
        vendor=d["vendor"],
        name=d["name"],
        devices=tuple(d["devices"]),
        group_add=tuple(d["group_add"]),
        usable=d["usable"],
        problem=d["problem"],
    )


def _host_from(d: Mapping[str, Any]) -> HostFacts:
    return HostFacts(
        accelerator=d["accelerator"],
        reason=d["reason"],
        physical_cores=d["physical_cores"],
        logical_cores=d["logical_cores"],
        gpu=_gpu_from(d["gpu"]),
        selinux_enforcing=d["selinux_enforcing"],
        notes=tuple(d["notes"]),
    )


def _health_from(d: Mapping[str, Any] | None) -> Health | None:
    if d is None:
        return None
    return Health(
        path=d["path"],
        expected_status=d["expected_status"],
        timeout_s=d["timeout_s"],
        interval_s=d["interval_s"],
        host_port=d["host_port"],
        host_ip=d["host_ip"],
    )


def _spec_from(d: Mapping[str, Any]) -> ContainerSpec:
    entrypoint = d["entrypoint"]
    return ContainerSpec(
        service=d["service"],
        kind=d["kind"],
        image=d["image"],
        image_reason=d["image_reason"],
        accelerator=d["accelerator"],
        pod=d["pod"],
        container=d["container"],
        network=d["network"],
        network_aliases=tuple(d["network_aliases"]),
        ports=tuple(
            PortMapping(
                host_ip=p["host_ip"],
                host_port=p["host_port"],
                container_port=p["container_port"],
                protocol=p["protocol"],
            )
            for p in d["ports"]
        ),
        mounts=tuple(
            Mount(
                source=m["source"],
                target=m["target"],
                mode=m["mode"],
                is_bind=m["is_bind"],
                relabel=m["relabel"],
            )
            for m in d["mounts"]
        ),
        env=dict(d["env"]),
        command=tuple(d["command"]),
        entrypoint=None if entrypoint is None else tuple(entrypoint),
        secret_env=frozenset(d["secret_env"]),
        devices=tuple(d["devices"]),
        group_add=tuple(d["group_add"]),
        cap_drop=tuple(d["cap_drop"]),
        cap_add=tuple(d["cap_add"]),
        security_opt=tuple(d["security_opt"]),
        memory=d["memory"],
        cpus=d["cpus"],
        health=_health_from(d["health"]),
        depends_on=tuple(d["depends_on"]),
        labels=dict(d["labels"]),
        config_hash=d["config_hash"],
        notes=tuple(d["notes"]),
    )
