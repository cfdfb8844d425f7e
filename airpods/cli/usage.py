"""`airpods usage`: tokens and cost of what the gateway served, and of the llama-servers.

Reads files only (no config, no Podman): the gateway's usage records and the usage database.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from airpods.cli import AppContext
from airpods.cli.params import Number, OneOf
from airpods.models.gateway_usage import COST_UNKNOWN, GROUPINGS, NO_API_COST


@click.command()
@click.option("--days", type=Number(0.001, 100_000, "days"), default=30,
              show_default=True, help="How many days back to count.")
@click.option("--by", type=OneOf(GROUPINGS), default="model", show_default=True,
              help="One row per model asked, backend that answered, client key, or route "
              "(model asked, its escalation tier, model that answered).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_obj
def usage(app: AppContext, days: float, by: str, as_json: bool) -> None:
    """Tokens and cost per model, backend, client or route over the last DAYS days, and a total.

    \b
    Counts every request the gateway answered or failed (its usage records), and the tokens
    each llama-server had served when `stop` stopped it (with command_args.metrics = true).
    Local answers cost nothing: they are marked "no API cost"; a remote with no price set is
    "cost unknown". The llama-server rows include requests that came through the gateway, so
    they are not added to the gateway's total. At most three tips follow, computed from the
    records (what would have stayed local, remotes with no price, a larger tier that fits).
    """
    from airpods.models.gateway_usage import group, read_all, since_days, total, usage_root
    from airpods.models.usage import UsageDB
    from airpods.models.usage_tips import catalogue_larger_tier, tips

    since = since_days(days)
    reading = read_all(usage_root(), since)
    rows = group(reading.records, by)
    sum_row = total(rows)
    db = UsageDB()
    servers = db.served_tokens(since)
    if servers is None:
        reading.notes.append(f"{db.path}: cannot be read; llama-server tokens not shown")
        servers = []
    larger = (catalogue_larger_tier(_host)
              if any(r.local_answer for r in reading.records) else None)
    found = tips(reading.records, larger)
    if as_json:
        _print_json(days, by, since, rows, sum_row, servers, reading.notes, found)
        return
    _print_table(days, by, rows, sum_row, servers)
    if found:
        click.echo("")
        click.echo("tips:")
        from airpods.masking import printable

        for tip in found:  # names in them come from records a client wrote
            click.echo(f"  - {printable(tip['text'])}")
    for note in reading.notes:
        click.echo(f"note: {note}", err=True)


def _host() -> Any:
    """This machine's memory, GPU and cores, detected (about 25 ms; loading the configuration
    for runtime.accelerator would cost `usage` 150 ms more): AIRPODS_ACCELERATOR is honoured."""
    import os

    from airpods.host import detect_host

    try:
        return detect_host(os.environ.get("AIRPODS_ACCELERATOR", "").strip() or "auto")
    except Exception:  # noqa: BLE001 - a bad override: a tip is never worth an error
        return detect_host("auto")


def _server_json(row: tuple[str, str, int, int, int]) -> dict[str, Any]:
    service, model, prompt, completion, runs = row
    return {"service": service, "model": model, "runs": runs, "prompt_tokens": prompt,
            "completion_tokens": completion, "cost": 0.0, "no_api_cost": True}


def _print_json(days: float, by: str, since: float, rows: list, sum_row: Any,
                servers: list, notes: list[str], found: list[dict[str, Any]]) -> None:
    from airpods.models.usage import iso

    total_json = {k: v for k, v in sum_row.as_json().items() if k != "key"}
    data = {
        "days": days, "since": iso(since), "by": by,
        "rows": [r.as_json() for r in rows],
        "total": total_json,
        "servers": [_server_json(s) for s in servers],
        "servers_total": {"prompt_tokens": sum(s[2] for s in servers),
                          "completion_tokens": sum(s[3] for s in servers)},
        "notes": notes,
        "tips": found,
    }
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _cost(row: Any) -> str:
    """A remote with no price set is "cost unknown", never $0."""
    if row.no_api_cost:
        return NO_API_COST
    if row.unknown:
        return COST_UNKNOWN if row.unknown >= row.remote else f"${row.cost:,.4f} + unknown"
    return f"${row.cost:,.4f}"


def _table(header: list[str], lines: list[list[str]]) -> None:
    from airpods.masking import printable

    # Names come from usage records a client wrote (a model name may hold ESC or CR LF).
    lines = [[printable(cell) for cell in row] for row in lines]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
        click.echo("  ".join(cells).rstrip())


def _print_table(days: float, by: str, rows: list, sum_row: Any, servers: list) -> None:
    click.echo(f"Gateway, last {days:g} days, by {by}:")
    if not rows:
        click.echo("  no requests recorded")
    else:
        header = [by.upper(), "REQUESTS", "FAILED", "PROMPT", "COMPLETION", "COST"]
        lines = [[r.key, str(r.requests), str(r.failed), f"{r.prompt_tokens:,}",
                  f"{r.completion_tokens:,}", _cost(r)]
                 for r in [*rows, sum_row]]
        _table(header, lines)
    if servers:
        click.echo("")
        click.echo("llama-server tokens recorded at stop (every client, the gateway's included):")
        header = ["SERVICE", "MODEL", "RUNS", "PROMPT", "COMPLETION", "COST"]
        lines = [[s, m, str(n), f"{p:,}", f"{c:,}", NO_API_COST] for s, m, p, c, n in servers]
        lines.append(["total", "", "", f"{sum(s[2] for s in servers):,}",
                      f"{sum(s[3] for s in servers):,}", NO_API_COST])
        _table(header, lines)
