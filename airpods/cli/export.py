"""`airpods export kube` and `airpods export quadlet`: the stack `start` runs, for Kubernetes or
for systemd, rendered from the same ContainerSpecs.

Everything is rendered and checked before anything is written: bad input changes nothing.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from airpods.cli import AppContext

if TYPE_CHECKING:
    from airpods.resolved import Resolved
    from airpods.spec import ContainerSpec

_URL_HOST = re.compile(r"https?://([A-Za-z0-9._-]+):\d+")


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write atomically with `mode` (a reader never sees half a file, nor a wider mode).

    Only ever replaces a regular file: a device, FIFO, socket or directory in the way is one
    clear error, never swapped for a file (`-o /dev/full` must not replace the device). A
    symlink is refused too (see `_refuse_link`).
    """
    from airpods.config.files import atomic_write

    _refuse_link(path)
    _ensure_dir(Path(os.path.realpath(path)).parent)
    atomic_write(path, text, mode=mode, check=_regular_or_refuse)


def _refuse_link(path: Path) -> None:
    """Exports hold secrets (the kube YAML's Secrets, the secret files), so they are never
    written through a symlink: a link planted in a shared directory would send them wherever
    it points. Refused rather than replaced by a file, because replacing it would silently cut
    a link the user made on purpose (dotfiles); one line says which, and they choose."""
    from airpods.errors import UsageError

    if path.is_symlink():
        raise UsageError(f"{path} is a symlink: airpods does not write exports through one",
                         hint="give the real path, or remove the link")


def output_path(value: str | None, *, stdout_ok: bool) -> Path | None:
    """`-o`/`--output`: None (or `-` where stdout is allowed) for stdout; "" is refused (it
    would mean the current directory)."""
    from airpods.errors import UsageError

    if value is None or (stdout_ok and value == "-"):
        return None
    if value.strip() == "" or value == "-":
        what = "an empty path" if value.strip() == "" else "'-' (stdout)"
        raise UsageError(f"--output {value!r}: {what} is not where files can go",
                         hint="give a directory for the units" if not stdout_ok
                         else "give a file name, or leave -o out (or -o -) for stdout")
    return Path(value)


def _regular_or_refuse(path: Path) -> os.stat_result | None:
    _refuse_special(path, want_dir=False)
    return None


def _refuse_special(path: Path, *, want_dir: bool) -> None:
    """One line when `path` exists and is not what is written there (a file, or a folder)."""
    import stat

    from airpods.config.files import file_kind
    from airpods.errors import UsageError

    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"cannot use {path}: {exc.strerror or exc}") from None
    if want_dir and not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path} is not a directory", hint="give a directory for the units")
    if not want_dir and not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path} is {file_kind(st.st_mode)}, not a regular file: airpods "
                         "only replaces regular files", hint="choose another --output")


def _ensure_dir(path: Path, mode: int = 0o777) -> None:
    from airpods.errors import UsageError

    _refuse_special(path, want_dir=True)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=mode)
    except OSError as exc:  # /proc, a read-only mount, no permission: one line
        raise UsageError(f"cannot create directory {path}: {exc.strerror or exc}",
                         hint="choose a directory you can write") from None


def _secrets_dir(path: Path) -> Path:
    from airpods.errors import UsageError

    _ensure_dir(path, 0o700)
    try:
        os.chmod(path, 0o700)
    except OSError as exc:
        raise UsageError(f"cannot make {path} private: {exc.strerror or exc}",
                         hint="choose a directory you own for --podman-secrets") from None
    return path


def _selected(app: AppContext, services: tuple[str, ...]) -> tuple[Resolved, list[ContainerSpec]]:
    """The specs `start SERVICES` would use; generated secrets are saved, so that the exported
    keys are the ones `start` and clients use."""
    from airpods.cli.context import resolve_and_keep_secrets
    from airpods.resolved import select_services

    resolved = resolve_and_keep_secrets(app)
    names = select_services(resolved, services)
    return resolved, [_for_export(resolved.specs[n]) for n in names]


def _for_export(spec: ContainerSpec) -> ContainerSpec:
    """What `start` takes from this shell (a gateway remote's key variable), taken now: unset
    is the same one-line refusal as at `start`, before anything is written."""
    from airpods import kinds
    from airpods.errors import UsageError

    kind = kinds.capable(spec.kind, kinds.Defers)
    if kind is None:
        return spec
    problems = kind.start_problems(spec, os.environ)
    if problems:
        raise UsageError(problems[0])
    return kind.for_export(spec, os.environ)


