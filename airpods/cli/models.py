"""`airpods models`: pull, list, inspect, import and clean up the GGUF models services serve."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from airpods.cli import AppContext
from airpods.cli.models_view import (
    ensure_dir,
    existing_dir,
    model_target,
    params_text,
    podman_client,
)
from airpods.cli.params import DAYS
from airpods.models.store import size_text

if TYPE_CHECKING:
    from airpods.engine.podman_protocol import Podman
    from airpods.gguf_meta import ModelMeta
    from airpods.models.services import Estimate
    from airpods.resolved import Resolved

SERVICE_HELP = "The service whose model volume to use (default: the first enabled llama-server)."


@click.group()
def models() -> None:
    """Pull, list, inspect, import and clean up GGUF models in the model volumes."""


@models.command("pull")
@click.argument("ref")
@click.option("--service", default=None, help=SERVICE_HELP)
@click.option("--name", default=None, help="File name in the volume (default: the hub's).")
@click.option("--force", is_flag=True,
              help="For a bare ORG/REPO: pull the smallest quant even when none fits.")
@click.pass_obj
def pull_cmd(app: AppContext, ref: str, service: str | None, name: str | None,
             force: bool) -> None:
    """Download REF from Hugging Face into the model volume, resuming an interrupted pull.

    \b
    REF is ORG/REPO/FILE.gguf, hf://ORG/REPO/FILE.gguf, ORG/REPO:QUANT (e.g.
    Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M), or ORG/REPO: the largest quant whose size fits
    this machine's memory (as `models recommend` counts it), refused when none fits.
    HF_ENDPOINT selects a mirror, HF_TOKEN a token.
    """
    from airpods.cli.models_view import run_pull

    run_pull(app, (ref,), service=service, name=name, force=force)


@models.command("list")
@click.option("--service", default=None, help=SERVICE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_obj
def list_cmd(app: AppContext, service: str | None, as_json: bool) -> None:
    """List the models in the service's model volume; the configured one is marked."""
    from airpods.cli.models_view import show_models

    show_models(app, service, as_json)


