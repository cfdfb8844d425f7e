"""How commands show things: progress on stderr, results on stdout, secrets masked everywhere."""

from __future__ import annotations

import hashlib
import json
import posixpath
import shlex
import sys
import time
from collections.abc import Collection
from typing import Any

from airpods.secrets import (
    mask_argv,
    mask_data,
    mask_env,
    mask_ini,
    mask_text,
    secret_values,
    seen_values,
)
from airpods.spec import ContainerSpec, podman_options


def make_console(stderr: bool = True) -> Any:
    """rich on a terminal; on a pipe or file the plain console (airpods.cli.plain), which prints
    the same text without importing rich."""
    stream = sys.stderr if stderr else sys.stdout
    if not stream.isatty():
        from airpods.cli.plain import PlainConsole

        return PlainConsole(stderr=stderr)
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def podman_cli_lines(
    spec: ContainerSpec, values: Collection[str] | None = None
) -> list[str]:
    """The podman CLI commands equivalent to what airpods does for `spec` (secrets masked).

    Written from the adapter's own create arguments (airpods.engine.args), so the two agree.
    `values`: the secret values to mask wherever they appear (default: `spec`'s own).
    """
    from airpods.engine.args import container_kwargs, pod_kwargs

    values = secret_values(spec) if values is None else values
    pod_args, kw = pod_kwargs(spec), container_kwargs(spec)
    [(network, attach)] = pod_args["networks"].items()
    pod = ["podman", "pod", "create", "--name", spec.pod, "--network", network]
    pod += [a for alias in attach["aliases"] for a in ("--network-alias", alias)]
    for p in pod_args["portmappings"]:
        proto = "" if p["protocol"] == "tcp" else f"/{p['protocol']}"
        ip = f"[{p['host_ip']}]" if ":" in p["host_ip"] else p["host_ip"]  # podman's IPv6 form
        pod += ["-p", f"{ip}:{p['host_port']}:{p['container_port']}{proto}"]
    run = ["podman", "run", "-d", "--name", kw["name"], "--pod", kw["pod"]]
    for source, bind in kw.get("volumes", {}).items():
        run += ["-v", f"{source}:{bind['bind']}:{bind['mode']}"]
    for key, value in mask_env(kw.get("environment", {}), spec.secret_env).items():
        run += ["-e", f"{key}={value}"]
    # The pass-through options (airpods.spec.PodmanOption): repeated flags, the mounted
    # secrets, then the one-value flags.
    options = [(o, kw[o.kwarg]) for _, o in podman_options() if o.kwarg in kw]
    for option, value in options:
        if isinstance(value, list):
            run += [a for item in value for a in (option.flag, option.text(item))]
    for secret in kw.get("secrets", ()):
        run += ["--secret", f"{secret['source']},type=mount,target={secret['target']},"
                f"mode={secret['mode']:04o}"]
    for option, value in options:
        if not isinstance(value, list):
            run += [option.flag, option.text(value)]
    if "entrypoint" in kw:
        run += ["--entrypoint", json.dumps(mask_argv(kw["entrypoint"]))]
    run += [kw["image"], *mask_argv(kw["command"])]
    secrets = [
        f"printf %s \"$KEY\" | podman secret create {shlex.quote(s.name)} -"
        for s in spec.secret_files
    ]
    secrets += [
        f"podman secret create {shlex.quote(f.name)} {shlex.quote(posixpath.basename(f.target))}"
        for f in spec.config_files  # the file's content is printed by --dry-run
    ]
    # Masked item by item before quoting (quoting could split a value), and again after.
    lines = [mask_text(shlex.join(mask_data(argv, values)), values) for argv in (pod, run)]
    return [*secrets, *lines]


def spec_as_json(spec: ContainerSpec, values: Collection[str] | None = None) -> dict[str, Any]:
    """`spec` as `start --dry-run --json` shows it: secrets masked by name and by value."""
    values = secret_values(spec) if values is None else values
    data = {
        "service": spec.service,
        "kind": spec.kind,
        "image": spec.image,
        "image_reason": spec.image_reason,
        "accelerator": spec.accelerator,
        "pod": spec.pod,
        "container": spec.container,
        "network": spec.network,
        "network_aliases": list(spec.network_aliases),
        "ports": [
            {"host_ip": p.host_ip, "host": p.host_port, "container": p.container_port,
             "protocol": p.protocol}
            for p in spec.ports
        ],
        "volumes": [
            {"source": m.source, "target": m.target, "mode": m.mode, "bind": m.is_bind}
            for m in spec.mounts
        ],
        "env": mask_env(spec.env, spec.secret_env),
        "command": mask_argv(spec.command),
        "entrypoint": mask_argv(spec.entrypoint) if spec.entrypoint else None,
        "devices": list(spec.devices),
        "group_add": list(spec.group_add),
        "health_url": spec.health.url if spec.health else None,
        "config_hash": spec.config_hash,
        "notes": list(spec.notes),
        "podman": podman_cli_lines(spec, values),
    }
    if spec.config_files:  # e.g. a router's preset INI (not secret: shown, key-like values masked)
        data["files"] = [{"target": f.target, "secret": f.name, "content": mask_ini(f.value)}
                         for f in spec.config_files]
    return mask_data(data, values)


