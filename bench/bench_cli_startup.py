"""`airpods --help` / `--version` wall time against the floor `python -c pass` (goal < 150 ms).

    python bench/bench_cli_startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_ms, report, run_quiet, sample, verdict  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    py = sys.executable
    rows = [
        ("floor: python -c pass", sample(lambda: run_quiet([py, "-c", "pass"]), args.repeat)),
        ("airpods --help", sample(lambda: run_quiet([py, "-m", "airpods", "--help"]), args.repeat)),
        ("airpods --version",
         sample(lambda: run_quiet([py, "-m", "airpods", "--version"]), args.repeat)),
    ]
    report("CLI start-up", rows, floor="floor: python -c pass", goal="--help under 150 ms")
    verdict("airpods --help under 150 ms", median_ms(rows[1][1]), 150)


if __name__ == "__main__":
    main()
