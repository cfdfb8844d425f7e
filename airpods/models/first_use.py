"""The first-use download `start` does: every model file a service will actually serve (its
`--model`, or each router preset's file) that the volume lacks, from the source that is for
that file.

`model_source` names where `default_model` comes from. It applies to the served file only when
that file IS default_model (or the source names that very file): pointing `command_args.model`
at another, missing file used to download the unrelated default model under its name. The
built-in `model_source = "auto"` is the capability tier whose file is served (config/models.toml;
the built-in default_model is the tier `models recommend` marks auto for this host).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airpods.errors import AirpodsError, UsageError

if TYPE_CHECKING:
    from airpods.config.tiers import Tier
    from airpods.engine.podman_protocol import Podman
    from airpods.host import HostFacts
    from airpods.resolved import Resolved
    from airpods.spec import ContainerSpec

AUTO = "auto"


def served_files(spec: ContainerSpec) -> list[tuple[str, str]]:
    """(volume, file in it) of every model `spec` serves: each router preset's file, else the
    one `--model`. Files on no mounted volume are left out (nothing to download into)."""
    from airpods import kinds
    from airpods.spec import model_volume

    serves = kinds.capable(spec.kind, kinds.ServesModels)
    paths = serves.model_files(spec) if serves else ()
    mounts = {m.target: m.source for m in spec.mounts}
    found = []
    for path in paths:
        try:
            found.append(model_volume(path, mounts))
        except AirpodsError:
            continue
    return found


def auto_tier(file: str) -> Tier | None:
    from airpods.config.tiers import load_catalogue, tier_for_file

    return tier_for_file(file, load_catalogue())


def source_for(source: str | None, default_model: str | None, file: str) -> str | None:
    """The reference that downloads `file` (a path in the model volume), or None."""
    if not source:
        return None
    if source == AUTO:
        tier = auto_tier(file)
        return tier.source if tier is not None else None
    if file == default_model:
        return source
    from airpods.hub.refs import parse_ref

    ref = parse_ref(source)
    if ref.path is not None and ref.path.rsplit("/", 1)[-1] == file.rsplit("/", 1)[-1]:
        return source
    return None


def configured_source(svc: Any) -> str:
    """The reference `start` downloads the service's default_model from ("" for none), with
    "auto" resolved to its tier's file (doctor and `export kube --model-init` name it)."""
    default = getattr(svc, "default_model", None)
    if not default:
        return ""
    return source_for(getattr(svc, "model_source", None), default, default) or ""


def service_config(config_path: Path | None, host: HostFacts, service: str) -> Any:
    """The service's configuration (only when a model is missing: the resolved-services cache
    does not carry model_source)."""
    from airpods.config import load_config
    from airpods.secrets import SecretStore

    loaded = load_config(config_path, host=host, secrets=SecretStore())
    return loaded.config.services.get(service)


def plan(svc: Any, service: str, volume: str, file: str,
         host: HostFacts) -> tuple[str | None, str]:
    """(source, one line saying what start downloads and why) for a missing `file`; (None, why
    nothing is downloaded) when no source is for that file (llama-server then names the missing
    file in its log, as it always did)."""
    configured = getattr(svc, "model_source", None) if svc is not None else None
    default = getattr(svc, "default_model", None) if svc is not None else None
    source = source_for(configured, default, file)
    if source is None:
        if configured == AUTO:
            why = "model_source = \"auto\" knows no catalogue tier with that file"
        elif configured:
            why = f"model_source ({configured}) is where default_model ({default}) comes from"
        else:
            why = "no model_source is set"
        return None, (f"{service}: model {file} is not in volume {volume} and {why}: nothing "
                      f"to download (airpods models pull ORG/REPO/FILE.gguf --service {service} "
                      f"--name {file})")
    if configured == AUTO:
        return source, _auto_line(service, file, host)
    return source, f"{service}: {file} is not in volume {volume}; downloading {source}"


_NO_COMMERCE = ": no commercial use"


def _auto_line(service: str, file: str, host: HostFacts) -> str:
    from airpods.config.tiers import budget, fitting, licence_skipped, load_catalogue
    from airpods.fit import LLAMA_DEFAULT_CTX, gb

    tier = auto_tier(file)
    assert tier is not None  # source_for found it
    need = tier.estimate(LLAMA_DEFAULT_CTX)
    pick = next(iter(fitting(host, LLAMA_DEFAULT_CTX, [tier])), None)
    skipped = licence_skipped(host, LLAMA_DEFAULT_CTX, load_catalogue(), pick)
    passed = "".join(f"; skipped tier {t.name} ({t.repo}: {t.licence}, no commercial use)"
                     for t in skipped)
    barred = _NO_COMMERCE if tier.commercial_use is False else ""
    return (f"{service}: model_source = auto: tier {tier.name} ({tier.repo}:{tier.quant}, "
            f"licence {tier.licence}{barred}, about {gb(need)} at ctx {LLAMA_DEFAULT_CTX}) "
            f"fits {budget(host).describe()}{passed}; downloading {file}")


