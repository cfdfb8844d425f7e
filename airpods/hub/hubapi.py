"""The hub's JSON API, the two questions airpods asks it (huggingface_hub's `list_models` and
`list_repo_tree`, same URLs and parameters), on the hub's own client (hub/hubhttp.py, or
httpx where a proxy applies), under a whole-request deadline.

Why not HfApi: it retries 5xx answers and transport errors itself (five times, 1 + 2 + 4 + 8 +
8 s, a log line each), under airpods' own retries, so a hub answering 500 or garbage took
about 71 s and a dozen lines; and it waits on a server that accepts and never answers, or
answers a byte a second, for ever. Here a question gets airpods' retries only (hub/retry.py)
and one deadline (`within`) for all its tries.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from airpods.errors import BadAnswer, Deadline, HubAnswer

T = TypeVar("T")

DEADLINE_S = 6.0  # a question, all its tries included: the hub answers in < 1 s
MAX_JSON_BYTES = 64 << 20  # one page of a listing is far less; a server streaming more is refused
MAX_PAGES = 1000  # 1000 entries a page: a million files is no GGUF repository


def within(seconds: float, fn: Callable[[], T]) -> T:
    """fn() on a worker thread, or Deadline after `seconds`. A read timeout alone cannot bound
    a request: a server that sends a byte a second never lets one expire. The worker, left
    blocked on its socket, ends with its client's read timeout (a daemon: never holds exit)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["ok"] = fn()
        except BaseException as exc:  # handed to the caller as it is
            box["err"] = exc

    worker = threading.Thread(target=run, name="hub-question", daemon=True)
    worker.start()
    worker.join(seconds)
    if "ok" in box:
        return box["ok"]  # type: ignore[no-any-return]
    if "err" in box:
        raise box["err"]
    raise Deadline(seconds)


def get_json(client: Any, url: str, headers: dict[str, str]) -> tuple[Any, str | None]:
    """(the decoded JSON, the next page's URL or None) of a GET; HubAnswer for an error."""
    sent = {**headers, "Accept-Encoding": "identity", "Accept": "application/json"}
    with client.stream("GET", url, headers=sent) as resp:
        if resp.status_code >= 400:
            raise HubAnswer(resp)
        body = bytearray()
        for chunk in resp.iter_raw():
            body += chunk
            if len(body) > MAX_JSON_BYTES:
                raise BadAnswer(f"GET {url}: more than {MAX_JSON_BYTES >> 20} MiB of JSON")
        link = resp.headers.get("Link") or ""
    try:
        return json.loads(body), _next_link(link)
    except ValueError:
        raise BadAnswer(f"GET {url}: not JSON ({bytes(body[:40])!r})") from None


def _next_link(header: str) -> str | None:
    """The `rel="next"` URL of a Link header (GitHub's paging, which the hub follows)."""
    for part in header.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", "") and target.strip().startswith("<"):
            return target.strip()[1:-1]
    return None


def pages(client: Any, url: str, headers: dict[str, str]) -> list[Any]:
    """Every entry of a paged listing."""
    out: list[Any] = []
    next_url: str | None = url
    for _ in range(MAX_PAGES):
        if next_url is None:
            return out
        page, next_url = get_json(client, next_url, headers)
        if not isinstance(page, list):
            raise BadAnswer(f"GET {url}: not a list")
        out += page
    raise BadAnswer(f"GET {url}: more than {MAX_PAGES} pages")


def tree_url(endpoint: str, repo: str, revision: str) -> str:
    """huggingface_hub's list_repo_tree(recursive=True) URL for a model repository."""
    params = urlencode({"recursive": "true", "expand": "false"})
    return f"{endpoint}/api/models/{repo}/tree/{quote(revision, safe='')}?{params}"


def search_url(endpoint: str, query: str, limit: int) -> str:
    """huggingface_hub's list_models(search=, filter="gguf", sort="downloads", limit=) URL."""
    params = urlencode({"filter": "gguf", "search": query, "sort": "downloads", "limit": limit})
    return f"{endpoint}/api/models?{params}"


def file_sizes(entries: list[Any]) -> dict[str, int]:
    """{path: size} of the files in a tree listing (directories left out)."""
    sizes = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("type") != "file":
            continue
        path, size = entry.get("path"), entry.get("size", 0)
        if not isinstance(path, str) or not isinstance(size, int) or isinstance(size, bool):
            raise BadAnswer(f"a tree entry without a path and size: {str(entry)[:80]}")
        sizes[path] = size
    return sizes


def repos_found(entries: Any, limit: int) -> list[tuple[str, int]]:
    """(repo, downloads) of a search answer, the first `limit`."""
    if not isinstance(entries, list):
        raise BadAnswer("a search answer that is not a list")
    out = []
    for entry in entries[:limit]:
        repo = entry.get("id") if isinstance(entry, dict) else None
        downloads = entry.get("downloads") or 0 if isinstance(entry, dict) else 0
        if not isinstance(repo, str) or not isinstance(downloads, int):
            raise BadAnswer(f"a search hit without an id: {str(entry)[:80]}")
        out.append((repo, downloads))
    return out
