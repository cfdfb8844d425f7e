"""Secrets airpods generates once per service (API keys, session keys) and keeps, 0600.

Values are generated in memory when the config is loaded; only `save()` writes them. `start`
saves after the config validated (under its lock), and so do `config show` / `config get`, so
that a key a user reads is the key the next `start` uses. A command that fails, or that only
plans (`start --dry-run`, `config validate`), leaves no file.

A file that is missing, empty or only whitespace holds no secret: a value is generated for it,
and `save()` replaces the file. A file that holds a value is never overwritten: when two
processes generate the same secret, the first to save wins (`save()` returns False to the other,
whose value was never kept).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from airpods.errors import AirpodsError


def default_root() -> Path:
    import platformdirs

    return platformdirs.user_data_path("airpods") / "secrets"


class SecretStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_root()
        self._pending: dict[Path, str] = {}

    def path(self, service: str, var: str) -> Path:
        return self.root / service / var

    def get(self, service: str, var: str) -> str:
        """The kept value, or a new one (pending until `save()`).

        Raises OSError (other than a missing file) and UnicodeDecodeError for a file that
        cannot be read: the caller knows which setting asked, and reports it.
        """
        path = self.path(service, var)
        if path in self._pending:
            return self._pending[path]
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            value = ""
        if value:
            return value
        # Missing, empty or blank: an empty key would leave the service unprotected.
        value = secrets.token_urlsafe(32)
        self._pending[path] = value
        return value

    @property
    def pending(self) -> bool:
        """True when values were generated that no file holds yet."""
        return bool(self._pending)

    def save(self) -> bool:
        """Write the values generated so far: each a file, 0600, in a 0700 directory.

        Returns False when another process saved one of them first: its file is kept, and the
        value this store handed out for it is not (load again to use the kept one; `get` now
        reads it). Raises AirpodsError when a file cannot be written.
        """
        all_ours = True
        for path, value in self._pending.items():
            try:
                all_ours &= _write_new(self.root, path, value)
            except OSError as exc:
                raise AirpodsError(
                    f"cannot save the generated secret {path}: {exc.strerror or exc}",
                    hint=f"check that {self.root} is a writable directory",
                ) from None
        self._pending.clear()
        return all_ours


def _write_new(root: Path, path: Path, value: str) -> bool:
    """Write `value` to `path` atomically unless `path` already holds a value; True if written."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for directory in (root, path.parent):
        os.chmod(directory, 0o700)
    # A name of our own: a concurrent save never writes into this file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # atomic, and fails if a file is there already
            return True
        except FileExistsError:
            if path.read_text(encoding="utf-8", errors="replace").strip():
                return False  # another process saved first: its value stands
        except OSError:
            pass  # no hard links on this file system: replace instead
        os.replace(tmp, path)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def local_key(path: Path | None = None, *, create: bool = True) -> bytes | None:
    """A random key, kept 0600 beside the secrets, that authenticates files airpods writes for
    itself (the resolved-services cache): an entry edited by hand or planted fails its check.

    Created on first use (None without `create`: a read-only command writes nothing). A key
    file that is a symlink, not ours, or readable by others is replaced, never followed or
    trusted.
    """
    import platformdirs

    path = path if path is not None else platformdirs.user_data_path("airpods") / "local.key"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:  # missing, or a symlink (ELOOP) or something we will not read
        if not create:
            return None
        if not isinstance(exc, FileNotFoundError):
            path.unlink(missing_ok=True)
        return _new_local_key(path)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        ours = stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077
        data = handle.read(64) if ours else b""
    if len(data) == 64:
        return data
    if not create:
        return None
    path.unlink(missing_ok=True)
    return _new_local_key(path)


def _new_local_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = secrets.token_bytes(64)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # another process may have made one first: use that
        except FileExistsError:
            return local_key(path)
    finally:
        tmp.unlink(missing_ok=True)
    return data
