"""The libpod JSON bodies for creating a service's pod and container, from the same arguments the
podman-py calls took (`container_kwargs`, the pod's keyword arguments).

Why not podman-py here: importing it (with requests and urllib3) costs 100-200 ms, which was most
of what `start` adds to bare Podman (bench/README.md). The body is the one podman-py's
`containers.create` sends for these arguments, without its null fields (Podman reads a null
field and an absent one alike): tests/unit/test_specgen.py compares both for specs that use
every argument airpods passes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# podman-py's test for a named volume (anything else is a host directory, a bind mount).
_NAMED_VOLUME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_SIZE = re.compile(r"^(\d+)([bkmg])$")


def container_body(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The SpecGenerator for `containers/create` from `container_kwargs(spec)`."""
    body: dict[str, Any] = {
        "image": kwargs["image"],
        "name": kwargs["name"],
        "pod": kwargs.get("pod"),
        "command": kwargs.get("command"),
        "entrypoint": kwargs.get("entrypoint"),
        "env": kwargs.get("environment"),
        "labels": kwargs.get("labels"),
        "cap_add": kwargs.get("cap_add"),
        "cap_drop": kwargs.get("cap_drop"),
        "selinux_opts": kwargs.get("security_opt"),
        "groups": kwargs.get("group_add"),
        "devices": [{"path": d} for d in kwargs.get("devices", [])],
        "secrets": [{k: v for k, v in s.items() if k in ("source", "target", "uid", "gid", "mode")}
                    for s in kwargs.get("secrets", [])],
        "volumes": [],
        "mounts": [],
    }
    for source, mount in kwargs.get("volumes", {}).items():
        options = [mount["mode"]] if mount.get("mode") is not None else []
        if _NAMED_VOLUME.match(source):
            body["volumes"].append({"Name": source, "Dest": mount["bind"], "Options": options})
        else:
            body["mounts"].append({"destination": mount["bind"], "options": options,
                                   "source": source, "type": "bind"})
    if kwargs.get("mem_limit") is not None:
        body["resource_limits"] = {"memory": {"limit": _bytes(kwargs["mem_limit"])}}
    # podman-py drops `nano_cpus` (not in its API): so does this, to create the same container.
    return stripped(body)


def stripped(value: Any) -> Any:
    """`value` without nulls, and without the empty lists and maps they leave behind (podman-py
    also sends "cni_networks": [null] for a container without networks: one in a pod)."""
    if isinstance(value, Mapping):
        out = {k: stripped(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [stripped(v) for v in value if v is not None]
    return value


def _bytes(size: int | str) -> int:
    """podman-py's reading of a memory size: bytes, or a number with b, k, m or g (x1024)."""
    if isinstance(size, int):
        return size
    if size.isdigit():
        return int(size)
    match = _SIZE.match(size.lower())
    if match is None:
        raise ValueError(f"memory size {size!r}: use a number of bytes, or 512m, 4g")
    return int(match[1]) * 1024 ** "bkmg".index(match[2])
