"""GGUF files in a service's model volume. A copy is whole or absent, never half there."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from airpods.errors import AirpodsError, UsageError
from airpods.spec import ContainerSpec

PARTIAL_SUFFIX = ".partial"
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelFile:
    name: str
    size: int


def model_location(spec: ContainerSpec) -> tuple[str, str]:
    """(volume, path inside it) of the model file `spec`'s kind says it serves."""
    from airpods import kinds

    mounts = {m.target: m.source for m in spec.mounts}
    return model_volume(kinds.get(spec.kind).model_path(spec), mounts)


def model_volume(model: str | None, mounts: dict[str, str]) -> tuple[str, str]:
    """(volume, path inside it) for the service's model file: the mount that holds it.

    `model` is the path inside the container (its kind's `model_path`); `mounts` maps container
    target → volume source.
    """
    if model is None:
        raise AirpodsError("the service has no --model argument", hint="set command_args.model")
    for target, source in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
        prefix = target.rstrip("/") + "/"
        if model.startswith(prefix):
            return source, model[len(prefix):]
    raise AirpodsError(
        f"no volume is mounted where the model {model} lives",
        hint="add a volume whose target contains the model path",
    )


def check_gguf(path: Path) -> None:
    with open(path, "rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise UsageError(f"{path} is not a GGUF file", hint="llama-server loads .gguf models")


def list_models(root: Path) -> list[ModelFile]:
    """GGUF files under `root`; partial copies are not models and are not listed."""
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.endswith(PARTIAL_SUFFIX) and path.suffix == ".gguf":
            out.append(ModelFile(str(path.relative_to(root)), path.stat().st_size))
    return out


def add_model(
    source: Path, root: Path, name: str, progress: Callable[[int, int], None] = lambda d, t: None
) -> Path:
    """Copy `source` to `root/name` through a partial file and an atomic rename."""
    check_gguf(source)
    dest = root / name
    if not dest.resolve().is_relative_to(root.resolve()):
        raise AirpodsError(f"{name!r} would be written outside the model volume")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
    total = source.stat().st_size
    done = 0
    try:
        with open(source, "rb") as src, open(partial, "wb") as out:
            while chunk := src.read(8 << 20):
                out.write(chunk)
                done += len(chunk)
                progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        shutil.copymode(source, partial)
        os.chmod(partial, 0o644)
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return dest