def _unreached(resolved: Resolved, specs: list[ContainerSpec]) -> list[str]:
    """Notes for env URLs naming a service's alias that the export leaves out."""
    chosen = {s.service for s in specs}
    aliases = {a: name for name, spec in resolved.specs.items() if name not in chosen
               for a in spec.network_aliases}
    notes = []
    for spec in specs:
        for key, value in spec.env.items():
            if key in spec.secret_env:
                continue
            for host in _URL_HOST.findall(value):
                if host in aliases:
                    notes.append(f"{spec.service}: {key} points at {host} "
                                 f"({aliases[host]}), which this export does not include")
    return notes


def _model_sources(app: AppContext, specs: list[ContainerSpec]) -> dict[str, str]:
    """`model_source` of each exported service that serves a model file (`--model`)."""
    from airpods.config import load_config
    from airpods.errors import AirpodsError, UsageError
    from airpods.models.store import model_location

    loaded = load_config(app.config_path)
    sources: dict[str, str] = {}
    for spec in specs:
        try:
            model_location(spec)
        except AirpodsError:
            continue  # no model file to fetch (Open WebUI, Ollama)
        svc = loaded.config.services[spec.service]
        from airpods.models.first_use import configured_source

        source = configured_source(svc)
        if not source:
            raise UsageError(
                f"--model-init: services.{spec.service}.model_source is not set",
                hint="set it to hf://ORG/REPO/FILE.gguf, or export without --model-init "
                "and put the model in the volume yourself (see the README)",
            )
        sources[spec.service] = str(source)
    return sources


@click.group()
def export() -> None:
    """Export the stack as Kubernetes YAML or systemd quadlet units."""


@export.command("kube")
@click.argument("services", nargs=-1)
@click.option("-o", "--output", "output_arg", metavar="FILE",
              help="Write the YAML to FILE (mode 0600: it holds the Secrets); default (or -) "
              "stdout.")
@click.option("--model-init", is_flag=True,
              help="Add an initContainer that downloads the model from model_source when the "
              "volume lacks it.")
@click.option("--podman-secrets", type=click.Path(file_okay=False, path_type=Path),
              metavar="DIR",
              help="For `podman kube play`: write each Secret as a Podman secret file in DIR "
              "(0600), leave the Secret documents out, and print the commands.")
@click.option("--pvc-size", default="20Gi", show_default=True,
              help="Storage requested by each PersistentVolumeClaim (a Kubernetes quantity).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary on stdout.")
@click.pass_obj
def kube(
    app: AppContext,
    services: tuple[str, ...],
    output_arg: str | None,
    model_init: bool,
    podman_secrets: Path | None,
    pvc_size: str,
    as_json: bool,
) -> None:
    """Kubernetes YAML for SERVICES (default: every enabled one), as `start` would run them."""
    from airpods.cli.output import echo_json
    from airpods.export.checks import check_quantity
    from airpods.export.kube import render_kube

    output = output_path(output_arg, stdout_ok=True)  # before anything is written or saved
    check_quantity(pvc_size, "--pvc-size")
    if output is not None:
        _refuse_link(output)
        _refuse_special(Path(os.path.realpath(output)), want_dir=False)
    if podman_secrets is not None:
        _refuse_special(podman_secrets, want_dir=True)
    resolved, specs = _selected(app, services)
    sources = _model_sources(app, specs) if model_init else {}
    result = render_kube(specs, model_sources=sources, pvc_size=pvc_size,
                         source=str(resolved.user_path))
    text = result.text(secrets=podman_secrets is None)
    secret_files: dict[str, str | None] = {s.name: None for s in result.podman_secrets}
    commands: list[str] = []
    if podman_secrets is not None:
        for secret in result.podman_secrets:  # every one before the first is written
            _refuse_link(podman_secrets / f"{secret.name}.json")
        directory = _secrets_dir(podman_secrets)
        for secret in result.podman_secrets:
            path = directory / f"{secret.name}.json"
            write_private(path, secret.payload)
            secret_files[secret.name] = str(path)
            commands.append(shlex.join(["podman", "secret", "create", secret.name, str(path)]))
        commands.append(shlex.join(["podman", "kube", "play", str(output or "FILE.yaml")]))
    if output is not None:
        write_private(output, text)
    notes = [*_unreached(resolved, specs), *result.notes]  # and the options kube cannot carry
    if as_json:
        data: dict[str, Any] = {
            "format": "kube",
            "services": [s.service for s in specs],
            "output": str(output) if output else None,
            "documents": [{"kind": d.kind, "name": d.name} for d in result.documents
                          if podman_secrets is None or d.kind != "Secret"],
            "secrets": [{"name": s.name, "usage": s.usage, "file": secret_files[s.name]}
                        for s in result.podman_secrets],
            "commands": commands,
            "notes": notes,
        }
        if output is None:
            data["yaml"] = text
        echo_json(data)
        return
    if output is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {output} ({len(result.documents)} documents)", err=True)
    _notes_and_commands(notes, commands, "Podman: create the secrets, then play the rest "
                        "(remove an older secret first: podman secret rm NAME):")


