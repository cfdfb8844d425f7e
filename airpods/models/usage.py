"""When each model was last used: a small SQLite database in airpods' data dir.

One row per event: a service started or stopped serving a model (volume + file name), and, when
llama-server's `/metrics` is on, the tokens it had served by the time it stopped. `models list`
shows the last use, `models cleanup` offers what has not been used for N days.

Recording is best effort: a read-only or locked database never fails `start` or `stop`.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

from airpods.record import record

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    at REAL NOT NULL,
    volume TEXT NOT NULL,
    model TEXT NOT NULL,
    service TEXT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('start', 'stop', 'pull', 'import')),
    prompt_tokens INTEGER,
    completion_tokens INTEGER
);
CREATE INDEX IF NOT EXISTS events_model ON events (volume, model, at);
"""
# Events that count as "used": pulling or importing a model is not using it.
USE_EVENTS = ("start", "stop")


def default_path() -> Path:
    from airpods.paths import user_dir

    return user_dir("data") / "usage.sqlite3"


@record
class Use:
    volume: str
    model: str
    service: str


class UsageDB:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = sqlite3.connect(self.path, timeout=2.0)
        conn.executescript(SCHEMA)
        return conn

    def record(self, event: str, uses: Iterable[Use], at: float | None = None,
               tokens: dict[str, tuple[int, int]] | None = None) -> bool:
        """Add one event per use; False (and nothing raised) when the database is unusable."""
        when = time.time() if at is None else at
        rows = []
        for use in uses:
            prompt, completion = (tokens or {}).get(use.service, (None, None))
            rows.append((when, use.volume, use.model, use.service, event, prompt, completion))
        if not rows:
            return True
        try:
            with self._connect() as conn:
                conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            return True
        except (sqlite3.Error, OSError):
            return False

    def last_used(self, volume: str) -> dict[str, float]:
        """model -> the time of its last start or stop, for the models of `volume`."""
        if not self.path.exists():
            return {}
        try:
            with self._connect() as conn:
                rows = conn.execute(
                    "SELECT model, MAX(at) FROM events WHERE volume = ? AND event IN (?, ?) "
                    "GROUP BY model", (volume, *USE_EVENTS)).fetchall()
        except (sqlite3.Error, OSError):
            return {}
        return {model: at for model, at in rows}

    def tokens(self, volume: str, model: str) -> tuple[int, int]:
        """(prompt, completion) tokens recorded for a model over all its runs."""
        if not self.path.exists():
            return 0, 0
        try:
            with self._connect() as conn:
                row = conn.execute(
                    "SELECT COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0)"
                    " FROM events WHERE volume = ? AND model = ? AND event = 'stop'",
                    (volume, model)).fetchone()
        except (sqlite3.Error, OSError):
            return 0, 0
        return int(row[0]), int(row[1])

    def served_tokens(self, since: float) -> list[tuple[str, str, int, int, int]] | None:
        """(service, model, prompt, completion, runs) of the llama-server runs that stopped at
        or after `since` with their token counts read (`/metrics` on); [] without a database,
        None when it cannot be read. Only a regular file is opened, read-only: `airpods usage`
        must not hang on a FIFO or follow a symlink put in its place."""
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            return []
        except OSError:
            return None
        if not stat.S_ISREG(mode):
            return None
        try:
            uri = f"{self.path.absolute().as_uri()}?mode=ro"
            with closing(sqlite3.connect(uri, uri=True, timeout=2.0)) as conn:
                rows = conn.execute(
                    "SELECT service, model, COALESCE(SUM(prompt_tokens), 0),"
                    " COALESCE(SUM(completion_tokens), 0), COUNT(*) FROM events"
                    " WHERE event = 'stop' AND at >= ? AND (prompt_tokens IS NOT NULL"
                    " OR completion_tokens IS NOT NULL) GROUP BY service, model"
                    " ORDER BY service, model", (since,)).fetchall()
        except (sqlite3.Error, OSError):
            return None
        return [(str(s), str(m), int(p), int(c), int(n)) for s, m, p, c, n in rows]

    def forget(self, volume: str, model: str) -> None:
        try:
            with self._connect() as conn:
                conn.execute("DELETE FROM events WHERE volume = ? AND model = ?", (volume, model))
        except (sqlite3.Error, OSError):
            pass


def iso(at: float | None) -> str | None:
    if at is None:
        return None
    from datetime import datetime, timezone

    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")


@record
class Candidate:
    name: str
    size: int
    last_used: float | None


def unused(models: Iterable[tuple[str, int]], last_used: dict[str, float], days: float,
           in_use: set[str], now: float | None = None) -> list[Candidate]:
    """Models not used in the last `days` (never-used ones included), minus those in use."""
    cutoff = (time.time() if now is None else now) - days * 86400
    out = []
    for name, size in models:
        if name in in_use:
            continue
        at = last_used.get(name)
        if at is None or at < cutoff:
            out.append(Candidate(name, size, at))
    return out


def parse_metrics(text: str) -> tuple[int, int] | None:
    """(prompt tokens, generated tokens) from llama-server's Prometheus /metrics text."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            continue
    prompt = values.get("llamacpp:prompt_tokens_total")
    completion = values.get("llamacpp:tokens_predicted_total")
    if prompt is None and completion is None:
        return None
    return int(prompt or 0), int(completion or 0)
