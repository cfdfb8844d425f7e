"""`models pull` and the first-use download: a reference -> the hub's files -> the volume."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from airpods.errors import UsageError
from airpods.hub.client import Hub
from airpods.hub.refs import Ref, RemoteFile, parse_ref, quant_sizes
from airpods.models.store import PARTIAL_SUFFIX, check_name, check_space, model_path
from airpods.models.transfer import NoProgress, Progress, dest_names, download
from airpods.record import record

if TYPE_CHECKING:
    from airpods.config.tiers import Budget


@record
class Pulled:
    names: list[str]
    bytes_moved: int
    skipped: list[str]


def pull(
    ref: str | Ref,
    root: Path,
    *,
    name: str | None = None,
    progress: Progress | None = None,
    hub: Hub | None = None,
    room: Budget | None = None,
    force: bool = False,
) -> Pulled:
    """Download `ref` into the directory `root` (a model volume). Returns what landed.

    A bare `ORG/REPO` gets the largest quant that fits `room` (default: this host's budget).
    """
    parsed = parse_ref(ref) if isinstance(ref, str) else ref
    if name is not None:
        check_name(name)
    hub = hub or Hub()
    progress = progress or NoProgress()
    parsed = choose_quant(parsed, hub, room, force=force, note=progress.note)
    try:
        files = hub.files_for(parsed)  # HEADs on the hub's client, which the GETs reuse
        return _pull_files(files, root, name, progress, hub)
    finally:
        hub.close()


def _pull_files(files: list[RemoteFile], root: Path, name: str | None, progress: Progress,
                hub: Hub) -> Pulled:
    names = dest_names(files, name)
    moved, skipped = 0, []
    client = hub.http()
    for remote, target in zip(files, names, strict=True):
        dest = model_path(root, target)
        if dest.exists():
            if dest.stat().st_size == remote.size:
                skipped.append(target)
                progress.note(f"{target} is already in the volume")
                continue
            raise UsageError(f"{target} is already in the volume and differs from "
                             f"{remote.repo}/{remote.path}",
                             hint="remove it first (`airpods models rm`) or use --name")
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
        have = partial.stat().st_size if partial.exists() else 0
        check_space(dest.parent, remote.size - min(have, remote.size), target)  # no file yet
        moved += download(client, remote, dest, progress, hub.token)
    return Pulled(names, moved, skipped)


def choose_quant(ref: Ref, hub: Hub, room: Budget | None, *, force: bool,
                 note: Callable[[str], None]) -> Ref:
    """`ref` itself when it names a file or quant; for a bare repository, the file of the
    largest quant whose size (from the hub's listing) fits `room`, with a note saying why.
    Nothing fits: refused before a byte moves, unless `force` (then the smallest)."""
    if ref.path is not None or ref.quant is not None:
        return ref
    from airpods.config.tiers import budget, pick_fitting_quant

    quants = quant_sizes(hub.sizes(ref))
    if not quants:
        raise UsageError(f"{ref.repo} has no GGUF model files", hint="pick a GGUF repository")
    if room is None:
        from airpods.host import detect_host

        room = budget(detect_host())
    choice = pick_fitting_quant(ref.repo, quants, room)
    path, why = choice.path, choice.why
    if path is None:
        if not force:
            raise UsageError(f"{why}; nothing was downloaded",
                             hint=f"name a quant ({ref.repo}:QUANT) or pass --force")
        quant, (path, _) = min(quants.items(), key=lambda kv: kv[1][1])
        why = f"{why}; --force: pulling the smallest, {quant}"
    note(why)
    return Ref(ref.repo, path=path, revision=ref.revision)
