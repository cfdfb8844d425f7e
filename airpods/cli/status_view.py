"""What `airpods status` shows, without click: the fast path (airpods/cli/fast_run.py) and the
click command (airpods/cli/status.py) both run `show_status`.

`status --json` is a stable shape scripts rely on (documented in the README):
{"services": [{"name", "kind", "enabled", "state", "health", "healthy", "url", "image",
"accelerator", "uptime_s", "model", "config_current", "detail"}],
 "host": {"accelerator", "reason", "notes"},
 "routes": [{"gateway", "model", "deployment", "backend", "private", "route", "via", "state",
             "private_ok"}]}
A router service's entry adds "models": [{"id", "state", "file"}] (state: loaded, loading,
unloaded or failed). Keys a kind adds to its rows come from `AddsStatus.status_fields`
(kinds/capabilities.py), run in each service's probe thread; the common keys are built here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airpods.cli.meta import AppContext
    from airpods.spec import Actual, ContainerSpec

PROBE_TIMEOUT_S = 1.0  # each health request of `status` (and a kind's own, for its fields)


def collect_status(
    app: AppContext, services: tuple[str, ...], *, memory: bool = False
) -> tuple[list[dict], bool, dict[str, Any], list[dict]]:
    """Rows for the requested services (default: enabled ones plus anything airpods runs), and
    the gateway routes (cli/gateway_routes.py)."""
    from airpods import kinds
    from airpods.cli.context import connect, resolve
    from airpods.cli.output import make_console
    from airpods.resolved import select_services

    resolved = resolve(app, cache_unsaved=True)  # before any start too: airpods.cache
    names = select_services(resolved, services)  # a misspelt name fails before Podman is asked
    podman = connect(make_console())
    actual: dict[str, Actual] = podman.managed()
    if not services:
        names += [n for n in actual if n in resolved.services and n not in names]
    specs = dict(resolved.specs)
    if any(specs[n].deferred for n in names):
        from airpods.models.services import settle_specs

        # What start decided from the model files: else a router's hash would never match.
        specs.update((s.service, s) for s in settle_specs(
            [specs[n] for n in names], podman, resolved.host))
    states = {n: actual[n].state if n in actual else "absent" for n in names}
    observed = _observe([specs[n] for n in names], states, podman, resolved.host)
    rows = []
    now = time.time()
    for name in names:
        spec, current, state = specs[name], actual.get(name), states[name]
        health, detail, extra = observed[name]
        started = _epoch(current.started_at) if current else None
        serves = kinds.capable(spec.kind, kinds.ServesModels)
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
            "model": serves.model_id(spec) if serves else None,
            "config_current": bool(current and current.config_hash == spec.config_hash),
            "detail": detail,
            **extra,  # the kind's own keys (AddsStatus.status_fields), after the common ones
        })
    if memory:  # --json only (the table does not show it): a header read and two volume lookups
        from airpods.models.services import status_memory

        directories: dict = {}
        for row in rows:
            estimate = status_memory(specs[row["name"]], podman, resolved.host, directories)
            if estimate is not None:  # services that serve a GGUF (docs/json.md)
                row["memory"] = estimate
    # What airpods runs that the configuration no longer has (a named service's: its replicas).
    from airpods.engine.surplus import leftovers

    rows += [_leftover_row(actual[name], resolved, now) for name in
             leftovers(actual, resolved.services, of=names if services else None)]
    from airpods.secrets import mask_data, secret_values

    # A template may have copied a key into an image name or an alias: never print it.
    rows = mask_data(rows, secret_values(*specs.values()))
    requested = set(services) if services else set(resolved.enabled_services())
    all_ok = all(r["healthy"] for r in rows if r["name"] in requested)
    host = resolved.host
    from airpods.cli.gateway_routes import gateway_routes

    return rows, all_ok, {"accelerator": host.accelerator, "reason": host.reason,
                          "notes": list(host.notes)}, gateway_routes(resolved, rows)


def _leftover_row(current: Actual, resolved: Any, now: float) -> dict[str, Any]:
    """A row for an airpods container of a service the configuration no longer has: a replica
    past a lowered `replicas` (the next `start` of its service removes it), or a deleted
    service's (`stop` with no names removes it). Not probed: nothing says how."""
    from airpods.spec import PortMapping

    base = current.replica_of
    why = (f"no longer in services.{base}.replicas: `airpods start {base}` stops and removes it"
           if base in resolved.services else
           "not in the configuration: `airpods stop` (no names) stops and removes it")
    started = _epoch(current.started_at)
    return {
        "name": current.service, "kind": current.kind, "enabled": False,
        "state": current.state, "health": "unknown", "healthy": False,
        "url": PortMapping(*current.ports[0]).url if current.ports else None,
        "image": current.image, "accelerator": "-",
        "uptime_s": round(now - started, 1) if started and current.state == "running" else None,
        "model": None, "config_current": False, "detail": why, "leftover": True,
    }


