"""The hub (Hugging Face, or a mirror: HF_ENDPOINT): which files a repo has and their sizes
(its JSON API: airpods.hub.hubapi), a file's size, sha256 and commit (a HEAD on its resolve
URL: the protocol in shared/REFERENCE.md), all on airpods' own client, the token and endpoint
in effect, with airpods' one-line errors, retries and deadlines. The bytes move in
airpods.models.transfer; a whole pull is airpods.models.pull.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from airpods.errors import AirpodsError, HubAnswer, UsageError
from airpods.hub.hubhttp import MAX_REDIRECTS
from airpods.hub.refs import Ref, RemoteFile, pick_quant, split_parts
from airpods.hub.retry import is_transient, retrying

DEFAULT_ENDPOINT = "https://huggingface.co"


def resolve_url(endpoint: str, repo: str, path: str, revision: str) -> str:
    """huggingface_hub's hf_hub_url for a model repository (tests hold the two equal)."""
    from urllib.parse import quote

    return f"{endpoint}/{repo}/resolve/{quote(revision, safe='')}/{quote(path)}"


def endpoint_from_env(environ: dict[str, str] | None = None) -> str:
    """HF_ENDPOINT (or the hub), checked: an http(s) URL with a host and a valid port."""
    env = os.environ if environ is None else environ
    endpoint = (env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    check_endpoint(endpoint)
    return endpoint


def check_endpoint(endpoint: str) -> None:
    """UsageError naming HF_ENDPOINT unless `endpoint` is an http:// or https:// URL."""
    from urllib.parse import urlsplit

    from airpods.masking import mask_url

    try:
        parts = urlsplit(endpoint)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # not a number, out of range, or a bracket left open ("http://[::1")
        parts, port_ok = urlsplit(""), False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise UsageError(f"HF_ENDPOINT {mask_url(endpoint)!r} is not an http:// or https:// URL",
                         hint="set it to a hub or mirror, e.g. https://huggingface.co, or unset it")


def token_from_env(environ: dict[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN") or None


def _hub_error(exc: BaseException, what: str, endpoint: str) -> AirpodsError:
    """One line, naming the endpoint (masked) and the cause, for whatever a question raised."""
    from airpods.hub.hubapi import Deadline
    from airpods.hub.hubhttp import BadAnswer
    from airpods.masking import mask_url, mask_urls_in

    shown = mask_url(endpoint)
    if isinstance(exc, HubAnswer):
        return _answer_error(exc, what, shown)
    if isinstance(exc, Deadline):
        return AirpodsError(f"{what}: {_via(endpoint)} sent {exc}",
                            hint="check the network, HF_ENDPOINT and any HTTPS_PROXY")
    detail = mask_urls_in(str(exc).strip().splitlines()[0]) if str(exc).strip() else ""
    if isinstance(exc, BadAnswer) or not is_transient(exc):
        name = "" if isinstance(exc, BadAnswer) else f"{type(exc).__name__}: "
        return AirpodsError(f"{what}: {shown} gave an answer airpods cannot use "
                            f"({name}{detail})",
                            hint="check HF_ENDPOINT points at a Hugging Face hub or mirror")
    return AirpodsError(f"{what}: cannot reach {_via(endpoint)} ({detail})",
                        hint="check the network, or HF_ENDPOINT for a mirror")


def _via(endpoint: str) -> str:
    """The endpoint, and the proxy its requests go through where one applies; masked."""
    from airpods.hub.reach import target
    from airpods.masking import mask_url

    name = target(endpoint)[2]
    via = f" through {name}" if name.startswith("proxy ") else ""
    return mask_url(endpoint + via)


def _answer_error(exc: HubAnswer, what: str, endpoint: str) -> AirpodsError:
    """As huggingface_hub's hf_raise_for_status reads an answer, in airpods' words."""
    if exc.code == "RepoNotFound" or (
            exc.status == 401 and exc.message != "Invalid credentials in Authorization header"):
        return UsageError(f"{what}: no such repository on {endpoint} (or it is private)",
                          hint="check the name; set HF_TOKEN for a private or gated repo")
    if exc.code == "EntryNotFound":
        return UsageError(f"{what}: no such file in the repository",
                          hint="`airpods models pull ORG/REPO:QUANT` lists the quants there")
    if exc.code == "RevisionNotFound":
        return UsageError(f"{what}: no such revision")
    if exc.code == "GatedRepo":
        return UsageError(f"{what}: the repository is gated",
                          hint="accept its terms on the hub and set HF_TOKEN")
    return AirpodsError(f"{what}: {endpoint} answered HTTP {exc.status}",
                        hint="try again later, or check HF_ENDPOINT")


def token_problem(token: str) -> str | None:
    """Why `token` cannot go in an Authorization header, or None."""
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        return "it holds characters a token cannot (non-ASCII, control or space)"
    return None


def _token() -> str | None:
    """HF_TOKEN, then `hf auth login`'s file; a token that cannot be sent is named where it
    came from, instead of failing later as if the network were down."""
    env_token = token_from_env()
    if env_token is not None:
        where = "HF_TOKEN" if os.environ.get("HF_TOKEN") else "HUGGING_FACE_HUB_TOKEN"
        token = env_token
    elif _no_token_anywhere():
        return None  # the common case, decided without importing huggingface_hub (~0.1-0.3 s)
    else:
        from huggingface_hub import constants, get_token

        where = str(constants.HF_TOKEN_PATH)
        try:
            token = get_token()
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise AirpodsError(f"cannot read the Hugging Face token ({exc})",
                               hint=f"fix or remove {where}") from None
    problem = token_problem(token) if token else None
    if problem:
        raise UsageError(f"the Hugging Face token in {where} cannot be used: {problem}",
                         hint=f"fix or remove {where} (`hf auth login` writes a good one)")
    return token


def token_path(environ: dict[str, str] | None = None) -> str:
    """Where `hf auth login` keeps the token: huggingface_hub.constants.HF_TOKEN_PATH, worked
    out the same way (tests/unit/test_hub_token.py holds the two equal)."""
    env = os.environ if environ is None else environ
    cache = env.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    home = os.path.expandvars(os.path.expanduser(env.get("HF_HOME",
                                                         os.path.join(cache, "huggingface"))))
    return os.path.expandvars(os.path.expanduser(env.get("HF_TOKEN_PATH",
                                                         os.path.join(home, "token"))))


def _no_token_anywhere() -> bool:
    """True when huggingface_hub's get_token could only answer None: no OIDC exchange asked
    for, no token file (a CLI is never a Colab kernel)."""
    return not os.environ.get("HF_OIDC_RESOURCE") and not os.path.lexists(token_path())


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")



class Hub:
    """The hub's questions (listing, search, a file's facts) with airpods' errors, retries and
    deadlines; endpoints with a password are masked wherever they are printed."""

    def __init__(self, endpoint: str | None = None, token: str | None = None) -> None:
        self.endpoint = (endpoint or endpoint_from_env()).rstrip("/")
        check_endpoint(self.endpoint)
        self.token = _token() if token is None else token
        self.reached = False
        self._http: Any = None

    def reach(self) -> None:
        """Once per Hub: fail in seconds, in one line, when nothing answers at the endpoint
        (airpods.hub.reach), instead of after a minute of retries."""
        if not self.reached and not offline():
            from airpods.hub.reach import check_reachable

            check_reachable(self.endpoint)
        self.reached = True

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """fn with up to 3 tries (hub/retry.py), all within one deadline (hub/hubapi.py)."""
        from airpods.hub.hubapi import DEADLINE_S, within

        if offline():
            raise AirpodsError(f"{what}: HF_HUB_OFFLINE is set", hint="unset it to download")
        self.reach()
        try:
            return within(DEADLINE_S, lambda: retrying(attempts=3)(fn))
        except AirpodsError:
            raise
        except Exception as exc:
            raise _hub_error(exc, what, self.endpoint) from None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def list_files(self, ref: Ref) -> list[str]:
        return list(self.sizes(ref))

    def sizes(self, ref: Ref) -> dict[str, int]:
        """Every file in the repository and its size, from the hub's listing."""
        from airpods.hub import hubapi

        url = hubapi.tree_url(self.endpoint, ref.repo, ref.revision)
        return self._call(str(ref), lambda: hubapi.file_sizes(
            hubapi.pages(self.http(), url, self._headers())))

    def search(self, query: str, limit: int) -> list[tuple[str, int]]:
        """(repo, downloads) of GGUF repositories matching `query`, most downloaded first."""
        from airpods.hub import hubapi

        url = hubapi.search_url(self.endpoint, query, limit)
        return self._call(f"search {query!r}", lambda: hubapi.repos_found(
            hubapi.get_json(self.http(), url, self._headers())[0], limit))

    def file(self, repo: str, path: str, revision: str = "main") -> RemoteFile:
        """A file's size, sha256 (ETag) and commit, from a HEAD on its resolve URL: the protocol
        huggingface_hub's get_hf_file_metadata speaks (shared/REFERENCE.md), on airpods' own
        client, so a pull does not import huggingface_hub (0.1-0.3 s) for one request."""
        url = resolve_url(self.endpoint, repo, path, revision)
        head = self._call(f"{repo}/{path}", lambda: self._head(url))
        commit = head.headers.get("X-Repo-Commit")
        etag = (head.headers.get("X-Linked-Etag") or head.headers.get("ETag") or "")
        etag = etag.removeprefix("W/").strip('"')
        size = head.headers.get("X-Linked-Size") or (
            None if head.is_redirect else head.headers.get("Content-Length"))
        if not (size and size.isdigit()) or not etag or not commit:
            raise AirpodsError(f"{repo}/{path}: the hub did not send its size, ETag and commit",
                               hint="check HF_ENDPOINT points at a Hugging Face hub or mirror")
        pinned = resolve_url(self.endpoint, repo, path, commit)
        return RemoteFile(repo, path, int(size), etag, commit, pinned)

    def http(self) -> Any:
        """The client for this hub's requests and downloads (built once): airpods' own
        (hub/hubhttp.py), or httpx where a proxy applies to the endpoint."""
        if self._http is None:
            from airpods import http_clients
            from airpods.hub.reach import target

            if target(self.endpoint)[2].startswith("proxy "):
                self._http = http_clients.hub_httpx()
            else:
                from airpods.hub.hubhttp import HubClient

                self._http = HubClient(connect_timeout=http_clients.HUB_CONNECT_S,
                                       read_timeout=http_clients.HUB_READ_S,
                                       head_timeout=http_clients.HUB_HEAD_S,
                                       user_agent=http_clients.USER_AGENT)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _head(self, url: str) -> Any:
        """HEAD `url`, following redirects that stay on the hub's host (a renamed repository),
        not those to a CDN: the file's facts are on that redirect, and the token stays here."""
        from urllib.parse import urljoin, urlsplit

        headers = {"Accept-Encoding": "identity"}  # the stored size, not a compressed one
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for _ in range(MAX_REDIRECTS):
            resp = self.http().head(url, headers=headers, follow_redirects=False)
            if resp.status_code >= 400:
                raise HubAnswer(resp)
            location = resp.headers.get("Location")
            if not (resp.is_redirect and location):
                return resp
            target = urljoin(url, location)
            if urlsplit(target).netloc != urlsplit(url).netloc:
                return resp
            url = target
        raise AirpodsError(f"{url}: more than {MAX_REDIRECTS} redirects",
                           hint="check HF_ENDPOINT points at a Hugging Face hub or mirror")

    def files_for(self, ref: Ref) -> list[RemoteFile]:
        """The files a reference means: one GGUF, or every part of a split one."""
        path = ref.path if ref.path is not None else pick_quant(ref, self.list_files(ref))
        first = self.file(ref.repo, path, ref.revision)
        rest = [self.file(ref.repo, p, first.commit) for p in split_parts(path)[1:]]
        return [first, *rest]

