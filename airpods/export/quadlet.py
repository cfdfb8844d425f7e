"""ContainerSpecs -> systemd quadlet units: a `.container` per service, a `.volume` per named
volume, the `.network`, and with `pods=True` a `.pod` per service (Podman 5.0+).

Keys are those of podman-systemd.unit(5); without pods every key used exists since Podman 4.7
(VolumeName= and NetworkName= keep the names `start` uses, so the model volume is shared).
Keys added later are passed as PodmanArgs= (`--group-add`, `--network-alias`, `--entrypoint`),
and so is every pass-through option (airpods.spec.PodmanOption) without a quadlet key.

Secrets never appear in a unit: env secrets become `Secret=NAME,type=env,target=VAR`, secret
files `Secret=NAME,type=mount,target=PATH`; `secrets` lists the Podman secrets to create.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airpods.export.checks import check_no_clear_secret
from airpods.record import record
from airpods.spec import ContainerSpec, PodmanOption, podman_options

EXPORT_LABEL = "io.airpods.export=quadlet"


@record
class QuadletSecret:
    name: str
    value: str
    usage: str  # "env" | "mount"
    service: str


@dataclass
class QuadletExport:
    units: dict[str, str]  # file name -> text
    secrets: list[QuadletSecret] = field(default_factory=list)


def _needs_quotes(word: str) -> bool:
    return word == "" or any(c.isspace() or c in "\"'\\" or ord(c) < 32 for c in word)


def quote_word(word: str) -> str:
    """One word as quadlet splits Exec=/Environment= (systemd's rules, like quadlet's own
    escapeWords); `%` and `$` doubled, since systemd expands them in the ExecStart= it makes."""
    word = word.replace("%", "%%").replace("$", "$$")
    if not _needs_quotes(word):
        return word
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    body = "".join(escapes.get(c, c if ord(c) >= 32 else f"\\x{ord(c):02x}") for c in word)
    return f'"{body}"'


def join_words(words: Sequence[str]) -> str:
    return " ".join(quote_word(w) for w in words)


def _port(host_ip: str, host_port: int, container_port: int, protocol: str) -> str:
    ip = f"[{host_ip}]" if ":" in host_ip else host_ip
    proto = "" if protocol == "tcp" else f"/{protocol}"
    return f"{ip}:{host_port}:{container_port}{proto}"


def _unit(sections: list[tuple[str, list[tuple[str, str]]]], comments: Sequence[str]) -> str:
    lines = [f"# {c}" for c in comments]
    for name, entries in sections:
        if lines:
            lines.append("")
        lines.append(f"[{name}]")
        lines += [f"{key}={value}" for key, value in entries]
    return "\n".join(lines) + "\n"


def _unit_section(description: str, spec_deps: Sequence[str]) -> list[tuple[str, str]]:
    entries = [("Description", description)]
    for dep in spec_deps:
        entries += [("Requires", f"{dep}.service"), ("After", f"{dep}.service")]
    return entries


def _service_section(spec: ContainerSpec) -> list[tuple[str, str]]:
    # Pulling an image and loading a model can take long: systemd's 90 s default is too short.
    timeout = max(300, int(spec.health.timeout_s) if spec.health else 0)
    return [("Restart", "always"), ("TimeoutStartSec", str(timeout))]


def _option_entries(option: PodmanOption, value: Any) -> list[tuple[str, str]]:
    """A pass-through option's unit lines: its own key where quadlet has one, else its
    PodmanArgs= flag; one line per item of a list (or all on one, `quadlet_joined`)."""
    if not value:
        return []
    if isinstance(value, tuple):
        texts = [option.text(item) for item in value]
    else:
        texts = [option.unit_text(value) if option.unit_text
                 else option.text(option.to_kwarg(value))]
    if option.quadlet_joined:
        texts = [" ".join(texts)]
    out = []
    for text in texts:
        if text in option.quadlet_items:
            key, _, setting = option.quadlet_items[text].partition("=")
            out.append((key, setting))
        elif option.quadlet:
            out.append((option.quadlet, text))
        else:
            out.append(("PodmanArgs", f"{option.flag} {quote_word(text)}"))
    return out


class _Renderer:
    def __init__(self, specs: Sequence[ContainerSpec], network: str, pods: bool) -> None:
        self.specs = specs
        self.network = network
        self.pods = pods
        self.units: dict[str, str] = {}
        self.secrets: list[QuadletSecret] = []
        self.unit_of = {s.service: s.container for s in specs}

    def network_unit(self) -> None:
        self.units[f"{self.network}.network"] = _unit(
            [("Network", [("NetworkName", self.network), ("Label", EXPORT_LABEL)])],
            ["airpods' network: services reach each other by their network aliases."],
        )

    def volume_unit(self, source: str, service: str) -> str:
        name = f"{source}.volume"
        if name not in self.units:
            self.units[name] = _unit(
                [("Volume", [("VolumeName", source), ("Label", EXPORT_LABEL)])],
                [f"airpods volume {source} (used by {service}); the same name `start` uses, so "
                 "its data (models) is shared with `airpods start`."],
            )
        return name

    def pod_unit(self, spec: ContainerSpec) -> str:
        entries = [("PodName", spec.pod), ("Network", f"{self.network}.network")]
        entries += [("PublishPort", _port(p.host_ip, p.host_port, p.container_port, p.protocol))
                    for p in spec.ports]
        entries += [("PodmanArgs", f"--network-alias {quote_word(a)}")
                    for a in spec.network_aliases]
        name = f"{spec.pod}.pod"
        self.units[name] = _unit(
            [("Unit", [("Description", f"airpods pod {spec.pod}")]), ("Pod", entries)],
            [f"airpods service {spec.service}: its pod (Podman 5.0+)."],
        )
        return name

    def container_unit(self, spec: ContainerSpec) -> None:
        check_no_clear_secret(spec)
        c: list[tuple[str, str]] = [("ContainerName", spec.container), ("Image", spec.image)]
        if self.pods:
            c.append(("Pod", self.pod_unit(spec)))
        else:
            c.append(("Network", f"{self.network}.network"))
            c += [("PodmanArgs", f"--network-alias {quote_word(a)}")
                  for a in spec.network_aliases]
            c += [("PublishPort", _port(p.host_ip, p.host_port, p.container_port, p.protocol))
                  for p in spec.ports]
        for m in spec.mounts:
            source = m.source if m.is_bind else self.volume_unit(m.source, spec.service)
            options = m.mode + (",z" if m.relabel else "")
            c.append(("Volume", f"{source}:{m.target}:{options}"))
        for key, value in spec.env.items():
            if key in spec.secret_env and value != "":
                name = f"airpods-{spec.service}-{key}".lower().replace("_", "-")
                self.secrets.append(QuadletSecret(name, value, "env", spec.service))
                c.append(("Secret", f"{name},type=env,target={key}"))
            else:
                c.append(("Environment", quote_word(f"{key}={value}")))
        for f in (*spec.secret_files, *spec.config_files):  # a config file travels the same way
            self.secrets.append(QuadletSecret(f.name, f.value, "mount", spec.service))
            c.append(("Secret", f"{f.name},type=mount,target={f.target}"))
        for name, option in podman_options():
            c += _option_entries(option, getattr(spec, name))
        if spec.entrypoint:
            c.append(("PodmanArgs", f"--entrypoint {quote_word(json.dumps(spec.entrypoint))}"))
        c.append(("Label", EXPORT_LABEL))
        c.append(("Label", f"io.airpods.service={spec.service}"))
        if spec.command:
            c.append(("Exec", join_words(spec.command)))
        deps = [self.unit_of[d] for d in spec.depends_on if d in self.unit_of]
        sections = [
            ("Unit", _unit_section(f"airpods {spec.service} ({spec.kind})", deps)),
            ("Container", c),
            ("Service", _service_section(spec)),
            ("Install", [("WantedBy", "default.target")]),
        ]
        comments = [f"airpods service {spec.service}: image {spec.image} ({spec.image_reason})"]
        if spec.health and spec.health.url:
            comments.append(f"ready when {spec.health.url} answers {spec.health.expected_status}")
        self.units[f"{spec.container}.container"] = _unit(sections, comments)


def render_quadlet(
    specs: Sequence[ContainerSpec], *, network: str, pods: bool = False
) -> QuadletExport:
    r = _Renderer(specs, network, pods)
    r.network_unit()
    for spec in specs:
        r.container_unit(spec)
    return QuadletExport(r.units, r.secrets)
