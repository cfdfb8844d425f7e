"""`models pull` and the first-use download: a reference -> the hub's files -> the volume."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from airpods.errors import UsageError
from airpods.models.hub import Hub
from airpods.models.refs import Ref, parse_ref
from airpods.models.store import PARTIAL_SUFFIX, check_name, check_space, model_path
from airpods.models.transfer import NoProgress, Progress, dest_names, download, http_client


@dataclass(frozen=True)
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
) -> Pulled:
    """Download `ref` into the directory `root` (a model volume). Returns what landed."""
    parsed = parse_ref(ref) if isinstance(ref, str) else ref
    if name is not None:
        check_name(name)
    hub = hub or Hub()
    progress = progress or NoProgress()
    # Building an httpx client loads the CA bundle (0.1-0.2 s): do it while the hub answers.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        building = pool.submit(http_client)
        try:
            files = hub.files_for(parsed)
        finally:
            client = building.result()
    names = dest_names(files, name)
    moved, skipped = 0, []
    with client:
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