def prepare_models(
    resolved: Resolved,
    specs: Iterable[ContainerSpec],
    podman: Podman,
    *,
    config_path: Path | None,
    offline: bool,
    note: Callable[[str], None],
    progress: Any = None,
) -> None:
    """Before `start` (re)creates `specs`: pull each missing model that has a source, warn about
    models that will not fit. With `offline`, a missing model is an error saying what to run.
    """
    from airpods.models.services import replicas_misfit, warn_if_too_big
    from airpods.models.store import volume_dir

    for spec in specs:
        for volume, name in served_files(spec):
            directory = volume_dir(podman, volume)
            if directory is None or not (directory / name).exists():
                _first_use(spec, volume, name, podman, config_path, resolved.host, offline,
                           note, progress)
                directory = volume_dir(podman, volume)
            if directory is not None and (directory / name).exists():
                est = warn_if_too_big(spec, resolved.host, directory, name, note)
                # Every replica counted: refused before anything starts.
                misfit = replicas_misfit(resolved, spec, name, est) if est is not None else None
                if misfit is not None:
                    raise UsageError(misfit)


def _first_use(spec: ContainerSpec, volume: str, name: str, podman: Podman,
               config_path: Path | None, host: HostFacts, offline: bool,
               note: Callable[[str], None], progress: Any) -> None:
    from airpods.models.pull import pull

    svc = service_config(config_path, host, spec.service)
    source, line = plan(svc, spec.service, volume, name, host)
    if source is None:
        if getattr(svc, "model_source", None):  # set, but for another file: say so
            note(line)
        return
    command = f"airpods models pull {source} --service {spec.service} --name {name}"
    if offline:
        raise UsageError(f"{spec.service}: model {name} is not in volume {volume} and --offline "
                         "forbids downloading it", hint=f"run `{command}` first")
    if volume.startswith("/"):
        directory = Path(volume)
    else:
        podman.ensure_volume(volume)
        directory = podman.volume_path(volume)
    note(line)
    pull(source, directory, name=name, progress=progress)


def dry_run_line(spec: ContainerSpec, volume: str, name: str, config_path: Path | None,
                 host: HostFacts) -> str | None:
    """What `start` would download for a missing model, for `start --dry-run` (nothing is)."""
    try:
        svc = service_config(config_path, host, spec.service)
        source, line = plan(svc, spec.service, volume, name, host)
    except AirpodsError as exc:
        return f"model:    {exc.one_line()}"
    if source is None:
        return f"model:    {line}"
    return (f"model:    {line.replace('; downloading', '; start would download')} "
            "(dry run: nothing downloaded)")


def dry_run_estimates(resolved: Resolved, specs: Iterable[ContainerSpec],
                      config_path: Path | None = None) -> tuple[list[str], str | None]:
    """Lines for `start --dry-run`: each model's memory estimate and fit, or why there is none;
    and the line `start` would refuse with when the replicas of a model do not fit together
    (models.services.replicas_misfit: every replica counted), else None.

    Asks Podman only when its socket already answers: a dry run starts nothing.
    """
    from airpods.models.services import (
        answering_podman,
        estimate_for,
        model_size,
        read_meta_or_none,
        replicas_misfit,
        served_model,
    )
    from airpods.models.store import size_text, volume_dir

    served = [(s, vm) for s in specs if (vm := served_model(s)) is not None]
    if not served:
        return [], None
    podman = answering_podman()
    lines, refusal = [], None
    for spec, (volume, name) in served:
        directory = volume_dir(podman, volume) if podman is not None else None
        if directory is None or not (directory / name).exists():
            where = "Podman is not running" if podman is None else f"not in volume {volume}"
            lines.append(f"model:    {spec.service}: {name} ({where}: no memory estimate)")
            if podman is not None:  # known missing: say what start would download (reads config)
                planned = dry_run_line(spec, volume, name, config_path, resolved.host)
                lines += [planned] if planned else []
            continue
        meta = read_meta_or_none(directory / name)
        if meta is None:
            lines.append(f"model:    {spec.service}: {name} is not a readable GGUF")
            continue
        est = estimate_for(spec, resolved.host, meta, model_size(directory, name))
        mem = est.memory
        lines.append(f"model:    {spec.service}: {name}: {size_text(mem.total_bytes)} = "
                     f"{size_text(mem.weights_bytes)} weights + "
                     f"{size_text(mem.kv_cache_bytes)} K/V cache at ctx {est.ctx}; "
                     f"{est.fits.advice}")
        refusal = refusal or replicas_misfit(resolved, spec, name, est)
    return lines, refusal
