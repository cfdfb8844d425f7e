"""What `airpods models` commands share, and what `models list` shows, without click: the fast
path (airpods/cli/fast_run.py) and the click command (airpods/cli/models.py) both run
`show_models`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airpods.cli.meta import AppContext
    from airpods.engine.podman import Podman
    from airpods.resolved import Resolved


def model_target(app: AppContext, service: str | None) -> tuple[Resolved, str, str, str | None]:
    """(resolved, service, volume, configured model) for `service`, touching no Podman; the
    model is None for a router without presets (it serves every GGUF in the volume)."""
    from airpods.cli.context import resolve
    from airpods.models.services import pick_service, served_model, serving

    resolved = resolve(app)
    name = pick_service(resolved, service)
    spec = resolved.specs[name]
    volume = serving(spec).volume  # type: ignore[union-attr]  (pick_service checked it)
    served = served_model(spec)  # none for a router without presets: it serves them all
    model = served[1] if served is not None and served[0] == volume else None
    return resolved, name, volume, model


def podman_client() -> Podman:
    from airpods.cli.context import connect
    from airpods.cli.output import make_console

    return connect(make_console())


def existing_dir(podman: Podman | None, volume: str) -> Path | None:
    """The volume's directory, if it exists; a bind mount's path needs no Podman at all."""
    from airpods.models.store import volume_dir

    if volume.startswith("/"):
        return Path(volume) if Path(volume).is_dir() else None
    return volume_dir(podman or podman_client(), volume)


def show_models(app: AppContext, service: str | None, as_json: bool) -> None:
    """List the models in the service's model volume; the configured one is marked."""
    from airpods.cli.output import echo_json
    from airpods.models.gguf_meta import escape
    from airpods.models.meta_cache import MetaCache
    from airpods.models.services import describe, serving, users
    from airpods.models.store import list_models, size_text
    from airpods.models.usage import UsageDB

    resolved, _, volume, current = model_target(app, service)
    directory = existing_dir(None, volume)  # a missing volume is empty, not created
    found = list_models(directory) if directory is not None else []
    last = UsageDB().last_used(volume) if found else {}
    servings = {n: serving(resolved.specs[n]) for n in resolved.services}
    headers = MetaCache()
    entries = [describe(directory, m.name, m.size, last_used=last.get(m.name),  # type: ignore
                        used_by=users(resolved, volume, m.name, servings=servings),
                        meta_cache=headers)
               for m in found]
    headers.save()
    if as_json:
        echo_json({"volume": volume, "configured": current, "models": entries})
        return
    for e in entries:
        mark = "*" if e["name"] == current else " "
        facts = ", ".join(escape(str(x)) for x in (e["architecture"], e["quantization"],
                                                  params_text(e["parameters"])) if x)
        if e["damaged"]:
            facts = f"damaged: {e['damaged']}"
        used = f"last used {e['last_used']}" if e["last_used"] else "never used"
        print(f"{mark} {escape(e['name'])}  {size_text(e['size'])}  {facts or '-'}  {used}")
    if not any(e["name"] == current for e in entries):
        sys.stderr.write(f"the configured model {current} is not in volume {volume}\n")


def params_text(n: int | None) -> str:
    if not n:
        return ""
    return f"{n / 1e9:.1f}B params" if n >= 1e8 else f"{n / 1e6:.1f}M params"
