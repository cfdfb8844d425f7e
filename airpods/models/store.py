"""GGUF files in a service's model volume. A copy is whole or absent, never half there."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airpods.durable import fsync_dir
from airpods.errors import AirpodsError, UsageError
from airpods.record import record
from airpods.spec import ContainerSpec, model_volume

if TYPE_CHECKING:
    from airpods.engine.podman_protocol import Podman

PARTIAL_SUFFIX = ".partial"
GGUF_MAGIC = b"GGUF"
MAX_NAME_BYTES = 255  # NAME_MAX on Linux file systems
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@record
class ModelFile:
    name: str
    size: int


def model_location(spec: ContainerSpec) -> tuple[str, str]:
    """(volume, path inside it) of the model file `spec`'s kind says it serves."""
    from airpods import kinds

    mounts = {m.target: m.source for m in spec.mounts}
    serves = kinds.capable(spec.kind, kinds.ServesModels)
    return model_volume(serves.model_path(spec) if serves else None, mounts)


def check_name(name: str, *, flat: bool = False) -> str:
    """A model's file name in the volume: `*.gguf`, maybe in a sub-folder, never outside it.

    `flat`: a new file's name (`import`/`pull --name`) is a plain file name; sub-folders are
    only ever read (a volume filled by hand), never made.
    """
    fix = "give a file name ending in .gguf, e.g. --name my-model-q4_k_m.gguf"
    if not name or name.strip() != name:
        raise UsageError(f"model name {name!r} is empty or has surrounding blanks", hint=fix)
    if any(ord(c) < 32 or ord(c) == 127 for c in name) or "\\" in name:
        raise UsageError(f"model name {name!r} contains control characters or '\\'", hint=fix)
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise UsageError(f"model name {name!r} would leave the model volume", hint=fix)
    if flat and len(parts) > 1:
        raise UsageError(f"model name {name!r} names a sub-folder: give a plain file name",
                         hint=fix)
    if any(len(p.encode()) > MAX_NAME_BYTES for p in parts):
        raise UsageError(f"model name is too long (over {MAX_NAME_BYTES} bytes in one part)",
                         hint=fix)
    if any(p.startswith(".") for p in parts):
        raise UsageError(f"model name {name!r} starts with a dot (a hidden file)", hint=fix)
    if not name.endswith(".gguf"):
        raise UsageError(f"model name {name!r} does not end in .gguf", hint=fix)
    return name


def model_path(root: Path, name: str) -> Path:
    """`root/name`, refusing a name (or a symlink on the way) that leads outside `root`."""
    check_name(name)
    path = root / name
    if not path.resolve().is_relative_to(root.resolve()):
        raise UsageError(f"{name!r} leads outside the model volume (a symlink?)",
                         hint="airpods only reads and writes files inside the volume")
    return path


def check_gguf(path: Path) -> None:
    """Refuse, before anything is copied, a source that is not a regular file (a FIFO would
    block the read forever) or whose GGUF header is damaged, truncated or implausible."""
    import stat

    from airpods.config.files import file_kind
    from airpods.gguf_meta import validate

    try:
        st = os.stat(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path} is {file_kind(st.st_mode)}, not a GGUF file",
                         hint="import a regular .gguf file")
    validate(path)


def list_models(root: Path) -> list[ModelFile]:
    """GGUF files under `root`; partial copies and hidden files are not models, not listed."""
    out = []
    for path in sorted(root.rglob("*.gguf")):
        rel = path.relative_to(root)
        if any(p.startswith(".") for p in rel.parts) or not path.is_file():
            continue
        out.append(ModelFile(rel.as_posix(), path.stat().st_size))
    return out


def free_bytes(root: Path) -> int:
    st = os.statvfs(root)
    return st.f_bavail * st.f_frsize


def check_space(root: Path, needed: int, what: str) -> None:
    """Refuse before writing when the volume cannot hold `needed` more bytes."""
    free = free_bytes(root)
    if needed > free:
        raise AirpodsError(
            f"not enough disk space for {what}: needs {size_text(needed)}, {size_text(free)} free "
            f"in {root}",
            hint="free some space (`airpods models cleanup` lists unused models) and retry",
        )


def disk_full(what: str, root: Path) -> AirpodsError:
    return AirpodsError(
        f"disk full while writing {what} in {root}; the partial file was removed",
        hint="free some space (`airpods models cleanup` lists unused models) and retry",
    )


def size_text(n: int) -> str:
    """A byte count as people read it: "4.92 GB", "315.6 MB"."""
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def add_model(
    source: Path, root: Path, name: str, progress: Callable[[int, int], None] = lambda d, t: None
) -> Path:
    """Copy `source` to `root/name` through a partial file and an atomic rename."""
    dest = model_path(root, name)
    check_gguf(source)
    if dest.exists():
        raise UsageError(f"{name} is already in the volume",
                         hint="remove it first (`airpods models rm`) or pick another --name")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
    total = source.stat().st_size
    check_space(dest.parent, total, name)
    done = 0
    try:
        with _open_regular(source) as src, open(partial, "wb") as out:
            while chunk := src.read(8 << 20):
                out.write(chunk)
                done += len(chunk)
                progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        import shutil  # rarely: `start` imports this module, and shutil brings bz2 and lzma

        shutil.copymode(source, partial)
        os.chmod(partial, 0o644)
        os.replace(partial, dest)
        fsync_dir(dest.parent)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        if exc.errno in DISK_FULL:
            raise disk_full(name, root) from None
        raise
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return dest


def _open_regular(path: Path) -> Any:
    """`path` opened for reading; non-blocking so that a FIFO swapped in after the check
    cannot hang the copy, and refused unless the opened file is regular."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"{path} is not a regular file", hint="import a regular .gguf file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def remove_model(root: Path, name: str) -> int:
    """Delete `root/name` (and a partial download of it); its size."""
    path = model_path(root, name)
    size = path.stat().st_size
    path.unlink()
    path.with_name(path.name + PARTIAL_SUFFIX).unlink(missing_ok=True)
    return size


def volume_dir(podman: Podman, volume: str) -> Path | None:
    """The directory behind a named volume (or a bind mount's path); None if it does not exist."""
    if volume.startswith("/"):
        return Path(volume) if Path(volume).is_dir() else None
    return podman.volume_path(volume) if podman.volume_exists(volume) else None
