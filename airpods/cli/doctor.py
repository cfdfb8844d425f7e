"""`airpods doctor`: check what airpods depends on and say how to fix what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

import click

from airpods.cli import AppContext


def _check(name: str, fn: Callable[[], tuple[bool, str]]) -> bool:
    try:
        ok, detail = fn()
    except Exception as exc:  # doctor reports every failure, it never stops at the first
        ok = False
        detail = exc.one_line() if hasattr(exc, "one_line") else str(exc)
    click.echo(f"{'ok  ' if ok else 'FAIL'}  {name}: {detail}")
    return ok


def _podman_installed() -> tuple[bool, str]:
    path = shutil.which("podman")
    if not path:
        return False, "not installed (sudo apt-get install podman, or sudo dnf install podman)"
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    return out.returncode == 0, out.stdout.strip() or out.stderr.strip()


def _socket() -> tuple[bool, str]:
    from airpods.engine.podman import answering_socket

    url = answering_socket(os.environ)
    if url:
        return True, url
    return True, (
        "no Podman API socket answers; airpods starts a transient one when needed. "
        "For faster starts: systemctl --user enable --now podman.socket "
        "(or sudo systemctl enable --now podman.socket as root)"
    )


@click.command()
@click.pass_obj
def doctor(app: AppContext) -> None:
    """Check Podman, its API socket, the accelerator and the configuration."""
    from airpods.cli.context import resolve

    results = [_check("podman", _podman_installed), _check("api socket", _socket)]
    resolved = None

    def config() -> tuple[bool, str]:
        nonlocal resolved
        resolved = resolve(app)
        return True, f"valid ({resolved.user_path})"

    results.append(_check("config", config))
    if resolved is not None:
        host = resolved.host
        results.append(_check("accelerator", lambda: (True, f"{host.accelerator}: {host.reason}")))
        for note in host.notes:
            click.echo(f"note  {note}")
        if host.gpu is not None and not host.gpu.usable:
            results.append(False)
    raise SystemExit(0 if all(results) else 1)
