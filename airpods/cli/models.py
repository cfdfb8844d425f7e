"""`airpods models`: pull, list, inspect, import and clean up the GGUF models services serve."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from airpods.cli import AppContext

if TYPE_CHECKING:
    from airpods.engine.podman import Podman
    from airpods.resolved import Resolved

SERVICE_HELP = "The service whose model volume to use (default: the first enabled llama-server)."


def _target(app: AppContext, service: str | None) -> tuple[Resolved, str, str, str]:
    """(resolved, service, volume, configured model) for `service`, touching no Podman."""
    from airpods.cli.context import resolve
    from airpods.models.services import pick_service, served_model

    resolved = resolve(app)
    name = pick_service(resolved, service)
    volume, model = served_model(resolved.specs[name])  # type: ignore[misc]
    return resolved, name, volume, model


def _podman() -> Podman:
    from airpods.cli.context import connect
    from airpods.cli.output import make_console

    return connect(make_console())


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


@click.group()
def models() -> None:
    """Pull, list, inspect, import and clean up GGUF models in the model volumes."""


@models.command("pull")
@click.argument("ref")
@click.option("--service", default=None, help=SERVICE_HELP)
@click.option("--name", default=None, help="File name in the volume (default: the hub's).")
@click.pass_obj
def pull_cmd(app: AppContext, ref: str, service: str | None, name: str | None) -> None:
    """Download REF from Hugging Face into the model volume, resuming an interrupted pull.

    \b
    REF is ORG/REPO/FILE.gguf, hf://ORG/REPO/FILE.gguf, or ORG/REPO:QUANT (e.g.
    Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M). HF_ENDPOINT selects a mirror, HF_TOKEN a token.
    """
    from airpods.cli.pull_progress import PullProgress
    from airpods.models.hub import parse_ref, pull
    from airpods.models.store import check_name
    from airpods.models.usage import UsageDB, Use

    parsed = parse_ref(ref)  # bad input fails before anything is touched
    if name is not None:
        check_name(name)
    _, _, volume, _ = _target(app, service)
    directory = _ensure_dir(volume)
    try:
        got = pull(parsed, directory, name=name, progress=PullProgress())
    except KeyboardInterrupt:
        click.echo(f"interrupted: run `airpods models pull {ref}` again to resume", err=True)
        raise SystemExit(130) from None
    UsageDB().record("pull", [Use(volume, n, "") for n in got.names])
    for n in got.names:
        state = "already there" if n in got.skipped else "pulled"
        click.echo(f"{state}: {n} in volume {volume}")


def _ensure_dir(volume: str) -> Path:
    if volume.startswith("/"):
        return Path(volume)  # a bind mount: no Podman needed
    podman = _podman()
    podman.ensure_volume(volume)
    return podman.volume_path(volume)


def _existing_dir(podman: Podman, volume: str) -> Path | None:
    from airpods.models.services import volume_dir

    return volume_dir(podman, volume)


@models.command("list")
@click.option("--service", default=None, help=SERVICE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_obj
def list_cmd(app: AppContext, service: str | None, as_json: bool) -> None:
    """List the models in the service's model volume; the configured one is marked."""
    from airpods.cli.output import echo_json
    from airpods.models.services import describe, users
    from airpods.models.store import list_models
    from airpods.models.usage import UsageDB

    resolved, _, volume, current = _target(app, service)
    directory = _existing_dir(_podman(), volume)  # a missing volume is empty, not created
    found = list_models(directory) if directory is not None else []
    last = UsageDB().last_used(volume) if found else {}
    entries = [describe(directory, m.name, m.size, last_used=last.get(m.name),  # type: ignore
                        used_by=users(resolved, volume, m.name)) for m in found]
    if as_json:
        echo_json({"volume": volume, "configured": current, "models": entries})
        return
    for e in entries:
        mark = "*" if e["name"] == current else " "
        facts = ", ".join(str(x) for x in (e["architecture"], e["quantization"],
                                          _params(e["parameters"])) if x)
        used = f"last used {e['last_used']}" if e["last_used"] else "never used"
        click.echo(f"{mark} {e['name']}  {_gb(e['size'])}  {facts}  {used}")
    if not any(e["name"] == current for e in entries):
        click.echo(f"the configured model {current} is not in volume {volume}", err=True)


