"""What both exports (kube, quadlet) check or convert the same way."""

from __future__ import annotations

import re

from airpods.errors import UsageError
from airpods.masking import mask_argv
from airpods.spec import ContainerSpec

_QUANTITY_RE = re.compile(r"(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?")


def quantity_memory(value: str) -> str:
    """Podman's `16g` / `1.5g` / `1000` -> Kubernetes' `16Gi` / `1536Mi` / `1000`: the bytes
    (values.size_bytes, the one reading of sizes) in the largest unit that divides them."""
    from airpods.values import size_bytes

    try:
        size = size_bytes(value)
    except ValueError:
        raise UsageError(f"memory {value!r} cannot be written as a Kubernetes quantity",
                         hint="use a number with b, k, m, g or t (e.g. 16g)") from None
    for suffix, unit in (("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20),
                         ("Ki", 1 << 10)):
        if size and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


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