def _check_units(output: Path, units: dict[str, str], force: bool) -> None:
    """Every unit is checked before the first is written: one already there is replaced only
    with --force (it may be the user's own edit), and a symlink never."""
    from airpods.errors import UsageError

    for name in sorted(units):
        path = output / name
        _refuse_link(path)
        if path.exists() and not force:
            raise UsageError(f"{path} already exists",
                             hint="pass --force to replace the units, or choose another --output")


@export.command("quadlet")
@click.argument("services", nargs=-1)
@click.option("-o", "--output", "output_arg", required=True, metavar="DIR",
              help="Directory for the units (e.g. ~/.config/containers/systemd).")
@click.option("--force", is_flag=True, help="Replace units already in DIR.")
@click.option("--pod", "pods", is_flag=True,
              help="Put each service in a .pod unit, like `start` does (needs Podman 5.0+).")
@click.option("--podman-secrets", type=click.Path(file_okay=False, path_type=Path),
              metavar="DIR",
              help="Where the secret values are written for `podman secret create` "
              "(default: OUTPUT/airpods-secrets, 0700).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary on stdout.")
@click.pass_obj
def quadlet(
    app: AppContext,
    services: tuple[str, ...],
    output_arg: str,
    force: bool,
    pods: bool,
    podman_secrets: Path | None,
    as_json: bool,
) -> None:
    """systemd quadlet units for SERVICES (default: every enabled one), so they start at boot."""
    from airpods.cli.output import echo_json
    from airpods.export.quadlet import render_quadlet

    output = output_path(output_arg, stdout_ok=False)
    assert output is not None
    _refuse_special(output, want_dir=True)  # before anything is written or saved
    if podman_secrets is not None:
        _refuse_special(podman_secrets, want_dir=True)
    resolved, specs = _selected(app, services)
    result = render_quadlet(specs, network=resolved.settings.network, pods=pods)
    _check_units(output, result.units, force)
    for secret in result.secrets:  # also before the first unit is written
        _refuse_link((podman_secrets or output / "airpods-secrets") / secret.name)
    for name, text in result.units.items():
        write_private(output / name, text, mode=0o644)  # no secret in any unit
    commands: list[str] = []
    secrets: list[dict[str, Any]] = []
    if result.secrets:
        directory = _secrets_dir(podman_secrets or output / "airpods-secrets")
        seen: set[str] = set()
        for secret in result.secrets:
            path = directory / secret.name
            if secret.name not in seen:
                write_private(path, secret.value)
                commands.append(shlex.join(["podman", "secret", "create", secret.name,
                                            str(path)]))
                seen.add(secret.name)
            secrets.append({"name": secret.name, "usage": secret.usage, "file": str(path)})
    units = [f"{s.container}.service" for s in specs]
    notes = _unreached(resolved, specs)
    if as_json:
        echo_json({"format": "quadlet", "services": [s.service for s in specs],
                   "output": str(output), "units": sorted(result.units), "secrets": secrets,
                   "commands": commands, "notes": notes})
        return
    click.echo(f"wrote {len(result.units)} units to {output}", err=True)
    _notes_and_commands(notes, commands, "Create the Podman secrets (once; `podman secret rm "
                        "NAME` first to replace one), then delete the files:")
    click.echo("Then: systemctl --user daemon-reload && systemctl --user start "
               + " ".join(units) + "   (as root: systemctl without --user)", err=True)


def _notes_and_commands(notes: list[str], commands: list[str], heading: str) -> None:
    """The export's notes, then the commands to run (under `heading`), on stderr."""
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if commands:
        click.echo(heading, err=True)
        for command in commands:
            click.echo(f"  {command}", err=True)
