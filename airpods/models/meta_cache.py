"""What `models list` read from each GGUF header, kept for the next listing.

A real model's header holds its whole vocabulary (Qwen2.5: 151k tokens and 151k merges): even
skipped string by string it costs a listing tens of milliseconds per file, every time. An entry
is keyed by the file's identity (device, inode, size, modification and change times: any
rewrite, rename over or `touch` changes one), so a file that changed is read again, never
described from another file's facts. The file is airpods' own: 0600 in a 0700 directory, read
without following links (airpods.cache); anything odd in it is a miss, never an error.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airpods.gguf_meta import ModelMeta

FORMAT = 1
KEEP = 2000  # entries; the oldest beyond this go when the file is written


def default_path() -> Path:
    from airpods.paths import user_dir

    return user_dir("cache") / "gguf" / "meta.json"


def _identity(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


class MetaCache:
    """(meta, why damaged) per file identity: `get`, `put`, then `save` once."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = default_path() if path is None else path
        self.entries = self._load()
        self.changed = False

    def _load(self) -> dict[str, Any]:
        from airpods.cache import read_private

        try:
            data = json.loads(read_private(self.path) or b"{}")
        except ValueError:
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, dict) or data.get("format") != FORMAT:
            return {}
        return entries

    def get(self, key: str) -> tuple[ModelMeta | None, str | None] | None:
        """What was read from the file with this identity, or None."""
        entry = self.entries.get(key)
        if not isinstance(entry, dict):
            return None
        try:
            from airpods.gguf_meta import ModelMeta
            from airpods.serial import from_plain

            meta = entry.get("meta")
            damaged = entry.get("damaged")
            if not (damaged is None or isinstance(damaged, str)):
                return None
            return (None if meta is None else from_plain(ModelMeta, meta)), damaged
        except Exception:  # an entry of another shape (an older airpods, an edit): read again
            return None

    def put(self, key: str, meta: ModelMeta | None, damaged: str | None) -> None:
        from airpods.serial import to_plain

        self.entries.pop(key, None)  # re-inserted last: the newest survive KEEP
        self.entries[key] = {"meta": None if meta is None else to_plain(meta),
                             "damaged": damaged}
        self.changed = True

    def save(self) -> None:
        """Write the entries if any were added; a failure only costs the cache."""
        if not self.changed:
            return
        from airpods.cache import write_private

        kept = dict(list(self.entries.items())[-KEEP:])
        text = json.dumps({"format": FORMAT, "entries": kept})
        with contextlib.suppress(OSError):
            write_private(self.path.parent, self.path.name, text)
        self.changed = False


def cached_meta(path: Path, cache: MetaCache | None,
                read: Any) -> tuple[ModelMeta | None, str | None]:
    """`read(path)` (a (meta, damaged) pair), answered from `cache` while the file is unchanged.
    What is read is kept only if the file did not change while it was read."""
    key = _identity(path) if cache is not None else None
    found = cache.get(key) if cache is not None and key is not None else None
    if found is None:
        found = read(path)
        if cache is not None and key is not None and _identity(path) == key:
            cache.put(key, *found)
    return found