@models.command("info")
@click.argument("name")
@click.option("--service", default=None, help=SERVICE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_obj
def info_cmd(app: AppContext, name: str, service: str | None, as_json: bool) -> None:
    """Show a model's metadata, its memory estimate at the service's ctx_size, and the fit."""
    from airpods.cli.output import echo_json
    from airpods.models.services import describe, estimate_for, model_size, read_meta_or_why, users
    from airpods.models.store import check_name, model_path
    from airpods.models.usage import UsageDB

    check_name(name)
    resolved, svc, volume, _ = model_target(app, service)
    directory = existing_dir(None, volume)
    if directory is None or not (directory / name).is_file():
        raise _unknown_model(name, volume)
    path = model_path(directory, name)  # a symlink out of the volume is refused, as `rm` does
    entry = describe(directory, name, path.stat().st_size,
                     last_used=UsageDB().last_used(volume).get(name),
                     used_by=users(resolved, volume, name))
    meta, _ = read_meta_or_why(path)
    est = None
    if meta is not None:
        est = estimate_for(resolved.specs[svc], resolved.host, meta, model_size(directory, name))
        from airpods.config.tiers import tool_calling_warning

        warning = tool_calling_warning(meta.parameters)
        if warning:  # stderr, so --json stays one object
            click.echo(f"warning: {name}: {warning}", err=True)
    entry["memory"] = est.memory.as_dict() if est else None
    entry["fits"] = est.fits.as_dict() if est else None
    if as_json:
        echo_json(entry)
    else:
        _print_info(entry, meta, est, svc)
    if entry["damaged"]:
        raise SystemExit(1)


def _print_info(entry: dict[str, Any], meta: ModelMeta | None, est: Estimate | None,
                svc: str) -> None:
    from airpods.gguf_meta import escape

    def show(value: Any) -> str:
        return escape(str(value)) if value is not None else "-"

    for key in ("name", "architecture", "quantization", "context_length", "last_used"):
        click.echo(f"{key + ':':<16}{show(entry[key])}")
    click.echo(f"{'size:':<16}{size_text(entry['size'])}")
    if entry["damaged"]:
        click.echo(f"{'damaged:':<16}{entry['damaged']}")
    click.echo(f"{'parameters:':<16}{params_text(entry['parameters']) or '-'}")
    if meta is not None:
        click.echo(f"{'layers:':<16}{meta.layers}  heads {meta.heads}, K/V heads "
                   f"{meta.kv_heads}, head dim {meta.head_dim}")
    click.echo(f"{'used by:':<16}{', '.join(entry['used_by']) or '-'}")
    if est is None:
        click.echo(f"{'memory:':<16}- (the header cannot be read)")
        return
    mem = est.memory
    click.echo(f"{'memory:':<16}{size_text(mem.total_bytes)} = "
               f"{size_text(mem.weights_bytes)} weights + {size_text(mem.kv_cache_bytes)} "
               f"K/V cache (f16, ctx {est.ctx}, service {svc})")
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
    from airpods.hub.refs import split_parts
    from airpods.models.services import running_services, users
    from airpods.models.store import check_name, remove_model
    from airpods.models.usage import UsageDB

    check_name(name)
    resolved, _, volume, _ = model_target(app, service)
    podman = podman_client()
    directory = existing_dir(podman, volume)
    if directory is None or not (directory / name).is_file():
        raise _unknown_model(name, volume)
    running = running_services(resolved, podman)
    parts = [p for p in split_parts(name) if (directory / p).is_file()]
    for part in parts:
        serving_it = users(resolved, volume, part, among=running)
        if serving_it:
            raise UsageError(f"{part} is in use by running service {', '.join(serving_it)}",
                             hint=f"stop it first: airpods stop {serving_it[0]}")
    size = sum((directory / p).stat().st_size for p in parts)
    if not yes:
        click.confirm(f"Delete {', '.join(parts)} ({size_text(size)}) from volume {volume}?",
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

    # Bad input fails before anything is touched: the name, then the whole header.
    target = check_name(name if name is not None else file.name, flat=True)
    check_gguf(file)
    _, _, volume, _ = model_target(app, service)
    dest = add_model(file, ensure_dir(volume), target)
    UsageDB().record("import", [Use(volume, target, "")])
    click.echo(f"added {dest.name} to volume {volume}")


models.add_command(import_cmd, "add")  # today's name, kept as an alias


@models.command("cleanup")
@click.option("--days", type=DAYS, default=30, show_default=True,
              help="Models not used for this many days are offered for deletion.")
@click.option("--yes", is_flag=True, help="Delete without asking.")
@click.pass_obj
def cleanup_cmd(app: AppContext, days: float, yes: bool) -> None:
    """List models not used in the last DAYS days (never-used ones too) and offer to delete them.

    Models a running service uses are never deleted.
    """
    from airpods.cli.context import resolve
    from airpods.gguf_meta import escape
    from airpods.models.services import running_services
    from airpods.models.store import PARTIAL_SUFFIX
    from airpods.models.usage import UsageDB, iso

    resolved = resolve(app)
    podman = podman_client()
    db = UsageDB()
    found, notes = _cleanup_candidates(resolved, podman, db, days,
                                       running_services(resolved, podman))
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if not found:
        click.echo(f"no model unused for {days:g} days")
        return
    for volume, _, cand in found:
        when = f"last used {iso(cand.last_used)}" if cand.last_used else "never used"
        click.echo(f"{volume}/{escape(cand.name)}  {size_text(cand.size)}  {when}")
    total = sum(c.size for _, _, c in found)
    click.echo(f"{len(found)} model(s), {size_text(total)} to reclaim")
    if not yes and not sys.stdin.isatty():
        click.echo("nothing deleted (pass --yes to delete them)")
        return
    if not yes and not click.confirm("Delete them?", default=False, err=True):
        click.echo("nothing deleted")
        return
    for volume, path, cand in found:
        path.unlink(missing_ok=True)  # each one checked above, before the first deletion
        path.with_name(path.name + PARTIAL_SUFFIX).unlink(missing_ok=True)
        db.forget(volume, cand.name)
        click.echo(f"deleted {volume}/{escape(cand.name)}")


def _cleanup_candidates(
    resolved: Resolved, podman: Podman, db: Any, days: float,
    running: list[str],
) -> tuple[list[tuple[str, Path, Any]], list[str]]:
    """(volume, checked path, candidate) for every model to offer, and notes on the skipped.

    Every entry is checked here, before anything is deleted: a symlink that leads out of the
    volume is skipped with a note, never a failure halfway through the deletions.
    """
    from airpods.errors import UsageError
    from airpods.gguf_meta import escape
    from airpods.models.services import model_volumes, users
    from airpods.models.store import list_models, model_path
    from airpods.models.usage import unused

    found: list[tuple[str, Path, Any]] = []
    notes: list[str] = []
    for volume in model_volumes(resolved):
        directory = existing_dir(podman, volume)
        if directory is None:
            continue
        models_here = [(m.name, m.size) for m in list_models(directory)]
        in_use = {name for name, _ in models_here if users(resolved, volume, name, running)}
        for cand in unused(models_here, db.last_used(volume), days, in_use):
            try:
                path = model_path(directory, cand.name)
            except UsageError:
                notes.append(f"skipped {volume}/{escape(cand.name)}: a symlink out of the "
                             "volume (airpods deletes only files inside it)")
                continue
            found.append((volume, path, cand))
    return found, notes


from airpods.cli.router_cmd import load_cmd, unload_cmd  # noqa: E402  (router mode: on demand)

models.add_command(load_cmd)
models.add_command(unload_cmd)

from airpods.cli.models_recommend import recommend, search  # noqa: E402  (by hardware)

models.add_command(recommend)
models.add_command(search)
