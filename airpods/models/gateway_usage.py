"""What the gateway served: the usage records its callback appends, summed for `airpods usage`.

The gateway's LiteLLM callback (airpods/kinds/gateway_files/airpods_usage.py) appends one JSON
line per request to `<data dir>/gateway/<service>/usage.jsonl`, and sets a full one aside as
`usage-<time>-<pid>-<random>.jsonl`. The files are written by another
process and may be damaged or swapped, so reading is defensive: only regular files, never
through a symlink, never blocking on a FIFO, at most the last MAX_BYTES of a file, lines over
MAX_LINE skipped, a torn last line (a gateway killed mid-write) or a garbage line skipped and
counted, never an error.

The llama-server tokens that `stop` records (airpods.models.usage) are listed beside them: they
count every client of the server, requests that came through the gateway included, so they
are shown apart and never added to the gateway's total.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airpods.durable import open_regular

FILE_NAME = "usage.jsonl"
_ASIDE_PREFIX = "usage-"  # a full file set aside by the callback (airpods_usage.rotate_if_full)
MAX_BYTES = 64 * 1024 * 1024
MAX_LINE = 16 * 1024
GROUPINGS = ("model", "backend", "client", "route")
NO_API_COST = "no API cost"
COST_UNKNOWN = "cost unknown"
UNKNOWN = "-"
# Beyond any real request: a record past these is damaged (1e308 summed to inf and printed
# `Infinity` in --json; a 4,300-digit count could not even be printed) and is skipped.
MAX_TOKENS = 10**9
MAX_COST = 1e6
MAX_TIME = 1e11  # a unix time in the year 5138


def usage_root() -> Path:
    from airpods.paths import user_dir

    return user_dir("data") / "gateway"


@dataclass(slots=True)  # not frozen: thousands are built per run, and frozen costs 2x
class Record:
    ts: float
    client: str | None
    model: str | None
    backend: str | None
    remote: str | None
    prompt_tokens: int
    completion_tokens: int
    cost: float
    ok: bool
    latency_ms: float | None = None
    tier: str | None = None  # the escalation model's tier ("private": the private lane)
    served: str | None = None  # the model that answered
    cost_unknown: bool = False  # answered by a remote with no price set

    @property
    def route(self) -> str:
        """`auto COMPLEX -> big-model`: what was asked, its tier, what answered ("-": none)."""
        asked = f"{self.model or UNKNOWN}{f' {self.tier}' if self.tier else ''}"
        return f"{asked} -> {self.served or UNKNOWN}"

    @property
    def local_answer(self) -> bool:
        return self.ok and self.backend == "local"


@dataclass
class Row:
    key: str
    requests: int = 0
    failed: int = 0
    local: int = 0
    remote: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    unknown: int = 0  # answers whose cost is unknown (a remote with no price set)

    def add(self, rec: Record) -> None:
        self.unknown += rec.cost_unknown
        self.requests += 1
        self.failed += 0 if rec.ok else 1
        self.local += rec.backend == "local"
        self.remote += rec.backend == "remote"
        self.prompt_tokens += rec.prompt_tokens
        self.completion_tokens += rec.completion_tokens
        self.cost += rec.cost

    @property
    def no_api_cost(self) -> bool:
        """Nothing in it went to a remote: local answers (and failures) cost no API money."""
        return self.remote == 0

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "requests": self.requests, "failed": self.failed,
                "local": self.local, "remote": self.remote,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost": round(self.cost, 6), "no_api_cost": self.no_api_cost,
                "cost_unknown": self.unknown}


@dataclass
class Reading:
    records: list[Record] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _int(value: Any, most: int = MAX_TOKENS) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        return None
    return value


def _float(value: Any, most: float = MAX_TIME) -> float | None:
    """A finite number from 0 to `most` (compared before float(): a huge int overflows it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 <= value <= most and math.isfinite(value) else None


def _str(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) and value else None


def parse_record(line: bytes) -> Record | None:
    """One record, or None when the line is not one (garbage, wrong types, torn)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    ts, cost = _float(data.get("ts")), _float(data.get("cost", 0.0), MAX_COST)
    prompt, completion = _int(data.get("prompt_tokens", 0)), _int(data.get("completion_tokens", 0))
    ok = data.get("ok")
    if ts is None or cost is None or prompt is None or completion is None:
        return None
    if not isinstance(ok, bool):
        return None
    backend = data.get("backend")
    priced = data.get("priced")
    # Unknown: a remote with no price set, or (a record from before `priced`) a 0 it charged.
    unknown = backend == "remote" and ok and (priced is False or (priced is None and not cost))
    # A peer (another machine's airpods gateway) is named: "peer:gpubox"; it costs no API money.
    peer = isinstance(backend, str) and backend.startswith("peer:") and _str(backend) == backend
    if not (peer or backend in ("local", "remote")):
        backend = None
    return Record(ts=ts, client=_str(data.get("client")), model=_str(data.get("model")),
                  backend=backend, remote=_str(data.get("remote")), prompt_tokens=prompt,
                  completion_tokens=completion,
                  cost=0.0 if backend == "local" or peer else cost, ok=ok,
                  latency_ms=_float(data.get("latency_ms"), MAX_TIME),
                  tier=_str(data.get("tier")), served=_str(data.get("served")),
                  cost_unknown=unknown)


_TS_PREFIX = b'{"ts":'


def _older(line: bytes, since: float) -> bool:
    """True when the line, as the callback writes it (`{"ts":<time>,...`), is before `since`;
    False when unsure (it is then parsed and checked in full)."""
    if not line.startswith(_TS_PREFIX):
        return False
    end = line.find(b",", len(_TS_PREFIX), 40)
    try:
        return end > 0 and float(line[len(_TS_PREFIX):end]) < since
    except ValueError:
        return False


def _lines(fd: int, size: int) -> Iterator[bytes | None]:
    """Each complete line of the file's last MAX_BYTES; None for a line too long to be a record."""
    with os.fdopen(fd, "rb") as f:
        if size > MAX_BYTES:
            f.seek(size - MAX_BYTES)
            f.readline(MAX_LINE + 1)  # most likely the middle of a record
        while True:
            line = f.readline(MAX_LINE + 1)
            if not line:
                return
            if not line.endswith(b"\n"):
                if len(line) <= MAX_LINE:
                    return  # a torn last line: the gateway died writing it
                while line and not line.endswith(b"\n"):  # skip the rest of an overlong line
                    line = f.readline(MAX_LINE + 1)
                yield None
                continue
            yield line


def read_file(path: Path, since: float, into: Reading) -> None:
    """Add the records of `path` at or after `since` to `into`, and a note for what was skipped."""
    fd, why = open_regular(path)
    if fd is None:
        into.notes.append(why or str(path))
        return
    size = os.fstat(fd).st_size
    if size > MAX_BYTES:
        into.notes.append(f"{path}: {size} bytes; only the last {MAX_BYTES // 2**20} MiB read")
    bad = 0
    for line in _lines(fd, size):
        if line is not None and _older(line, since):
            continue  # most lines of a long file: skipped without parsing them
        rec = parse_record(line) if line is not None else None
        if rec is None:
            bad += 1 if line is None or line.strip() else 0
        elif rec.ts >= since:
            into.records.append(rec)
    if bad:
        into.notes.append(f"{path}: {bad} unreadable line{'s' if bad > 1 else ''} skipped")


def usage_files(root: Path, into: Reading, since: float = 0.0) -> list[Path]:
    """`<root>/<service>/usage.jsonl` for every gateway service directory (symlinks refused),
    after the files the callback set aside when they were full (`usage-<time>-...jsonl`) that
    were last written at or after `since`: an older one holds no record of the window."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        into.notes.append(f"{root}: cannot list ({exc.strerror})")
        return []
    found = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            found += _aside_files(Path(entry.path), into, since)
            path = Path(entry.path) / FILE_NAME
            if os.path.lexists(path):
                found.append(path)
        elif entry.is_symlink():
            into.notes.append(f"{entry.path}: a symlink, not read")
    return found


def _aside_files(folder: Path, into: Reading, since: float) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        into.notes.append(f"{folder}: cannot list ({exc.strerror})")
        return []
    return [Path(e.path) for e in entries
            if e.name.startswith(_ASIDE_PREFIX) and e.name.endswith(".jsonl")
            and (e.is_symlink() or e.stat(follow_symlinks=False).st_mtime >= since)]


def read_all(root: Path, since: float) -> Reading:
    reading = Reading()
    for path in usage_files(root, reading, since):
        read_file(path, since, reading)
    return reading


def group(records: Iterable[Record], by: str) -> list[Row]:
    """Rows per model, backend, client or route; the costliest first, then the busiest."""
    rows: dict[str, Row] = {}
    for rec in records:
        key = {"model": rec.model, "backend": rec.backend, "client": rec.client,
               "route": rec.route if by == "route" else None}[by] or UNKNOWN
        rows.setdefault(key, Row(key)).add(rec)
    return sorted(rows.values(),
                  key=lambda r: (-r.cost, -(r.prompt_tokens + r.completion_tokens), r.key))


def total(rows: Iterable[Row]) -> Row:
    out = Row("total")
    for row in rows:
        for name in ("requests", "failed", "local", "remote", "prompt_tokens",
                     "completion_tokens", "cost", "unknown"):
            setattr(out, name, getattr(out, name) + getattr(row, name))
    return out


def since_days(days: float, now: float | None = None) -> float:
    return (time.time() if now is None else now) - days * 86400
