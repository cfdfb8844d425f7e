"""Download progress for `models pull` and the first-use pull in `start` (shared by both)."""

from __future__ import annotations

import sys
import time
from typing import Any

from airpods.cli import say  # not click.echo: `start` runs without click (cli/fast_run.py)
from airpods.models.store import size_text


def _console() -> Any:
    from airpods.cli.output import make_console

    return make_console()


class PullProgress:
    """Bytes, speed and ETA: a rich bar on a terminal, a plain line every few seconds otherwise."""

    PLAIN_EVERY_S = 5.0

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None
        self.name, self.total, self.done, self.base = "", 0, 0, 0
        self.t0 = self.last = 0.0

    def begin(self, name: str, total: int, done: int) -> None:
        self.end()
        self.name, self.total, self.done, self.base = name, total, done, done
        self.t0 = self.last = time.monotonic()
        resumed = f" (resuming at {size_text(done)})" if done else ""
        if self.tty:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(),
                                 transient=False, console=_console())
            self._bar.start()
            self._task = self._bar.add_task(name + resumed, total=total, completed=done)
        else:
            say(f"pulling {name}: {size_text(total)}{resumed}")

    def advance(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n)
            return
        now = time.monotonic()
        if now - self.last >= self.PLAIN_EVERY_S:
            self.last = now
            say(self._line(now))

    def _line(self, now: float) -> str:
        rate = (self.done - self.base) / max(now - self.t0, 1e-6)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        pct = 100 * self.done / self.total if self.total else 100
        eta_s = f"{eta:.0f}s" if eta != float("inf") else "?"
        return (f"  {self.name}: {size_text(self.done)} of {size_text(self.total)} ({pct:.0f}%), "
                f"{rate / 1e6:.1f} MB/s, ETA {eta_s}")

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(f"[yellow]note:[/yellow] {text}")
        else:
            say(f"note: {text}")

    def end(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self.name and self.total:
            say(self._line(time.monotonic()))
        self.name = ""
