"""The resolved-services cache: what `status` and an idempotent `start` reuse instead of loading
the configuration (TOML parsing, templates, validation cost far more than they do).

An entry is used only when all of these match:

- the cache key: airpods' version and code (a stat of every module), the Python and the
  template/validation libraries in use, the defaults file's bytes, the user file's path and
  bytes (or its absence) and the environment overrides (`ENV_OVERRIDES`);
- the host facts: detection runs on every invocation, and an entry computed for other facts (a
  GPU plugged in, a CDI spec generated) is stale;
- the generated secrets the entry used: each file must still hold what it held.

Entries are untrusted input. A hit must be a regular file the user owns, mode 0600, in a
0700 directory the user owns, opened without following links or blocking (a FIFO is a miss,
never a hang); it must carry a valid HMAC under a local key only airpods writes (so an entry
edited by hand or planted is a miss); and every spec it returns is checked against the safety
invariants `start` relies on (`safety_problems`). Anything wrong is a miss, never an error.

Entries hold secret values (API keys are in the specs): they are written 0600 in a 0700
directory, and only when every secret they hold was saved. `AIRPODS_NO_CACHE=1` turns the cache
off. This module imports no pydantic, jinja2 or tomlkit: a cache hit never loads them. The
engine never imports it: it is the CLI's shortcut to the resolved services.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import airpods
from airpods.config.files import read_config_bytes
from airpods.config.paths import (
    ENV_OVERRIDES,
    builtin_catalogue_path,
    default_config_path,
    user_catalogue_path,
)
from airpods.errors import AirpodsError
from airpods.record import replace
from airpods.resolved import Resolved, from_dict, to_dict
from airpods.spec import ContainerSpec

if TYPE_CHECKING:
    from airpods.secrets import SecretStore

CACHE_FORMAT = 3
KEEP_ENTRIES = 8
MAX_ENTRY_BYTES = 4 << 20
NO_CACHE_ENV = "AIRPODS_NO_CACHE"
# Libraries whose behaviour shapes the result (parsing, templates, validation).
_DEPENDENCIES = ("tomlkit", "jinja2", "markupsafe", "pydantic", "pydantic_core")


def default_cache_dir() -> Path:
    from airpods.config.paths import user_dir

    return user_dir("cache") / "resolved"


def enabled(environ: Mapping[str, str]) -> bool:
    return environ.get(NO_CACHE_ENV, "").strip().lower() in ("", "0", "false", "no")


# --- the key ----------------------------------------------------------------------------------


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
    # The loader's own reader: a FIFO or device is refused (ConfigError), never read or waited on.
    user = read_config_bytes(user_path)
    part("user", b"absent" if user is None else b"present\0" + user)
    for label, path in _catalogue_paths():
        # The model catalogue decides host.auto_model (the tier a "auto" model source serves).
        data = read_config_bytes(path)
        part(label, b"absent" if data is None else b"present\0" + data)
    for variable in sorted(ENV_OVERRIDES):
        value = environ.get(variable)
        part(f"env:{variable}", b"unset" if value is None else b"set\0" + value.encode())
    return digest.hexdigest()


def _catalogue_paths() -> list[tuple[str, Path]]:
    return [("catalogue", builtin_catalogue_path()), ("user-catalogue", user_catalogue_path())]


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


def _mac(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


# --- lookup -------------------------------------------------------------------------------------


def _private_dir(directory: Path) -> bool:
    try:
        st = directory.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def read_private(path: Path) -> bytes | None:
    """The file's bytes if it is a regular file we own, 0600 or stricter, in a 0700 directory
    we own, and not too big; else None (a link, a FIFO, another user's file: never followed,
    never waited on)."""
    if not _private_dir(path.parent):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o177:
            return None
        data = handle.read(MAX_ENTRY_BYTES + 1)
    return data if len(data) <= MAX_ENTRY_BYTES else None


def lookup(path: Path, secrets: SecretStore, key: bytes) -> Resolved | None:
    """The cached services at `path` if the entry is sound and still valid, else None."""
    data = read_private(path)
    if data is None:
        return None
    try:
        outer = json.loads(data)
        body = outer["body"]
        if not hmac.compare_digest(str(outer["mac"]), _mac(key, body)):
            return None  # not written by airpods with this key: edited or planted
        entry = json.loads(body)
        if entry["format"] != CACHE_FORMAT:
            return None
        for service, var, expected in entry["secrets"]:
            # Read with the secret store's own checks (no links, ours, private).
            if _digest(secrets.kept(service, var).encode()) != expected:
                return None
        requested = entry["requested_accelerator"]
        resolved = from_dict(entry["resolved"])
        if any(safety_problems(spec) for spec in resolved.specs.values()):
            return None
    except Exception:  # a corrupt, truncated or foreign entry (or secret) is a miss, never an error
        return None
    from airpods import host as host_module  # looked up at call time: tests replace it

    # auto_model follows from the other facts and the catalogue, whose files are in the key.
    if host_module.detect_host(requested, auto_model=False) != replace(resolved.host,
                                                                       auto_model=""):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: pruning keeps it
    return resolved


def safety_problems(spec: ContainerSpec) -> list[str]:
    """What is wrong with `spec` against the invariants every container airpods runs keeps."""
    from airpods import kinds

    problems = []
    if "ALL" not in spec.cap_drop:
        problems.append("capabilities are not all dropped")
    if "no-new-privileges" not in spec.security_opt:
        problems.append("no-new-privileges is off")
    if any(cap.upper().removeprefix("CAP_") == "ALL" for cap in spec.cap_add):
        problems.append("every capability is added back")
    kind = kinds.get(spec.kind)
    # Every model it serves: one file, a router's presets, or a router's whole models dir.
    models = [*kind.model_files(spec), *filter(None, [kind.model_dir(spec)])]
    for mount in spec.mounts:
        root = mount.target.rstrip("/")
        holds_model = any(m == root or m.startswith(root + "/") for m in models)
        if holds_model and mount.mode != "ro":
            problems.append(f"the model mount {mount.target} is writable")
        if mount.is_bind != mount.source.startswith("/"):
            problems.append(f"mount {mount.source} is not what it says it is")
    return problems


# --- store --------------------------------------------------------------------------------------


def store(
    directory: Path,
    cache_key_hex: str,
    resolved: Resolved,
    requested: str,
    used: Mapping[tuple[str, str], str],
    secrets: SecretStore,
    key: bytes,
) -> None:
    """Write the entry atomically, 0600 in a 0700 directory; a failure only costs the cache."""
    try:
        secret_digests = []
        for (service, var), value in used.items():
            if secrets.kept(service, var) != value:
                return  # the file changed since it was read: this entry would lie
            secret_digests.append([service, var, _digest(value.encode())])
        body = json.dumps(
            {
                "format": CACHE_FORMAT,
                "requested_accelerator": requested,
                "secrets": secret_digests,
                "resolved": to_dict(resolved),
            },
            sort_keys=True,
        )
        text = json.dumps({"mac": _mac(key, body), "body": body})
        if write_private(directory, f"{cache_key_hex}.json", text):
            prune(directory)
    except (OSError, AirpodsError):
        pass  # a failure only costs the cache; the secret's own problem is reported elsewhere


def write_private(directory: Path, name: str, text: str) -> bool:
    """Write `directory/name` atomically, 0600 in a 0700 directory we own; False (nothing
    written) when the directory is a link or someone else's. OSError for a failed write."""
    import tempfile

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = directory.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        return False
    os.chmod(directory, 0o700)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, directory / name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


def prune(directory: Path, keep: int = KEEP_ENTRIES) -> None:
    """Keep the `keep` most recently used entries."""
    entries = []
    for path in directory.glob("*.json"):
        with contextlib.suppress(OSError):
            entries.append((path.lstat().st_mtime_ns, path))
    entries.sort(reverse=True)
    for _, path in entries[keep:]:
        with contextlib.suppress(OSError):
            path.unlink()

