"""Shared timing helpers for the benchmarks: medians of wall times, printed beside the floor."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Sequence


def wall(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_quiet(argv: Sequence[str], env: dict[str, str] | None = None, check: bool = True) -> None:
    subprocess.run(argv, env=env, check=check, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def sample(fn: Callable[[], object], repeat: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    return [wall(fn) for _ in range(repeat)]


def interleaved(runs: dict[str, Callable[[], object]], repeat: int) -> dict[str, list[float]]:
    """Wall times of each run, one warm-up each, then taken in turns so noise hits all alike."""
    for fn in runs.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            samples[name].append(wall(fn))
    return samples


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


def report(title: str, rows: Sequence[tuple[str, Sequence[float]]], floor: str,
           goal: str = "") -> None:
    """Print medians (and min/max) in ms, each as a ratio of the floor row's median."""
    medians = {name: median_ms(s) for name, s in rows}
    base = medians[floor]
    print(f"\n== {title}" + (f"  (goal: {goal})" if goal else ""))
    for name, samples in rows:
        m = medians[name]
        print(f"  {name:<44} median {m:8.1f} ms  min {min(samples) * 1000:8.1f}  "
              f"max {max(samples) * 1000:8.1f}  n={len(samples):<3} x{m / base:5.2f} of floor")


def verdict(goal: str, value_ms: float, limit_ms: float, what: str = "median") -> bool:
    """Print ``PASS``/``MISS`` for one goal (value under limit) and return whether it passed."""
    ok = value_ms <= limit_ms
    print(f"  {'PASS' if ok else 'MISS'}  {goal}: {what} {value_ms:.1f} ms "
          f"(limit {limit_ms:.0f} ms)")
    return ok


def goal(text: str, ok: bool, detail: str) -> bool:
    """Print ``PASS``/``MISS`` for a goal that is not a plain "under N ms"."""
    print(f"  {'PASS' if ok else 'MISS'}  {text}: {detail}")
    return ok
