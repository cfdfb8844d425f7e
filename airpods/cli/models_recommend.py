"""`airpods models recommend` and `airpods models search`: models chosen by what this machine
holds (RAM, VRAM, GPU), by capability tier or from a hub search. Registered on `models`."""

from __future__ import annotations

from typing import Any

import click

from airpods.cli import AppContext
from airpods.cli.params import Number
from airpods.fit import LLAMA_DEFAULT_CTX

# llama.cpp's largest trained contexts are ~1M
CTX_RANGE = Number(1, 1 << 22, "tokens", integer=True)


def _host(app: AppContext) -> Any:
    """The detected host as the configuration sees it (runtime.accelerator honoured)."""
    from airpods.cli.context import resolve

    return resolve(app).host


def recommendation(host: Any, ctx: int) -> dict[str, Any]:
    """The `models recommend --json` document (docs/json.md)."""
    from airpods.config import tiers as tiermod

    catalogue = tiermod.load_catalogue()
    room = tiermod.budget(host)
    fits = tiermod.fitting(host, ctx, catalogue)
    auto = tiermod.auto_pick(host, ctx, catalogue)
    return {
        "host": {"memory_bytes": host.memory_bytes, "vram_bytes": host.vram_bytes,
                 "gpu_name": host.gpu_name, "accelerator": host.accelerator,
                 "physical_cores": host.physical_cores},
        "usable": {"where": room.where, "total_bytes": room.total_bytes,
                   "usable_bytes": room.usable_bytes, "headroom": room.headroom},
        "ctx": ctx,
        "tiers": [{"tier": f.tier.name, "repo": f.tier.repo, "file": f.tier.file,
                   "quant": f.tier.quant, "parameters": f.tier.parameters,
                   "estimate_bytes": f.estimate_bytes, "headroom_bytes": f.headroom_bytes,
                   "fast_enough": f.fast_enough, "licence": f.tier.licence,
                   "commercial_use": f.tier.commercial_use,
                   "auto": auto is not None and f.tier.name == auto.tier.name}
                  for f in fits],
        "auto": auto.tier.name if auto else None,
    }


@click.command("recommend")
@click.option("--ctx", type=CTX_RANGE, default=None,
              help="Context size to estimate the K/V cache for (default: llama-server's "
              f"{LLAMA_DEFAULT_CTX}).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_obj
def recommend(app: AppContext, ctx: int | None, as_json: bool) -> None:
    """The capability tiers (config/models.toml) that fit this machine's RAM or VRAM.

    One line per tier that fits: repo, quant, licence, estimated memory at --ctx, headroom
    left. The tier `model_source = "auto"` downloads at first start is marked; auto never picks
    a tier whose licence forbids commercial use.
    """
    from airpods.cli.output import echo_json
    from airpods.config.tiers import budget
    from airpods.fit import gb
    from airpods.masking import printable

    host = _host(app)
    doc = recommendation(host, ctx or LLAMA_DEFAULT_CTX)
    if as_json:
        echo_json(doc)
        return
    gpu = f"GPU {host.gpu_name}" if host.gpu_name else "no usable GPU"
    click.echo(f"memory: {budget(host).describe()}; {gpu}; "
               f"{host.physical_cores} physical cores")
    if not doc["tiers"]:
        click.echo(f"no tier fits at ctx {doc['ctx']}: try a smaller --ctx, or add a smaller "
                   "tier in models.toml beside your config")
        return
    click.echo(f"tiers that fit at ctx {doc['ctx']}:")
    for row in doc["tiers"]:
        mark = "  <- auto" if row["auto"] else ""
        slow = "" if row["fast_enough"] else "  (slow on this CPU: auto wants more cores)"
        barred = ", non-commercial: auto skips it" if row["commercial_use"] is False else ""
        click.echo(f"  {printable(row['tier']):<7} {printable(row['repo'])}:"
                   f"{printable(row['quant'])}  needs "
                   f"{gb(row['estimate_bytes'])}, headroom {gb(row['headroom_bytes'])}  "
                   f"[licence: {printable(str(row['licence']))}{barred}]{slow}{mark}")


@click.command("search")
@click.argument("query")
@click.option("--limit", type=Number(1, 100, "repositories", integer=True),
              default=10, show_default=True,
              help="How many repositories to show.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_obj
def search(app: AppContext, query: str, limit: int, as_json: bool) -> None:
    """GGUF repositories on the hub matching QUERY, most downloaded first, each with the
    largest quant that fits this machine. Answers are cached on disk for a day."""
    from airpods.cli.output import echo_json
    from airpods.config.tiers import budget
    from airpods.errors import UsageError
    from airpods.fit import gb
    from airpods.hub.client import Hub
    from airpods.masking import printable
    from airpods.models.search import search as run_search

    if not query.strip() or any(ord(c) < 32 for c in query):
        raise UsageError(f"bad search {query!r}", hint="give words, e.g. `qwen2.5 7b instruct`")
    room = budget(_host(app))
    doc = run_search(query.strip(), Hub(), room, limit=limit)
    if as_json:
        echo_json(doc)
        return
    if not doc["hits"]:
        click.echo(f"no GGUF repository matches {query!r}")
        return
    for hit in doc["hits"]:
        best = (f"{hit['quant']} ({gb(hit['size_bytes'])})" if hit["quant"]
                else f"nothing fits {gb(room.usable_bytes)}")
        # The hub's answer: repo and quant names are shown, never acted on by the terminal.
        click.echo(printable(f"{hit['repo']}  {hit['downloads']} downloads  best fit: {best}"))
