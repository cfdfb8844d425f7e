"""What both exports (kube, quadlet) check or convert the same way."""

from __future__ import annotations

import re

from airpods.errors import UsageError
from airpods.masking import mask_argv
from airpods.spec import ContainerSpec

_QUANTITY_RE = re.compile(r"(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?")


def quantity_memory(value: str) -> str:
    """Podman's `16g` / `512m` / `1024` -> Kubernetes' `16Gi` / `512Mi` / `1024`."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)b?", value.strip().lower())
    if not match:
        raise UsageError(f"memory {value!r} cannot be written as a Kubernetes quantity",
                         hint="use a number with b, k, m, g or t (e.g. 16g)")
    number, unit = match.groups()
    return number + {"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi", "t": "Ti"}[unit]


def check_no_clear_secret(spec: ContainerSpec) -> None:
    """Refuse argv that carries a secret value: exports keep keys in secrets only."""
    targets = {f.target for f in spec.secret_files}
    for argv in (spec.command, spec.entrypoint or ()):
        for item, shown in zip(argv, mask_argv(argv), strict=True):
            if item != shown and item not in targets and not item.startswith("/"):
                raise UsageError(
                    f"{spec.service}: its command line holds a secret value; an export "
                    "would write it in clear",
                    hint="pass it through generated_secrets or env instead of command_args",
                )


def check_quantity(value: str, option: str) -> str:
    """`value` when it is a Kubernetes quantity above zero (20Gi, 500M, 1e9), else one
    UsageError: a PVC with `storage: lots` is refused by the API server, long after export."""
    match = _QUANTITY_RE.fullmatch(value)
    if match is None or float(match.group(1)) == 0:
        raise UsageError(f"{option} {value!r} is not a Kubernetes quantity above zero",
                         hint="examples: 20Gi, 500Mi, 100G")
    return value
