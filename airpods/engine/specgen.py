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
from collections.abc import Callable, Mapping
from typing import Any

from airpods.spec import podman_options
from airpods.values import size_bytes

# podman-py's test for a named volume (anything else is a host directory, a bind mount).
_NAMED_VOLUME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


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
    # The pass-through options, where podman-py puts them. It drops those without a place
    # (`nano_cpus`: so `cpus` never limits a container): so does this, to create the same one.
    for _, option in podman_options():
        value = kwargs.get(option.kwarg)
        if option.body is not None and value is not None:
            *parents, last = option.body
            place = body
            for key in parents:
                place = place.setdefault(key, {})
            place[last] = _FORMS[option.body_form](value)
    return stripped(body)


def _paths(devices: list[str]) -> list[dict[str, str]]:
    return [{"path": d} for d in devices]




# How podman-py shapes a keyword's value in the body (PodmanOption.body_form).
_FORMS: dict[str, Callable[[Any], Any]] = {"": lambda value: value, "bytes": size_bytes,
                                           "paths": _paths}


def stripped(value: Any) -> Any:
    """`value` without nulls, and without the empty lists and maps they leave behind (podman-py
    also sends "cni_networks": [null] for a container without networks: one in a pod)."""
    if isinstance(value, Mapping):
        out = {k: stripped(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [stripped(v) for v in value if v is not None]
    return value
