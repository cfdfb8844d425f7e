"""`doctor`'s image checks: each enabled service's image, whether Podman has it, what backs its
pin (airpods.kinds.image_pins), and with `--pull-check` whether its registry has it.

The registry check speaks the distribution API (`HEAD /v2/<repo>/manifests/<tag or digest>`,
with the anonymous bearer token the registry's 401 names) under a short time bound: the first
registry that cannot be reached ends the check in one line, so a machine without a route to
any registry answers in seconds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from airpods.cli.checks import FAIL, OK, WARN, Check

if TYPE_CHECKING:
    import httpx

DEADLINE_S = 20.0  # for the whole pull check, however many images
MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
# Docker Hub's API is not at its name.
API_HOSTS = {"docker.io": "registry-1.docker.io"}
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def split_ref(ref: str) -> tuple[str, str, str]:
    """(registry, repository, tag or digest) of a fully qualified reference; a digest wins
    over a tag, as Podman pulls `name:tag@sha256:...` by its digest."""
    name, _, digest = ref.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    tag = name[colon + 1:] if colon > slash else "latest"
    name = name[:colon] if colon > slash else name
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        first, rest = "docker.io", name
    if first == "docker.io" and "/" not in rest:
        rest = f"library/{rest}"
    return first, rest, digest or tag


def api_base(registry: str) -> str:
    return f"https://{API_HOSTS.get(registry, registry)}"


def image_checks(images: dict[str, str], present: Callable[[str], bool]) -> list[Check]:
    """One check per enabled service: {service: image} -> present locally or not, and its pin."""
    from airpods.kinds.image_pins import PINS

    out = []
    for service, ref in sorted(images.items()):
        pin = PINS.get(ref)
        backing = (f"; pinned, {'confirmed' if pin.confirmed else 'UNCONFIRMED'}: {pin.basis}"
                   if pin else "; set in your config")
        if present(ref):
            out.append(Check(f"image ({service})", OK, f"{ref} present locally{backing}"))
            continue
        out.append(Check(f"image ({service})", WARN, f"{ref} not present locally: start "
                         f"pulls it{backing}",
                         f"podman pull {ref} (or build one: containers/ in the airpods repo, "
                         f"and set services.{service}.image)"))
    return out


def pull_checks(refs: Iterable[str], client: httpx.Client | None = None,
                base: Callable[[str], str] = api_base) -> list[Check]:
    """Whether each registry has each image; one line and no more when a registry is
    unreachable (no route, DNS failure, refused, timeout)."""
    import httpx

    from airpods.http_clients import registry_httpx

    own = client is None
    client = client or registry_httpx()
    start = time.monotonic()
    out: list[Check] = []
    try:
        for ref in sorted(set(refs)):
            if time.monotonic() - start > DEADLINE_S:
                out.append(Check("registry", WARN, f"pull check stopped after {DEADLINE_S:.0f} s;"
                                 f" {ref} and later images not checked"))
                break
            registry, repo, reference = split_ref(ref)
            try:
                status = _manifest_status(client, base(registry), repo, reference)
            except httpx.TransportError as exc:
                out.append(Check("registry", WARN, f"{registry} unreachable ({_why(exc)}): "
                                 "pull check skipped", "check the network or a proxy "
                                 "(HTTPS_PROXY), or build the images locally"))
                break
            out.append(_verdict(ref, registry, status))
    finally:
        if own:
            client.close()
    return out


def _verdict(ref: str, registry: str, status: int) -> Check:
    if status == 200:
        return Check(f"registry ({ref})", OK, f"{registry} has it")
    if status == 404:
        return Check(f"registry ({ref})", FAIL, f"{registry} does not have it: start's pull "
                     "would fail", "pick a published tag, or build the image locally and set "
                     "the service's image")
    return Check(f"registry ({ref})", WARN, f"{registry} answered HTTP {status}: not known")


def _manifest_status(client: httpx.Client, base: str, repo: str, reference: str) -> int:
    url = f"{base}/v2/{repo}/manifests/{reference}"
    headers = {"Accept": MANIFEST_TYPES}
    answer = client.head(url, headers=headers)
    if answer.status_code == 401:
        token = _anonymous_token(client, answer.headers.get("www-authenticate", ""), repo)
        if token:
            headers["Authorization"] = f"Bearer {token}"
            answer = client.head(url, headers=headers)
    return answer.status_code


def _anonymous_token(client: httpx.Client, challenge: str, repo: str) -> str | None:
    """The pull token a `Bearer realm=...,service=...` challenge offers anonymously."""
    if not challenge.lower().startswith("bearer "):
        return None
    fields = dict(_CHALLENGE.findall(challenge))
    realm = fields.pop("realm", "")
    if not realm.startswith(("https://", "http://")):
        return None
    params = {"service": fields.get("service", ""), "scope": f"repository:{repo}:pull"}
    answer = client.get(realm, params=params)
    if answer.status_code != 200:
        return None
    try:
        body = answer.json()
    except ValueError:
        return None
    token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
    return token if isinstance(token, str) else None


def _why(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
