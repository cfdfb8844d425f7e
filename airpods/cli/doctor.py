"""`airpods doctor`: check what `start` depends on; each check says what it found and the fix.

A check is ok, warn (works, but worse than it could) or fail (blocks `start`). The exit code is 1
when a check fails, 0 otherwise. Podman facts come from the adapter (airpods.engine.podman);
host facts from airpods.host / airpods.gpu. The checks are small functions over those facts, so
their logic is tested without Podman (tests/unit/test_doctor.py).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from airpods.cli import AppContext
from airpods.record import asdict

if TYPE_CHECKING:
    from airpods.engine.podman_protocol import Podman
    from airpods.resolved import Resolved
    from airpods.spec import ContainerSpec

from airpods.cli.checks import (  # noqa: E402,F401 (doctor.X names: the checks live there)
    DISK_FAIL_BYTES,
    DISK_WARN_BYTES,
    FAIL,
    MIN_PODMAN,
    NOFILE_WANTED,
    OK,
    QUADLET_PODMAN,
    WARN,
    Check,
    check_disk,
    check_gpu,
    check_podman,
    check_ports,
    check_rocm_groups,
    check_runtime,
    check_selinux,
    check_ulimits,
    fit_check,
    replicas_fit_check,
)

# --- gathering facts ----------------------------------------------------------------------------


def _port_free(ip: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


def _free_bytes(path: str) -> int:
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _model_checks(
    podman: Podman, resolved: Resolved, names: list[str], sources: Mapping[str, str]
) -> tuple[list[Check], int]:
    """Each enabled service's model: present, or with a source, and whether it fits."""
    from airpods import kinds
    from airpods.errors import AirpodsError
    from airpods.models.store import model_location

    checks, missing_bytes = [], 0
    for name in names:
        spec = resolved.specs[name]
        kind = kinds.capable(spec.kind, kinds.ServesModels)
        required = kind.required_files(spec) if kind else ()
        if required:  # a router's presets: `start` refuses without them, whatever the source
            checks += _required_file_checks(podman, spec, required)
        if kind and kind.model_dir(spec) is not None:  # a router without presets serves the volume
            checks.append(_served_dir_check(podman, spec))
            continue
        if required:
            continue
        try:
            volume, path = model_location(spec)
        except AirpodsError:
            continue  # serves no model file
        label = f"model ({name})"
        model = podman.volume_path(volume) / path if podman.volume_exists(volume) else None
        if model is not None and model.is_file():
            checks.append(Check(label, OK, f"{path} in volume {volume}, "
                                f"{model.stat().st_size / 1e9:.2f} GB"))
            checks.append(fit_check(name, spec, model, resolved.host))
            together = replicas_fit_check(resolved, spec, model)
            checks += [together] if together else []
            continue
        source = sources.get(name)
        if source:
            # Its size is known only to the hub: the disk check cannot count it.
            checks.append(Check(label, WARN, f"{path} not in volume {volume}; "
                                f"start downloads it from {source}"))
        else:
            checks.append(Check(label, FAIL, f"{path} not in volume {volume}",
                                f"airpods models add FILE --service {name} (or set "
                                f"services.{name}.model_source)"))
    return checks, missing_bytes


