"""`airpods status` and `airpods logs`.

`status --json` is a stable shape scripts rely on (documented in the README):
{"services": [{"name", "kind", "enabled", "state", "health", "healthy", "url", "image",
"accelerator", "uptime_s", "model", "config_current", "detail"}],
 "host": {"accelerator", "reason", "notes"}}
A router service's entry adds "models": [{"id", "state", "file"}] (state: loaded, loading,
unloaded or failed).
"""

from __future__ import annotations

import time
from typing import Any

import click

from airpods.cli import AppContext


def collect_status(
    app: AppContext, services: tuple[str, ...]
) -> tuple[list[dict], bool, dict[str, Any]]:
    """Rows for the requested services (default: enabled ones plus anything airpods runs)."""
    from airpods import kinds
    from airpods.cli.context import connect, resolve
    from airpods.cli.output import make_console
    from airpods.engine.readiness import probe_many
    from airpods.resolved import select_services
    from airpods.spec import Actual

    resolved = resolve(app)
    podman = connect(make_console())
    actual: dict[str, Actual] = podman.managed()
    names = select_services(resolved, services)
    if not services:
        names += [n for n in actual if n in resolved.services and n not in names]
    specs = dict(resolved.specs)
    if any(specs[n].deferred for n in names):
        from airpods.models.services import settle_specs

        # What start decided from the model files: else a router's hash would never match.
        specs.update((s.service, s) for s in settle_specs(
            [specs[n] for n in names], podman, resolved.host))
    running = [specs[n] for n in names if n in actual and actual[n].state == "running"]
    probes = probe_many(running, timeout_s=1.0) if running else {}
    rows = []
    now = time.time()
    for name in names:
        spec, current = specs[name], actual.get(name)
        state = current.state if current else "absent"
        health, detail = probes.get(name, ("stopped" if state != "running" else "unknown", ""))
        started = _epoch(current.started_at) if current else None
        rows.append({
            "name": name,
            "kind": spec.kind,
            "enabled": resolved.services[name].enabled,
            "state": state,
            "health": health,
            "healthy": health == "ready",
            "url": spec.ports[0].url if spec.ports else None,
            "image": current.image if current else spec.image,
            "accelerator": spec.accelerator,
            "uptime_s": round(now - started, 1) if started and state == "running" else None,
            "model": kinds.get(spec.kind).model_id(spec),
            "config_current": bool(current and current.config_hash == spec.config_hash),
            "detail": detail,
        })
    for row in rows:
        spec = specs[row["name"]]
        router = kinds.get(spec.kind).router(spec)
        if router is not None:
            row["models"] = _router_models(router, running=row["state"] == "running")
    from airpods.secrets import mask_data, secret_values

    # A template may have copied a key into an image name or an alias: never print it.
    rows = mask_data(rows, secret_values(*specs.values()))
    requested = set(services) if services else set(resolved.enabled_services())
    all_ok = all(r["healthy"] for r in rows if r["name"] in requested)
    host = resolved.host
    return rows, all_ok, {"accelerator": host.accelerator, "reason": host.reason,
                          "notes": list(host.notes)}


def _router_models(router: Any, running: bool) -> list[dict]:
    """[{"id", "state", "file"}] of a router service: asked from it, or its presets if stopped."""
    from airpods.errors import AirpodsError

    if running:
        try:
            return [{"id": m.id, "state": m.state, "file": m.file}
                    for m in router.models(timeout_s=1.0)]
        except AirpodsError:
            return []  # not answering yet: `health` says why
    return [{"id": m.id, "state": m.state, "file": m.file} for m in router.presets()]


def _epoch(value: str) -> float | None:
    try:
        stamp = float(value)
    except (TypeError, ValueError):
        return None
    return stamp if stamp > 0 else None


def _print_table(rows: list[dict], console: Any) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("SERVICE", "STATE", "HEALTH", "URL", "MODEL", "UPTIME", "ACCEL", "IMAGE"):
        table.add_column(col)
    colors = {"ready": "green", "loading model": "yellow", "starting": "yellow"}
    for r in rows:
        color = colors.get(r["health"], "red" if r["state"] == "running" else "dim")
        health = r["health"] + ("" if r["config_current"] or r["state"] != "running"
                                else " (config changed: run start)")
        table.add_row(
            r["name"], r["state"], f"[{color}]{health}[/{color}]", r["url"] or "-",
            r["model"] or "-", _uptime(r["uptime_s"]), r["accelerator"], r["image"],
        )
    console.print(table)
    for r in rows:
        if r.get("models"):
            console.print(f"{r['name']} models: " + ", ".join(
                f"{m['id']} [{_MODEL_COLORS.get(m['state'], 'dim')}]{m['state']}[/] ({m['file']})"
                for m in r["models"]))


_MODEL_COLORS = {"loaded": "green", "loading": "yellow", "failed": "red"}


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@click.command()
@click.argument("services", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Stable JSON on stdout (see README).")
@click.option("--watch", is_flag=True, help="Refresh every 2 s until Ctrl-C.")
@click.pass_obj
def status(app: AppContext, services: tuple[str, ...], as_json: bool, watch: bool) -> None:
    """Show state, health, URL, model and uptime. Exit 1 when a requested service is not ready."""
    from airpods.cli.output import echo_json, make_console

    console = make_console(stderr=False)
    try:
        while True:
            rows, all_ok, host = collect_status(app, services)
            if as_json:
                echo_json({"services": rows, "host": host})
            else:
                if watch:
                    console.clear()
                _print_table(rows, console)
                console.print(f"[dim]accelerator: {host['accelerator']} ({host['reason']})[/dim]")
                for note in host["notes"]:
                    console.print(f"[yellow]note:[/yellow] {note}")
            if not watch:
                raise SystemExit(0 if all_ok else 1)
            time.sleep(2)
    except KeyboardInterrupt:
        return  # the way to leave --watch


def parse_since(value: str, now: float | None = None) -> int:
    """Unix seconds for `--since`: a duration back from now (90s, 10m, 2h, 1d), unix seconds,
    or an RFC 3339 time."""
    import re
    from datetime import datetime

    from airpods.errors import UsageError

    now = time.time() if now is None else now
    text = value.strip()
    if text.isdigit():
        return int(text)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text)
    if match:
        seconds = float(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]
        return int(now - seconds)
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise UsageError(
            f"--since {value!r} is not a time", hint="use 10m, 2h, unix seconds or RFC 3339"
        ) from None


@click.command()
@click.argument("service")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("-n", "--tail", "lines", type=int, default=None, help="Only the last N lines.")
@click.option("--since", default=None,
              help="Only lines since a time: a duration (10m, 2h), unix seconds or RFC 3339.")
@click.pass_obj
def logs(app: AppContext, service: str, follow: bool, lines: int | None, since: str | None) -> None:
    """Print SERVICE's container log."""
    from airpods.cli.context import connect, resolve
    from airpods.cli.output import make_console
    from airpods.errors import AirpodsError, NoSuchContainer
    from airpods.resolved import select_services

    since_s = parse_since(since) if since else None  # bad input fails before Podman is touched
    resolved = resolve(app)
    select_services(resolved, (service,))
    podman = connect(make_console())
    container = resolved.services[service].container
    try:
        for line in podman.logs(container, tail=lines, follow=follow, since=since_s):
            click.echo(line)
    except NoSuchContainer:
        raise AirpodsError(
            f"{service} has no container", hint=f"start it: airpods start {service}"
        ) from None
    except KeyboardInterrupt:
        pass