def _finite_days(value: float) -> float:
    import math

    if not math.isfinite(value):  # click's FloatRange lets nan through
        raise click.BadParameter(f"{value} is not a number of days", param_hint="'--days'")
    return value


def _params(n: int | None) -> str:
    if not n:
        return ""
    return f"{n / 1e9:.1f}B params" if n >= 1e8 else f"{n / 1e6:.1f}M params"


@models.command("info")
@click.argument("name")
@click.option("--service", default=None, help=SERVICE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_obj
def info_cmd(app: AppContext, name: str, service: str | None, as_json: bool) -> None:
    """Show a model's metadata, its memory estimate at the service's ctx_size, and the fit."""
    from airpods.cli.output import echo_json
    from airpods.models.gguf_meta import read_meta
    from airpods.models.services import describe, estimate_for, model_size, users
    from airpods.models.store import check_name
    from airpods.models.usage import UsageDB

    check_name(name)
    resolved, svc, volume, _ = _target(app, service)
    directory = _existing_dir(_podman(), volume)
    if directory is None or not (directory / name).is_file():
        raise _unknown_model(name, volume)
    meta = read_meta(directory / name)  # a non-GGUF file is one line
    size = model_size(directory, name)
    entry = describe(directory, name, (directory / name).stat().st_size,
                     last_used=UsageDB().last_used(volume).get(name),
                     used_by=users(resolved, volume, name))
    est = estimate_for(resolved.specs[svc], resolved.host, meta, size)
    entry["memory"] = est.memory.as_dict()
    entry["fits"] = est.fits.as_dict()
    if as_json:
        echo_json(entry)
        return
    for key in ("name", "architecture", "quantization", "context_length", "last_used"):
        click.echo(f"{key + ':':<16}{entry[key] if entry[key] is not None else '-'}")
    click.echo(f"{'size:':<16}{_gb(entry['size'])}")
    click.echo(f"{'parameters:':<16}{_params(entry['parameters']) or '-'}")
    click.echo(f"{'layers:':<16}{meta.layers}  heads {meta.heads}, K/V heads {meta.kv_heads}, "
               f"head dim {meta.head_dim}")
    click.echo(f"{'used by:':<16}{', '.join(entry['used_by']) or '-'}")
    mem = est.memory
    click.echo(f"{'memory:':<16}{_gb(mem.total_bytes)} = {_gb(mem.weights_bytes)} weights + "
               f"{_gb(mem.kv_cache_bytes)} K/V cache (f16, ctx {est.ctx}, service {svc})")
    vram = {True: "yes", False: "no", None: "-"}[est.fits.vram]
    click.echo(f"{'fits:':<16}RAM {'yes' if est.fits.ram else 'no'}, VRAM {vram}: "
               f"{est.fits.advice}")


def _unknown_model(name: str, volume: str) -> Exception:
    from airpods.errors import UsageError

    return UsageError(f"no model {name!r} in volume {volume}",
                      hint="`airpods models list` shows the models there")


@models.command("rm")
@click.argument("name")
@click.option("--service", default=None, help=SERVICE_HELP)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def rm_cmd(app: AppContext, name: str, service: str | None, yes: bool) -> None:
    """Delete model NAME from the volume (never one a running service uses)."""
    from airpods.errors import UsageError
    from airpods.models.hub import split_parts
    from airpods.models.services import running_models
    from airpods.models.store import check_name, remove_model
    from airpods.models.usage import UsageDB

    check_name(name)
    resolved, _, volume, _ = _target(app, service)
    podman = _podman()
    directory = _existing_dir(podman, volume)
    if directory is None or not (directory / name).is_file():
        raise _unknown_model(name, volume)
    running = running_models(resolved, podman)
    parts = [p for p in split_parts(name) if (directory / p).is_file()]
    for part in parts:
        if (volume, part) in running:
            raise UsageError(f"{part} is in use by running service "
                             f"{', '.join(running[(volume, part)])}",
                             hint=f"stop it first: airpods stop {running[(volume, part)][0]}")
    size = sum((directory / p).stat().st_size for p in parts)
    if not yes:
        click.confirm(f"Delete {', '.join(parts)} ({_gb(size)}) from volume {volume}?",
                      abort=True, err=True)
    for part in parts:
        remove_model(directory, part)
        UsageDB().forget(volume, part)
        click.echo(f"deleted {part} from volume {volume}")


@models.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--service", default=None, help=SERVICE_HELP)
@click.option("--name", default=None, help="File name in the volume (default: the file's name).")
@click.pass_obj
def import_cmd(app: AppContext, file: Path, service: str | None, name: str | None) -> None:
    """Copy a local GGUF FILE into the service's model volume (atomically)."""
    from airpods.models.store import add_model, check_gguf, check_name
    from airpods.models.usage import UsageDB, Use

    check_gguf(file)  # bad input fails before anything is touched
    target = check_name(name if name is not None else file.name)
    _, _, volume, _ = _target(app, service)
    dest = add_model(file, _ensure_dir(volume), target)
    UsageDB().record("import", [Use(volume, target, "")])
    click.echo(f"added {dest.name} to volume {volume}")


models.add_command(import_cmd, "add")  # today's name, kept as an alias


@models.command("cleanup")
@click.option("--days", type=click.FloatRange(min=0, max=100_000), default=30, show_default=True,
              callback=lambda ctx, param, value: _finite_days(value),
              help="Models not used for this many days are offered for deletion.")
@click.option("--yes", is_flag=True, help="Delete without asking.")
@click.pass_obj
def cleanup_cmd(app: AppContext, days: float, yes: bool) -> None:
    """List models not used in the last DAYS days (never-used ones too) and offer to delete them.

    Models a running service uses are never deleted.
    """
    from airpods.cli.context import resolve
    from airpods.models.services import model_services, running_models
    from airpods.models.store import list_models, remove_model
    from airpods.models.usage import UsageDB, iso, unused

    resolved = resolve(app)
    podman = _podman()
    running = running_models(resolved, podman)
    db = UsageDB()
    found = []
    for volume in dict.fromkeys(v for v, _ in model_services(resolved).values()):
        directory = _existing_dir(podman, volume)
        if directory is None:
            continue
        in_use = {m for (v, m) in running if v == volume}
        models_here = [(m.name, m.size) for m in list_models(directory)]
        for cand in unused(models_here, db.last_used(volume), days, in_use):
            found.append((volume, directory, cand))
    if not found:
        click.echo(f"no model unused for {days:g} days")
        return
    for volume, _, cand in found:
        when = f"last used {iso(cand.last_used)}" if cand.last_used else "never used"
        click.echo(f"{volume}/{cand.name}  {_gb(cand.size)}  {when}")
    total = sum(c.size for _, _, c in found)
    click.echo(f"{len(found)} model(s), {_gb(total)} to reclaim")
    if not yes and not sys.stdin.isatty():
        click.echo("nothing deleted (pass --yes to delete them)")
        return
    if not yes and not click.confirm("Delete them?", default=False, err=True):
        click.echo("nothing deleted")
        return
    for volume, directory, cand in found:
        remove_model(directory, cand.name)
        db.forget(volume, cand.name)
        click.echo(f"deleted {volume}/{cand.name}")


from airpods.cli.router_cmd import load_cmd, unload_cmd  # noqa: E402  (router mode: on demand)

models.add_command(load_cmd)
models.add_command(unload_cmd)