def _observe(
    specs: list[ContainerSpec], states: dict[str, str], podman: Any, host: Any
) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """service -> (health, detail, its kind's extra fields), one thread per service: a running
    service's probe (each request bounded by PROBE_TIMEOUT_S) and its `AddsStatus.status_fields`, so
    `status` takes about as long as the slowest service, not the sum. With none running there
    is nothing to wait for: no client, no threads (each a wake-up to wait for on a busy host)."""
    import threading

    from airpods import kinds

    def observe(spec: ContainerSpec, client: Any) -> tuple[str, str, dict[str, Any]]:
        running = states[spec.service] == "running"
        health, detail = (probe_once(spec, client, timeout_s=PROBE_TIMEOUT_S) if running
                          else ("stopped", ""))
        if health == "starting" and podman.process_gone(spec.container):  # nothing answers
            health, detail = "stopped", ("Podman records it as running, but its process is gone"
                                         " (killed with conmon); `airpods start` recreates it")
        ctx = kinds.StatusContext(running=running, host=host, podman=podman,
                                  timeout_s=PROBE_TIMEOUT_S)
        adds = kinds.capable(spec.kind, kinds.AddsStatus)
        return health, detail, adds.status_fields(spec, ctx) if adds else {}

    if "running" not in states.values():
        return {spec.service: observe(spec, None) for spec in specs}
    from airpods.engine.probes import new_client, probe_once

    found: dict[str, Any] = {}

    def run(spec: ContainerSpec) -> None:
        try:
            found[spec.service] = observe(spec, client)
        except BaseException as exc:  # raised in the caller's thread below
            found[spec.service] = exc

    # Plain threads: concurrent.futures would add its import to every status.
    with new_client(PROBE_TIMEOUT_S) as client:
        threads = [threading.Thread(target=run, args=(s,), name=f"status-{s.service}")
                   for s in specs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for result in found.values():
        if isinstance(result, BaseException):
            raise result
    return {spec.service: found[spec.service] for spec in specs}


def _epoch(value: str) -> float | None:
    try:
        stamp = float(value)
    except (TypeError, ValueError):
        return None
    return stamp if stamp > 0 else None


def _print_table(rows: list[dict], console: Any) -> None:
    from airpods.cli.plain import escape, print_table
    from airpods.masking import printable

    colors = {"ready": "green", "loading model": "yellow", "starting": "yellow"}
    cells = []
    for r in rows:
        color = colors.get(r["health"], "red" if r["state"] == "running" else "dim")
        health = r["health"] + ("" if r["config_current"] or r["state"] != "running"
                                else " (config changed: run start)")
        cells.append((
            r["name"], r["state"], f"[{color}]{health}[/{color}]", r["url"] or "-",
            escape(printable(r["model"] or "-")), _uptime(r["uptime_s"]), r["accelerator"],
            r["image"],
        ))
    print_table(console, ("SERVICE", "STATE", "HEALTH", "URL", "MODEL", "UPTIME", "ACCEL",
                          "IMAGE"), cells)
    for r in rows:
        if r.get("leftover"):
            console.print(f"{r['name']}: {r['detail']}", markup=False)
        if r.get("models"):
            console.print(f"{r['name']} models: " + ", ".join(
                # ids and files are what the server answered: shown, never acted on
                f"{escape(printable(str(m['id'])))} [{_MODEL_COLORS.get(m['state'], 'dim')}]"
                f"{escape(printable(str(m['state'])))}[/] ({escape(printable(str(m['file'])))})"
                for m in r["models"]))


_MODEL_COLORS = {"loaded": "green", "loading": "yellow", "failed": "red"}


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def show_status(app: AppContext, services: tuple[str, ...], as_json: bool, watch: bool) -> int:
    """Print the status (a table, or JSON); the exit code: 1 when a requested service is not
    ready. With `watch`, refresh every 2 s until Ctrl-C."""
    from airpods.cli.output import echo_json, make_console

    console = make_console(stderr=False)
    try:
        while True:
            rows, all_ok, host, routes = collect_status(app, services, memory=as_json)
            if as_json:
                echo_json({"services": rows, "host": host, "routes": routes})
            else:
                if watch:
                    console.clear()
                _print_table(rows, console)
                console.print(f"[dim]accelerator: {host['accelerator']} ({host['reason']})[/dim]")
                for note in host["notes"]:
                    console.print(f"[yellow]note:[/yellow] {note}")
                _print_routes(routes, console)
            if not watch:
                return 0 if all_ok else 1
            time.sleep(2)
    except KeyboardInterrupt:
        return 0  # the way to leave --watch


def _print_routes(routes: list[dict], console: Any) -> None:
    from airpods.masking import printable

    models = [(r["gateway"], r["model"]) for r in routes]
    for r in routes:
        if r.get("rule"):  # the escalation model: its rule in one line, and local's state
            state = {"fallback": f" [local down: every tier -> {r['via']}]",
                     "unavailable": " [local down: unavailable]"}.get(r["route"], "")
            console.print(printable(f"{r['gateway']}: {r['rule']}{state}"), markup=False)
            continue
        # A model served by several deployments (replicas, peers): one line each, named.
        several = models.count((r["gateway"], r["model"])) > 1 and r.get("deployment")
        if r["backend"] == "peer":
            where = f"peer {r['via']} ({r['state']})"
        else:
            where = {"local": f"local ({r['via']})",
                     "fallback": f"local down: fallback {r['via']}",
                     "peer": f"local down: peer {r['via']}", "remote": f"remote ({r['via']})",
                     "unavailable": "local down: private, unavailable" if r["private"]
                     else "local down: unavailable"}[r["route"]]
        model = f"{r['model']} [{r['deployment']}]" if several and r["backend"] != "peer" \
            else r["model"]
        console.print(printable(f"{r['gateway']}: {model} -> {where}"), markup=False)
