"""`airpods peers`: each gateway peer (another machine's airpods gateway), its models and whether
it answers from here, one line each."""

from __future__ import annotations

import click

from airpods.cli import AppContext


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_obj
def peers(app: AppContext, as_json: bool) -> None:
    """List every gateway's peers: URL, reachability and the models each lists.

    \b
    Each peer is asked now, from this machine (GET {url}/v1/models with the peer's key from
    its api_key_env, 2 s at most, all peers at once). Exit code 1 when a peer does not answer.
    """
    import os

    from airpods import kinds
    from airpods.cli.context import resolve
    from airpods.cli.output import echo_json
    from airpods.kinds.gateway_peers import probe
    from airpods.masking import printable

    resolved = resolve(app)
    found = []
    for name in resolved.enabled_services():
        spec = resolved.specs[name]
        if kinds.capable(spec.kind, kinds.Defers):
            found += probe(spec, os.environ)
    if as_json:
        echo_json({"peers": found})
    elif not found:
        click.echo("no peers configured ([services.<gateway>.peers.NAME] in the config)")
    for p in [] if as_json else found:
        reach = "reachable" if p["reachable"] else f"unreachable ({p['error']})"
        models = ", ".join(p["models"]) or "-"
        private = "  private_ok" if p["private_ok"] else ""
        # A peer's model names come from another machine: no terminal escapes from them.
        click.echo(printable(f"{p['gateway']}: {p['name']}  {p['url']}  {reach}  "
                             f"models: {models}{private}"))
    raise SystemExit(0 if all(p["reachable"] for p in found) else 1)
