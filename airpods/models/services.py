"""Models as services see them: which model a service serves, from which volume, whether it
fits, who uses it, and the first-use download `start` does. No CLI here: callers print.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airpods.errors import AirpodsError, UsageError
from airpods.host import ram_total
from airpods.models.store import volume_dir
from airpods.record import record

if TYPE_CHECKING:
    from airpods.engine.podman_protocol import Podman
    from airpods.fit import Fit, MemoryEstimate
    from airpods.gguf_meta import ModelMeta
    from airpods.host import HostFacts
    from airpods.models.meta_cache import MetaCache
    from airpods.models.usage import Use
    from airpods.resolved import Resolved
    from airpods.spec import ContainerSpec


def served_model(spec: ContainerSpec) -> tuple[str, str] | None:
    """(volume or bind path, model file in it) when the service serves a GGUF, else None.

    Where the model is comes from the service's kind (airpods.kinds: llama-server's --model).
    """
    from airpods.models.store import model_location

    try:
        return model_location(spec)
    except AirpodsError:
        return None


@record
class Serving:
    """The models a service serves from one volume: the files its config names, and for a
    router without presets a directory whose every GGUF it serves."""

    volume: str  # a volume name, or a host directory for a bind mount
    files: tuple[str, ...]  # paths inside the volume
    directory: str | None = None  # inside the volume ("" = all of it); None: `files` only

    def serves(self, volume: str, model: str) -> bool:
        if volume != self.volume:
            return False
        if model in self.files:
            return True
        top = self.directory
        return top is not None and (top == "" or model.startswith(top.rstrip("/") + "/"))


def serving(spec: ContainerSpec) -> Serving | None:
    """What `spec` serves from its model volume (its kind says where), or None."""
    from airpods import kinds
    from airpods.spec import model_volume, mount_for

    kind = kinds.capable(spec.kind, kinds.ServesModels)
    if kind is None:
        return None
    mounts = {m.target: m.source for m in spec.mounts}
    directory = kind.model_dir(spec)
    where = mount_for(directory, mounts) if directory else None
    files: list[tuple[str, str]] = []
    for path in kind.model_files(spec):
        try:
            files.append(model_volume(path, mounts))
        except AirpodsError:
            continue  # not in a volume: nothing a model command manages
    volume = where[0] if where else files[0][0] if files else None
    if volume is None:
        return None
    return Serving(volume, tuple(f for v, f in files if v == volume), where[1] if where else None)


def model_services(resolved: Resolved) -> dict[str, tuple[str, str]]:
    """service -> (volume, model) for every configured service that serves one GGUF file."""
    found = {}
    for name in resolved.services:
        served = served_model(resolved.specs[name])
        if served is not None:
            found[name] = served
    return found


def model_volumes(resolved: Resolved) -> list[str]:
    """The volumes configured services serve models from, each once."""
    return list(dict.fromkeys(
        s.volume for n in resolved.services if (s := serving(resolved.specs[n])) is not None))


def pick_service(resolved: Resolved, service: str | None) -> str:
    """The named service (it must serve GGUF models), or the first enabled one that does."""
    from airpods.resolved import select_services

    if service is not None:
        select_services(resolved, (service,))
        if serving(resolved.specs[service]) is None:
            raise UsageError(f"service {service!r} serves no GGUF model from a volume",
                             hint="name a llama-server service with --service")
        return service
    for name in resolved.enabled_services():
        if serving(resolved.specs[name]) is not None:
            return name
    raise UsageError("no enabled service serves a GGUF model", hint="name one with --service")


def users(
    resolved: Resolved, volume: str, model: str, among: Iterable[str] | None = None,
    servings: dict[str, Serving | None] | None = None,
) -> list[str]:
    """Services (`among`, default: every configured one) serving this model from this volume.
    `servings`: each service's `serving`, worked out once for a list of many models."""
    names = list(resolved.services) if among is None else list(among)
    if servings is None:
        servings = {n: serving(resolved.specs[n]) for n in names}
    return [n for n in names if (s := servings[n]) and s.serves(volume, model)]


def running_services(resolved: Resolved, podman: Podman) -> list[str]:
    """The configured services whose container runs: a model they serve is in use."""
    running = {n for n, a in podman.managed().items() if a.state == "running"}
    return [n for n in resolved.services if n in running]


def uses(resolved: Resolved, names: Iterable[str]) -> list[Use]:
    from airpods.models.usage import Use

    services = model_services(resolved)
    return [Use(*services[n], n) for n in names if n in services]


# --- metadata and fit -------------------------------------------------------------------------


