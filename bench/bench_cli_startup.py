"""`airpods --help` / `--version` wall time against the floor `python -c pass` (goal: `--help`
median at most 40 ms).

    python bench/bench_cli_startup.py [--repeat N]
    AIRPODS_BENCH_BASE=/tmp/perf-base python bench/bench_cli_startup.py   # + BEFORE rows

airpods runs as users run it: the console script next to this Python (`.venv/bin/airpods`),
else `python -m airpods`. With AIRPODS_BENCH_BASE, that earlier checkout's airpods runs too
(same interpreter, its package first on PYTHONPATH). All rows run in turns.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import _airpods_cmd, before, bench_base  # noqa: E402
from _timing import interleaved, median_ms, report, run_quiet, verdict  # noqa: E402

GOAL_MS = 40.0
FLOOR = "floor: python -c pass"
HELP = "airpods --help"
VERSION = "airpods --version"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    py, cmd = sys.executable, _airpods_cmd()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    runs = {
        FLOOR: lambda: run_quiet([py, "-c", "pass"], env=env),
        HELP: lambda: run_quiet([*cmd, "--help"], env=env),
        VERSION: lambda: run_quiet([*cmd, "--version"], env=env),
    }
    base = bench_base()
    if base is not None:
        base_env = {**env, "PYTHONPATH": str(base)}
        runs[before(HELP)] = lambda: run_quiet([*cmd, "--help"], env=base_env)
        runs[before(VERSION)] = lambda: run_quiet([*cmd, "--version"], env=base_env)
    samples = interleaved(runs, args.repeat)
    report("CLI start-up", list(samples.items()), floor=FLOOR, goal=f"--help <= {GOAL_MS:.0f} ms")
    verdict(f"airpods --help <= {GOAL_MS:.0f} ms", median_ms(samples[HELP]), GOAL_MS)


if __name__ == "__main__":
    main()