def dry_run_json(
    specs: list[ContainerSpec], values: Collection[str] | None = None
) -> dict[str, Any]:
    """What `start --dry-run --json` prints. `values` default: every secret of `specs`."""
    values = secret_values(*specs) if values is None else values
    return {"dry_run": True, "services": [spec_as_json(s, values) for s in specs]}


def print_dry_run(
    specs: list[ContainerSpec], console: Any, values: Collection[str] | None = None
) -> None:
    """`start --dry-run`'s text. `values` default: every secret value of `specs` (a template may
    copy one service's key into another's env)."""
    values = secret_values(*specs) if values is None else values

    def say(text: str, markup: bool = True) -> None:
        console.print(mask_text(text, values), markup=markup)

    for spec in specs:
        say(f"[bold]{spec.service}[/bold]  ({spec.kind})")
        say(f"  image:    {spec.image}", markup=False)
        say(f"            why: {spec.image_reason}", markup=False)
        say(f"  pod:      {spec.pod}  network: {spec.network} "
            f"aliases: {', '.join(spec.network_aliases) or '-'}", markup=False)
        for p in spec.ports:
            ip = f"[{p.host_ip}]" if ":" in p.host_ip else p.host_ip
            say(f"  port:     {ip}:{p.host_port} -> {p.container_port}/{p.protocol}")
        for m in spec.mounts:
            kind = "bind" if m.is_bind else "volume"
            say(f"  {kind}:   {m.source} -> {m.target} ({m.mode})", markup=False)
        for key, value in mask_env(spec.env, spec.secret_env).items():
            say(f"  env:      {key}={value}", markup=False)
        say(f"  argv:     {shlex.join(mask_data(mask_argv(spec.command), values))}", markup=False)
        for f in spec.config_files:
            if f.target.endswith(".py"):  # code airpods ships (the gateway's hooks): one line
                digest = hashlib.sha256(f.value.encode()).hexdigest()[:16]
                say(f"  file:     {f.target} (read-only, podman secret {f.name}): "
                    f"{len(f.value.splitlines())} lines of Python, sha256 {digest}... "
                    "(--json shows it)", markup=False)
                continue
            say(f"  file:     {f.target} (read-only, podman secret {f.name}):", markup=False)
            for line in mask_ini(f.value).splitlines():
                say(f"            {line}", markup=False)
        if spec.health and spec.health.url:
            say(f"  health:   {spec.health.url} (timeout {spec.health.timeout_s:g}s)")
        for note in spec.notes:
            console.print("  [yellow]note:[/yellow]     ", end="")
            say(note, markup=False)
        for line in podman_cli_lines(spec, values):
            say(f"  $ {line}", markup=False)
        console.print()


class ConsoleReporter:
    """Progress for `start`: one line per step and per readiness state change, with elapsed time."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.started = time.monotonic()
        self._last_pull_line: dict[str, float] = {}

    def _print(self, text: Any) -> None:
        # Every secret this process has seen is masked: a step names images, a readiness
        # detail quotes a server, and a template may have put a key in either.
        if isinstance(text, str):
            text = mask_text(text, seen_values())
        self.console.print(text)

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.started:6.1f}s"

    def step(self, step: Any) -> None:
        labels = {
            "create-network": "creating network",
            "create-volume": "creating volume",
            "pull": "pulling",
            "remove": "removing",
            "create": "creating",
            "start": "starting",
            "keep": "already running",
            "present": "already have image",
        }
        reason = f" ({step.reason})" if step.reason and step.action != "start" else ""
        self._print(
            f"[dim]{self._elapsed()}[/dim] {labels.get(step.action, step.action)} "
            f"{step.target}{reason}"
        )

    def pull_progress(self, image: str, line: str) -> None:
        # Registries send many lines a second; one every 2 s per image is honest and readable.
        now = time.monotonic()
        if now - self._last_pull_line.get(image, 0.0) >= 2.0:
            self._last_pull_line[image] = now
            from airpods.cli.plain import escape

            shown = mask_text(f"   {image}: {line}", seen_values())
            self.console.print(f"[dim]{self._elapsed()}[/dim]{escape(shown)}")

    def readiness(self, event: Any) -> None:
        detail = f": {event.detail}" if event.detail else ""
        style = {"ready": "green", "failed": "red", "timeout": "red"}.get(event.state, "yellow")
        self._print(
            f"[dim]{self._elapsed()}[/dim] {event.service} [{style}]{event.state}[/{style}]"
            f" after {event.elapsed_s:.1f}s{detail}"
        )

    def note(self, text: str) -> None:
        self._print(f"[yellow]note:[/yellow] {text}")


def echo_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