def model_size(directory: Path, name: str) -> int:
    """Bytes of a model, all parts of a split GGUF included."""
    parts = [name]
    if "-of-" in name:  # a split GGUF's name: refs (and its regexes) only then
        from airpods.hub.refs import split_parts

        parts = split_parts(name)
    total = 0
    for part in parts:
        path = directory / part
        total += path.stat().st_size if path.exists() else 0
    return total


def read_meta_or_none(path: Path) -> ModelMeta | None:
    return read_meta_or_why(path)[0]


def read_meta_or_why(path: Path) -> tuple[ModelMeta | None, str | None]:
    """(the model facts, None), or (None, why the file is damaged): one bad file never stops
    a listing."""
    from airpods.gguf_meta import read_meta

    try:
        return read_meta(path), None
    except AirpodsError as exc:
        why = exc.message.removeprefix(f"{path}: ").removeprefix(f"{path} ")
        return None, why.removeprefix("is ")


@record
class Estimate:
    ctx: int
    memory: MemoryEstimate
    fits: Fit


def estimate_for(spec: ContainerSpec, host: HostFacts, meta: ModelMeta, weights: int,
                 *, vram: Callable[[HostFacts], int | None] | None = None) -> Estimate:
    """Memory for this service's ctx_size, and whether it fits this host."""
    from airpods import fit as fitmod
    from airpods import kinds

    serves = kinds.capable(spec.kind, kinds.ServesModels)
    ctx = fitmod.effective_ctx(serves.context_size(spec) if serves else None, meta)
    est = fitmod.estimate(meta, weights, ctx)
    on_gpu = spec.accelerator != "cpu"
    vram_total = (vram or fitmod.vram_total)(host) if on_gpu else None
    result = fitmod.fit(meta, est, ctx, ram_total=ram_total() or 0,
                        vram_total=vram_total, on_gpu=on_gpu,
                        memory_limit=fitmod.parse_memory_limit(spec.memory))
    return Estimate(ctx, est, result)


def status_memory(spec: ContainerSpec, podman: Podman, host: HostFacts,
                  directories: dict[str, Path | None] | None = None) -> dict[str, Any] | None:
    """`status --json`'s `memory` of a service that serves a GGUF: the estimate at its ctx_size
    and whether it fits (both null while the file is not in the volume); None for others.
    Cheap: one header read (mmap), no heavy import; `directories` remembers each volume's
    directory across the services of one `status` (they often share one volume)."""
    served = served_model(spec)
    if served is None:
        return None
    volume, name = served
    directories = {} if directories is None else directories
    if volume not in directories:
        try:
            directories[volume] = volume_dir(podman, volume)
        except Exception:  # an estimate never breaks status: Podman's own errors show elsewhere
            directories[volume] = None
    directory = directories[volume]
    path = directory / name if directory is not None else None
    meta = read_meta_or_none(path) if path is not None and path.is_file() else None
    if meta is None or directory is None:
        return {"estimate_bytes": None, "fits": None}
    est = estimate_for(spec, host, meta, model_size(directory, name))
    return {"estimate_bytes": est.memory.total_bytes,
            "fits": bool(est.fits.ram and est.fits.vram is not False)}


def describe(directory: Path, name: str, size: int, *, last_used: float | None,
             used_by: list[str], meta_cache: MetaCache | None = None) -> dict[str, Any]:
    """One `models list` entry (the JSON contract); `meta_cache` remembers headers read."""
    from airpods.models.meta_cache import cached_meta
    from airpods.models.usage import iso

    meta, damaged = cached_meta(directory / name, meta_cache, read_meta_or_why)
    return {
        "name": name,
        "size": size,
        "architecture": meta.architecture if meta else None,
        "quantization": meta.quantization if meta else None,
        "parameters": meta.parameters if meta else None,
        "context_length": meta.context_length if meta else None,
        "last_used": iso(last_used),
        "used_by": used_by,
        "damaged": damaged,
    }


# --- start: download on first use, fit warning -----------------------------------------------


def warn_if_too_big(spec: ContainerSpec, host: HostFacts, directory: Path, name: str,
                    note: Callable[[str], None]) -> Estimate | None:
    meta = read_meta_or_none(directory / name)
    if meta is None:
        return None
    est = estimate_for(spec, host, meta, model_size(directory, name))
    if est.fits.ram is False or est.fits.vram is False:
        note(f"{spec.service}: {name} {est.fits.advice}")
    return est


