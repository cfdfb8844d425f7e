"""Kubernetes names: DNS-1123 labels mapped deterministically from airpods' names."""

from __future__ import annotations

import hashlib
import re

from airpods.errors import UsageError

MAX_LABEL = 63
_INVALID = re.compile(r"[^a-z0-9-]+")

MAPPING_NOTE = (
    "Names are mapped to DNS-1123 labels: lowercase, every run of characters other than "
    "a-z 0-9 '-' becomes '-', no leading/trailing '-'; a name longer than 63 characters keeps "
    "54 and gets '-' + 8 hex digits of its sha256 (airpods_llamacpp_models -> "
    "airpods-llamacpp-models)."
)


def dns_label(name: str) -> str:
    """`airpods_llamacpp_models` -> `airpods-llamacpp-models`; the same input, the same label."""
    label = _INVALID.sub("-", name.lower()).strip("-")
    if not label:
        label = "x-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    if len(label) > MAX_LABEL:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        label = label[: MAX_LABEL - 9].rstrip("-") + "-" + digest
    return label


def service_name(name: str) -> str:
    """A Service name: a DNS-1035 label (it must start with a letter)."""
    label = dns_label(name)
    return label if label[0].isalpha() else dns_label("s-" + label)


class NameTable:
    """Maps names of one kind (volumes, secrets...) and refuses two names mapping to one label."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._by_label: dict[str, str] = {}

    def __call__(self, name: str, *, mapper=dns_label) -> str:
        label = mapper(name)
        other = self._by_label.setdefault(label, name)
        if other != name:
            raise UsageError(
                f"{self.what} names {other!r} and {name!r} both map to the Kubernetes name "
                f"{label!r}",
                hint="rename one of them in your config",
            )
        return label
