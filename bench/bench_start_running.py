"""`airpods start llamacpp` when it is already running and healthy (goals: a median of at most
100 ms, and at most 3x the floor), beside `podman pod ps` (the floor: one cheap podman query).

    python bench/bench_start_running.py [--repeat N]
    AIRPODS_BENCH_BASE=/tmp/perf-base python bench/bench_start_running.py   # + a BEFORE row

The floor is the local-mode podman CLI on the sandbox storage; the same query through the
sandbox's REST service (`podman --remote`) is shown too. With AIRPODS_BENCH_BASE, the same
command of that earlier checkout runs too. All rows run in turns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import before, bench_stack  # noqa: E402
from _timing import goal, interleaved, median_ms, report, run_quiet, verdict  # noqa: E402

GOAL_MS = 100.0
GOAL_RATIO = 3.0
FLOOR = "floor: podman pod ps"
REMOTE = "podman --remote pod ps"
AIRPODS = "airpods start llamacpp (already running)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    with bench_stack() as st:
        st.airpods("start", "llamacpp")
        again = st.airpods("start", "llamacpp")
        if "already running" not in again.stderr:
            raise RuntimeError(f"second start did not find it running:\n{again.stderr}")
        env = st.cli_env
        runs = {
            FLOOR: lambda: run_quiet(st.podman_cli("pod", "ps"), env=env),
            REMOTE: lambda: run_quiet(st.podman_remote("pod", "ps"), env=env),
            AIRPODS: lambda: run_quiet(st.airpods_argv("start", "llamacpp"), env=st.env),
        }
        if st.base_env is not None:
            runs[before(AIRPODS)] = lambda: run_quiet(st.airpods_argv("start", "llamacpp"),
                                                      env=st.base_env)
        samples = interleaved(runs, args.repeat)

    rows = [(name, samples[name]) for name in runs]
    report("start when already running and healthy", rows, floor=FLOOR,
           goal=f"airpods <= {GOAL_MS:.0f} ms and <= {GOAL_RATIO:g}x the floor")
    med, floor = median_ms(samples[AIRPODS]), median_ms(samples[FLOOR])
    verdict(f"airpods start (already running) <= {GOAL_MS:.0f} ms", med, GOAL_MS)
    goal(f"airpods start (already running) <= {GOAL_RATIO:g}x floor", med <= GOAL_RATIO * floor,
         f"median {med:.1f} ms = x{med / floor:.2f} of the floor ({floor:.1f} ms)")


if __name__ == "__main__":
    main()
