"""What commands share: the resolved services, the Podman connection, kept secrets.

Commands import these, never each other's private helpers, and never podman-py directly.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airpods.cli import AppContext
    from airpods.engine.podman_protocol import Podman
    from airpods.resolved import Resolved
    from airpods.secrets import SecretStore


def resolve(app: AppContext, *, cpu: bool = False, secrets: SecretStore | None = None,
            cache_unsaved: bool = False) -> Resolved:
    """The services in effect, from the cache while it is valid (see airpods.cache;
    `cache_unsaved`: airpods.resolving.resolve)."""
    from airpods.resolving import resolve as resolve_services
    from airpods.secrets import SecretStore, secret_values

    environ = dict(os.environ)
    if cpu:
        environ["AIRPODS_ACCELERATOR"] = "cpu"
    store = secrets if secrets is not None else SecretStore()
    resolved = resolve_services(app.config_path, environ=environ, secrets=store,
                                cache_unsaved=cache_unsaved)
    # Remembered for masking: an error or progress line must not show a key, cache hit or not.
    secret_values(*resolved.specs.values())
    return resolved


def resolve_and_keep_secrets(app: AppContext, *, cpu: bool = False) -> Resolved:
    """Resolve, saving any secret generated on the way (call under the state lock).

    When another process saved one of them first, resolve again so its value is the one used.
    """
    from airpods.secrets import SecretStore

    store = SecretStore()
    resolved = resolve(app, cpu=cpu, secrets=store)
    if store.pending and not store.save():
        resolved = resolve(app, cpu=cpu, secrets=SecretStore())
    return resolved


def connect(console: Any) -> Podman:
    """The Podman adapter; a transient API service it had to start is announced on `console`."""
    from airpods.engine.podman import Podman

    return Podman.connect(note=lambda text: console.print(f"[yellow]note:[/yellow] {text}"))
