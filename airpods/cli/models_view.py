"""What `airpods models` commands share, and what `models list` and `models pull` do, without
click: the fast path (airpods/cli/fast_run.py) and the click commands (airpods/cli/models.py)
both run `show_models` and `run_pull`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airpods.cli.meta import AppContext
    from airpods.engine.podman_protocol import Podman
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
    from airpods.gguf_meta import escape
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


def run_pull(app: AppContext, refs: tuple[str, ...], *, service: str | None = None,
             name: str | None = None, force: bool = False) -> None:
    """Download the one REF in `refs` into the service's model volume; see
    `airpods models pull --help`."""
    from airpods.cli import say
    from airpods.cli.pull_progress import PullProgress
    from airpods.config.tiers import budget
    from airpods.hub.client import endpoint_from_env
    from airpods.hub.refs import parse_ref
    from airpods.models.pull import pull
    from airpods.models.store import check_name
    from airpods.models.usage import UsageDB, Use

    (ref,) = refs
    parsed = parse_ref(ref)  # bad input fails before anything is touched
    endpoint_from_env()  # a bad HF_ENDPOINT too
    if name is not None:
        check_name(name, flat=True)
    resolved, chosen, volume, _ = model_target(app, service)
    room = budget(resolved.host, on_gpu=resolved.specs[chosen].accelerator != "cpu")
    directory = ensure_dir(volume)
    try:
        got = pull(parsed, directory, name=name, progress=PullProgress(), room=room,
                   force=force)
    except KeyboardInterrupt:
        say(f"interrupted: run `airpods models pull {ref}` again to resume")
        raise SystemExit(130) from None
    UsageDB().record("pull", [Use(volume, n, "") for n in got.names])
    for n in got.names:
        state = "already there" if n in got.skipped else "pulled"
        print(f"{state}: {n} in volume {volume}")


def ensure_dir(volume: str) -> Path:
    """The volume's directory, the volume created if missing; a bind mount's path as it is."""
    if volume.startswith("/"):
        return Path(volume)  # a bind mount: no Podman needed
    podman = podman_client()
    podman.ensure_volume(volume)
    return podman.volume_path(volume)
