"""`airpods doctor`'s checks: small functions over gathered facts (tested without Podman), each
giving one line: what was checked, how it went, and the fix."""

from __future__ import annotations

import re
import resource
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airpods.record import record

if TYPE_CHECKING:
    from airpods.host import HostFacts
    from airpods.spec import ContainerSpec

OK, WARN, FAIL = "ok", "warn", "fail"


@record
class Check:
    name: str
    status: str  # ok | warn | fail
    found: str
    fix: str = ""


MIN_PODMAN = (4, 0)
QUADLET_PODMAN = (4, 7)
NOFILE_WANTED = 65536
DISK_WARN_BYTES = 10 * 2**30  # a 7B Q4 model is ~4.5 GB; images add a few GB
DISK_FAIL_BYTES = 1 * 2**30


def _version(text: str) -> tuple[int, int]:
    match = re.search(r"(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


# --- pure checks over gathered facts -------------------------------------------------------------


def check_podman(info: Mapping[str, Any]) -> Check:
    version = str(info.get("version", {}).get("Version", ""))
    rootless = bool(info.get("host", {}).get("security", {}).get("rootless"))
    found = f"podman {version}, {'rootless' if rootless else 'rootful'}"
    if _version(version) < MIN_PODMAN:
        return Check("podman", FAIL, found, "airpods needs Podman 4.0 or newer: upgrade it")
    if _version(version) < QUADLET_PODMAN:
        return Check("podman", WARN, found, "works; `airpods export quadlet` units need Podman "
                     "4.7+ (quadlet arrived in 4.4, VolumeName= in 4.7)")
    return Check("podman", OK, found)


def check_runtime(info: Mapping[str, Any]) -> Check:
    host = info.get("host", {})
    cgroup = host.get("cgroupVersion", "?")
    runtime = host.get("ociRuntime", {}) or {}
    name = runtime.get("name", "?")
    version = (runtime.get("version") or "").splitlines()[0:1]
    found = f"cgroups {cgroup}, OCI runtime {name}{' (' + version[0] + ')' if version else ''}"
    rootless = bool(host.get("security", {}).get("rootless"))
    if cgroup == "v1" and rootless:
        return Check("cgroups and runtime", WARN, found,
                     "rootless Podman on cgroups v1 ignores memory/cpu limits: boot with "
                     "systemd.unified_cgroup_hierarchy=1")
    if cgroup == "v1" and name == "crun":
        return Check("cgroups and runtime", WARN, found,
                     "crun fails on hybrid cgroups: set runtime = \"runc\" in containers.conf")
    return Check("cgroups and runtime", OK, found)


def check_ulimits(soft: int, hard: int, containers_conf: str | None) -> Check:
    found = f"open files: soft {soft}, hard {hard}"
    if hard != resource.RLIM_INFINITY and hard < NOFILE_WANTED and not containers_conf:
        return Check("ulimits", WARN, found,
                     f"Podman's default container ulimits exceed this hard limit; set "
                     f"default_ulimits = [\"nofile={hard}:{hard}\"] in containers.conf "
                     "(CONTAINERS_CONF=containers/containers.conf in the airpods repo does)")
    return Check("ulimits", OK, found + (f"; CONTAINERS_CONF={containers_conf}"
                                         if containers_conf else ""))


def check_gpu(host: Any) -> Check:
    gpu = host.gpu
    if gpu is None:
        return Check("gpu", OK, f"none used: {host.reason}")
    if gpu.usable:
        return Check("gpu", OK, f"{host.accelerator}: {gpu.name} ({host.reason})")
    fix = gpu.problem or "see the note"
    # A GPU found but unusable runs on the CPU (warn); a forced accelerator that cannot work
    # is what `start` would run into (fail).
    status = FAIL if host.accelerator != "cpu" else WARN
    return Check("gpu", status, f"{gpu.vendor}: {gpu.name} not usable", fix)


def check_rocm_groups(kfd: bool, uid: int, groups: Iterable[int], gids: Mapping[str, int]) -> Check:
    if not kfd:
        return Check("rocm groups", OK, "no /dev/kfd (no AMD GPU): nothing to check")
    if uid == 0:
        return Check("rocm groups", OK, "root: /dev/kfd and /dev/dri are accessible")
    mine = set(groups)
    missing = [name for name, gid in gids.items() if gid not in mine]
    if missing:
        return Check("rocm groups", WARN, f"not in group(s) {', '.join(missing)}",
                     f"sudo usermod -aG {','.join(missing)} $USER, then log in again")
    return Check("rocm groups", OK, f"in {', '.join(gids)}")


def check_selinux(present: bool, enforcing: bool) -> Check:
    if not present:
        return Check("selinux", OK, "not present")
    if enforcing:
        return Check("selinux", OK, "enforcing: airpods relabels bind mounts (:z); named "
                     "volumes are labelled by Podman")
    return Check("selinux", OK, "permissive or disabled")


def check_disk(where: Mapping[str, tuple[str, int]], needed: int) -> list[Check]:
    """`where`: label -> (path, free bytes); `needed`: bytes of models still to fetch."""
    out = []
    for label, (path, free) in where.items():
        found = f"{free / 2**30:.1f} GiB free at {path}"
        limit_fail = max(DISK_FAIL_BYTES, needed)
        if free < limit_fail:
            fix = f"free space at {path}: {needed / 2**30:.1f} GiB of models are still missing" \
                if needed else f"free space at {path}"
            out.append(Check(f"disk ({label})", FAIL, found, fix))
        elif free < DISK_WARN_BYTES + needed:
            out.append(Check(f"disk ({label})", WARN, found,
                             "little room for images and models: free some space"))
        else:
            out.append(Check(f"disk ({label})", OK, found))
    return out


def check_ports(
    wanted: Mapping[tuple[str, int], str],
    free: Callable[[str, int], bool],
    holders: Mapping[tuple[str, int], str],
    ours: Mapping[tuple[str, int], str],
) -> list[Check]:
    """`wanted`: (ip, port) -> service; `ours`: (ip, port) -> the airpods service holding it."""
    out = []
    for (ip, port), service in wanted.items():
        name = f"port {ip}:{port} ({service})"
        owner = ours.get((ip, port))
        if owner is not None:
            out.append(Check(name, OK, f"held by airpods service {owner}"))
        elif free(ip, port):
            out.append(Check(name, OK, "free"))
        else:
            who = holders.get((ip, port)) or holders.get(("0.0.0.0", port))
            by = f"container {who}" if who else "another program"
            out.append(Check(name, FAIL, f"in use by {by}",
                             f"stop it, or change services.{service}.ports in your config"))
    return out


def fit_check(name: str, spec: ContainerSpec, model_path: Path, host: HostFacts) -> Check:
    """Weights + K/V cache at the service's ctx_size against RAM (and VRAM on a GPU).

    A warning, never blocking: `start` warns too, since estimates can be wrong.
    """
    from airpods.errors import AirpodsError
    from airpods.gguf_meta import read_meta
    from airpods.models.services import estimate_for, model_size

    label = f"fit ({name})"
    try:
        meta = read_meta(model_path)
    except AirpodsError as exc:
        # A damaged header is this model's problem: the other checks carry on.
        return Check(label, WARN, f"damaged: {exc.message}",
                     "replace it with a good GGUF (airpods models rm, then pull or import)")
    est = estimate_for(spec, host, meta, model_size(model_path.parent, model_path.name))
    need = f"{est.memory.total_bytes / 2**30:.2f} GiB at ctx {est.ctx}"
    if est.fits.ram and est.fits.vram is not False:
        return Check(label, OK, f"{need}: fits")
    return Check(label, WARN, f"{need}: may not fit", est.fits.advice)


def replicas_fit_check(resolved: Any, spec: ContainerSpec, model_path: Path) -> Check | None:
    """The servers `replicas = N` runs of one model, counted together (the check `start`
    refuses with: models.services.replicas_misfit); None for a service with no replicas, a
    replica itself (its service's check counts it) or an unreadable model (fit_check says so)."""
    from airpods.models.services import estimate_for, model_size, read_meta_or_none, replicas_misfit

    copies = sum(1 for e in resolved.services.values() if e.replica_of == spec.service)
    meta = read_meta_or_none(model_path) if copies else None
    if meta is None:
        return None
    est = estimate_for(spec, resolved.host, meta, model_size(model_path.parent, model_path.name))
    misfit = replicas_misfit(resolved, spec, model_path.name, est)
    label = f"fit ({spec.service}: {copies + 1} replicas together)"
    if misfit is None:
        return Check(label, OK, f"{copies + 1} x {est.memory.total_bytes / 2**30:.2f} GiB: fits")
    found, _, fix = misfit.partition("; ")
    return Check(label, FAIL, found + ": start refuses", fix)