def _served_dir_check(podman: Podman, spec: ContainerSpec) -> Check:
    """A router without presets serves every GGUF of its models directory: are there any?"""
    from airpods.models.services import serving
    from airpods.models.store import list_models

    served = serving(spec)
    label = f"models ({spec.service}: router, every GGUF in its directory)"
    if served is None or served.directory is None:
        return Check(label, FAIL, "its models directory is in no volume",
                     f"mount a volume at the router's --models-dir (services.{spec.service}"
                     ".volumes)")
    volume, inside = served.volume, served.directory
    if volume.startswith("/"):
        root: Path | None = Path(volume)
    else:
        root = podman.volume_path(volume) if podman.volume_exists(volume) else None
    top = root / inside if root is not None else None
    found = list_models(top) if top is not None and top.is_dir() else []
    where = f"volume {volume}" + (f", {inside}" if inside else "")
    if not found:
        return Check(label, WARN, f"no GGUF in {where}: the router serves no model",
                     f"airpods models add FILE --service {spec.service} (or models pull)")
    names = ", ".join(m.name.removesuffix(".gguf") for m in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    return Check(label, OK, f"{len(found)} in {where}, served by file stem: {names}{more}")


def _required_file_checks(
    podman: Podman, spec: ContainerSpec, required: tuple[tuple[str, str], ...]
) -> list[Check]:
    """One check per file the service cannot start without (start's check_required_files)."""
    from airpods.errors import AirpodsError
    from airpods.spec import model_volume

    mounts = {m.target: m.source for m in spec.mounts}
    checks = []
    for what, path in required:
        label = f"model ({spec.service}: {what})"
        try:
            volume, inside = model_volume(path, mounts)
        except AirpodsError as exc:
            checks.append(Check(label, FAIL, exc.one_line(), exc.hint or ""))
            continue
        if volume.startswith("/"):
            present = Path(volume, inside).is_file()
        else:
            present = podman.volume_exists(volume) and (
                podman.volume_path(volume) / inside).is_file()
        if present:
            checks.append(Check(label, OK, f"{inside} in volume {volume}"))
        else:
            checks.append(Check(label, FAIL, f"{inside} not in volume {volume}: start refuses",
                                f"airpods models add FILE --service {spec.service} --name "
                                f"{inside} (or pull it), or fix services.{spec.service}.models"))
    return checks


def _model_sources(app: AppContext) -> dict[str, str]:
    """`model_source` per service, where the config has that key (issue 8 adds it)."""
    try:
        loaded = app.load_config()
    except Exception:  # the config check reports config problems
        return {}
    from airpods.models.first_use import configured_source

    return {name: configured_source(svc) for name, svc in loaded.config.services.items()}


def gather(app: AppContext, note: Callable[[str], None], pull_check: bool = False) -> list[Check]:
    from airpods.cli.context import resolve
    from airpods.engine.podman import Podman
    from airpods.engine.podman_socket import answering_socket
    from airpods.errors import AirpodsError

    checks: list[Check] = []
    resolved = None
    try:
        resolved = resolve(app)
        checks.append(Check("config", OK, f"valid ({resolved.user_path})"))
    except AirpodsError as exc:
        checks.append(Check("config", FAIL, exc.one_line(), "fix the file at the place named"))

    podman = None
    if shutil.which("podman") is None:
        checks.append(Check("podman", FAIL, "not installed",
                            "sudo apt-get install podman (or sudo dnf install podman)"))
    else:
        url = answering_socket(os.environ)
        checks.append(Check("api socket", OK, url) if url else Check(
            "api socket", WARN, "no Podman API socket answers (airpods starts a transient one)",
            "systemctl --user enable --now podman.socket (as root: sudo systemctl enable --now "
            "podman.socket)"))
        try:
            podman = Podman.connect(note=note)
            info = podman.info()
            checks += [check_podman(info), check_runtime(info)]
        except AirpodsError as exc:
            checks.append(Check("podman", FAIL, exc.one_line(), "run `podman info` to see why"))
            info = {}
        except Exception as exc:  # podman-py refusals: reported, never a traceback
            checks.append(Check("podman", FAIL, f"{type(exc).__name__}: {exc}",
                                "run `podman info` to see why"))
            info = {}

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    checks.append(check_ulimits(soft, hard, os.environ.get("CONTAINERS_CONF")))
    checks += _host_checks(resolved)
    if resolved is not None and podman is not None:
        names = resolved.enabled_services()
        models, missing = _model_checks(podman, resolved, names, _model_sources(app))
        store = info.get("store", {})
        where = {label: (path, _free_bytes(path)) for label, path in
                 (("images", store.get("graphRoot")), ("volumes", store.get("volumePath")))
                 if path}
        checks += check_disk(where, missing)
        wanted = {(p.host_ip, p.host_port): n for n in names for p in resolved.specs[n].ports}
        ours = {(ip, host): service for service, actual in podman.managed().items()
                for ip, host, _ in actual.ports}
        checks += check_ports(wanted, _port_free, podman.published_ports(), ours)
        checks += models
    if resolved is not None:
        checks += release_checks(resolved)
        checks += _image_checks(resolved, podman, pull_check)
        checks += _remote_checks(app, resolved.enabled_services())
    return checks


def _image_checks(resolved: Resolved, podman: Podman | None, pull_check: bool) -> list[Check]:
    """Each enabled service's image: present locally, its pin, and with --pull-check whether
    its registry has it (airpods.cli.doctor_images)."""
    from airpods.cli.doctor_images import image_checks, pull_checks

    images = {name: resolved.specs[name].image for name in resolved.enabled_services()}
    present = podman.image_exists if podman is not None else (lambda ref: False)
    out = image_checks(images, present)
    return out + pull_checks(images.values()) if pull_check else out


def release_checks(resolved: Resolved) -> list[Check]:
    """Which llama.cpp release each enabled llama-server image is: the pinned built-in one, a
    pinned tag of the user's, or a floating tag that can change under a working setup."""

    from airpods.kinds.llama_server import IMAGES, LLAMA_CPP_RELEASE

    out = []
    for name in resolved.enabled_services():
        image = resolved.specs[name].image
        if not image.startswith("ghcr.io/ggml-org/llama.cpp:"):
            continue
        tag = image.split("@", 1)[0].rsplit(":", 1)[-1]
        release = re.search(r"-(b\d+)$", tag)
        if image in IMAGES.values():
            out.append(Check(f"llama.cpp ({name})", OK, f"release {LLAMA_CPP_RELEASE}, pinned "
                             f"by airpods ({image})"))
        elif release:
            out.append(Check(f"llama.cpp ({name})", OK, f"release {release.group(1)} ({image})"))
        else:
            out.append(Check(f"llama.cpp ({name})", WARN, f"{image} is a floating tag: the "
                             "release can change on the next pull",
                             f"pin a release, e.g. {IMAGES['cpu']}"))
    return out


def _remote_checks(app: AppContext, names: list[str]) -> list[Check]:
    """A gateway's remotes: key variable set, host resolving (airpods.cli.doctor_remotes)."""
    from airpods.cli.doctor_remotes import check_remotes, configured_remotes

    try:
        loaded = app.load_config()
    except Exception:  # the config check reports config problems
        return []
    return check_remotes(configured_remotes(loaded.config, names), os.environ)


def _host_checks(resolved: Resolved | None) -> list[Check]:
    from airpods import gpu as gpu_module
    from airpods.host import detect_host

    host = resolved.host if resolved is not None else detect_host()
    out = [check_gpu(host)]
    if host.gpu is not None and host.gpu.vendor == "nvidia" and not host.gpu.usable:
        out.append(Check("cdi spec", WARN, "no CDI spec for nvidia.com/gpu",
                         gpu_module.CDI_FIX))
    elif shutil.which("nvidia-smi"):
        spec = gpu_module.find_cdi_spec()
        out.append(Check("cdi spec", OK, spec) if spec else Check(
            "cdi spec", WARN, "nvidia-smi answers but no CDI spec exists", gpu_module.CDI_FIX))
    gids = {}
    for name, gid in zip(gpu_module.GPU_GROUPS, gpu_module.group_gids(), strict=False):
        gids[name] = int(gid)
    out.append(check_rocm_groups(Path("/dev/kfd").exists(), os.getuid(), os.getgroups(), gids))
    out.append(check_selinux(Path("/sys/fs/selinux").exists(), host.selinux_enforcing))
    return out


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result on stdout.")
@click.option("--pull-check", is_flag=True,
              help="Also ask each image's registry whether it has the image (a few seconds).")
@click.pass_obj
def doctor(app: AppContext, as_json: bool, pull_check: bool) -> None:
    """Check Podman, its socket, cgroups, ulimits, the GPU, disk, ports, config, models and
    images (present locally; with --pull-check, published).

    Exit code 1 when something blocks `start`.
    """
    from airpods.cli.output import echo_json

    notes: list[str] = []
    checks = gather(app, notes.append, pull_check)
    blocking = [c.name for c in checks if c.status == FAIL]
    if as_json:
        echo_json({"ok": not blocking, "blocking": blocking,
                   "checks": [asdict(c) for c in checks], "notes": notes})
    else:
        for note in notes:
            click.echo(f"note: {note}")
        for c in checks:
            mark = {OK: "ok  ", WARN: "warn", FAIL: "FAIL"}[c.status]
            click.echo(f"{mark}  {c.name}: {c.found}")
            if c.fix and c.status != OK:
                click.echo(f"      fix: {c.fix}")
        click.echo("start is blocked by: " + ", ".join(blocking) if blocking
                   else "nothing blocks `airpods start`")
    raise SystemExit(1 if blocking else 0)