def replicas_misfit(resolved: Resolved, spec: ContainerSpec, name: str,
                    est: Estimate) -> str | None:
    """Why the replicas of `spec`'s service (`replicas = N`: N servers of model file `name`,
    each needing `est`) do not fit this machine together, in one line; None when they do (or when
    there is only one). Each container's own memory limit is the per-server check's."""
    from airpods import fit as fitmod

    entries = resolved.services
    base = entries[spec.service].replica_of or spec.service
    n = 1 + sum(1 for entry in entries.values() if entry.replica_of == base)
    if n == 1:
        return None
    vram = fitmod.vram_total(resolved.host) if spec.accelerator != "cpu" else None
    total = vram if vram else ram_total() or 0
    headroom = fitmod.VRAM_HEADROOM if vram else fitmod.RAM_HEADROOM
    budget, need = int(total * (1 - headroom)), est.memory.total_bytes
    if need * n <= budget:
        return None
    where = f"{'VRAM' if vram else 'RAM'} ({fitmod.gb(total)} less {headroom:.0%} headroom)"
    most = budget // need if need else n
    fix = (f"set services.{base}.replicas to at most {most}" if most >= 1
           else "one server does not fit either: pick a smaller model or ctx_size")
    return (f"services.{base}.replicas: {n} servers of {name} need {n} x {fitmod.gb(need)} = "
            f"{fitmod.gb(need * n)}, more than the {fitmod.gb(budget)} of {where} available; "
            f"{fix}")


def record_usage(resolved: Resolved, names: Iterable[str], event: str,
                 tokens: dict[str, tuple[int, int]] | None = None) -> None:
    """Note in the usage database that these services started or stopped their models (with
    the tokens each had served, where known)."""
    names = list(names)
    if not names:
        return  # a start that changed nothing: no database (nor sqlite3) to open
    from airpods.models.usage import UsageDB

    found = uses(resolved, names)
    if found:
        UsageDB().record(event, found, tokens=tokens)


def served_tokens(resolved: Resolved, names: Iterable[str]) -> dict[str, tuple[int, int]]:
    """service -> (prompt, generated) tokens its llama-server has served, read from `/metrics`
    just before it stops. Only servers started with `--metrics`; one that does not answer
    within a second is skipped: a stop is never held up by bookkeeping."""
    from airpods import kinds
    from airpods.errors import LocalTransportError
    from airpods.http_clients import local
    from airpods.models.usage import parse_metrics

    found: dict[str, tuple[int, int]] = {}
    for name in names:
        spec = resolved.specs.get(name)
        if spec is None or "--metrics" not in spec.command or not spec.ports:
            continue
        api = kinds.capable(spec.kind, kinds.HasApi)
        key = api.api_key(spec) if api else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            with local(timeout=1.0) as client:
                resp = client.get(f"{spec.ports[0].url}/metrics", headers=headers)
        except LocalTransportError:
            continue
        counts = parse_metrics(resp.text) if resp.status_code == 200 else None
        if counts is not None:
            found[name] = counts
    return found


def answering_podman() -> Podman | None:
    """The Podman adapter when an API socket already answers, else None (a dry run starts no
    service just to look at the model files)."""
    import os

    from airpods.engine.podman import Podman
    from airpods.engine.podman_socket import answering_socket

    return Podman.connect() if answering_socket(os.environ) else None


def settle_specs(
    specs: Iterable[ContainerSpec], podman: Podman | None, host: HostFacts
) -> list[ContainerSpec]:
    """`specs` with their `deferred` settings decided from the model files (`Defers.settle`: a
    router's models_max = "auto"). Without Podman they keep their placeholders."""
    specs = list(specs)
    if podman is None or not any(spec.deferred for spec in specs):
        return specs
    from functools import partial

    from airpods import fit, kinds

    settled = []
    for spec in specs:
        if spec.deferred:
            on_gpu = spec.accelerator != "cpu"
            memory = kinds.Memory(ram_total(), fit.vram_total(host) if on_gpu else None)
            defers = kinds.capable(spec.kind, kinds.Defers)
            if defers:
                spec = defers.settle(spec, partial(_host_path, podman, spec), memory)
        settled.append(spec)
    return settled


def _host_path(podman: Podman, spec: ContainerSpec, path: str) -> Path | None:
    """Where `path` inside `spec`'s container is on this host, through the volume mounted
    there; None when nothing is mounted there or it would leave the volume."""
    from airpods.spec import mount_for

    found = mount_for(path, {m.target: m.source for m in spec.mounts})
    directory = volume_dir(podman, found[0]) if found is not None else None
    if found is None or directory is None:
        return None
    inside = directory / found[1]
    return inside if inside.resolve().is_relative_to(directory.resolve()) else None
