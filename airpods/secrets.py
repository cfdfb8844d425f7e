"""Secrets airpods generates once per service (API keys, session keys) and keeps, 0600.

Values are generated in memory when the config is loaded; only `save()` writes them, and only
`start` calls it, after the config validated: a command that fails or only reads leaves no file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


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
        path = self.path(service, var)
        if path in self._pending:
            return self._pending[path]
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            value = secrets.token_urlsafe(32)
            self._pending[path] = value
            return value

    @property
    def pending(self) -> bool:
        """True when values were generated that no file holds yet."""
        return bool(self._pending)

    def save(self) -> None:
        """Write the values generated so far: a new file, 0600, in a 0700 directory."""
        for path, value in self._pending.items():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            for directory in (self.root, path.parent):
                os.chmod(directory, 0o700)
            tmp = path.with_name(f".{path.name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(value + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        self._pending.clear()
