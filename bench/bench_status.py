"""`airpods status` (and `status --json`) with 4 services running (goal: a median of at most
100 ms, or at most 3x the floor `podman pod ps --format json`, measured in the same run).

    python bench/bench_status.py [--repeat N]
    AIRPODS_BENCH_BASE=/tmp/perf-base python bench/bench_status.py   # + BEFORE rows

The 4 services: `llamacpp` and 3 more llama-server instances added in the user TOML
(`llamacpp-2` .. `llamacpp-4`), each on its own port, all serving the tiny model. airpods
status probes each one (/health, and /v1/models for the model name). The floor is the local-mode
podman CLI on the sandbox storage; the same query through the REST service is shown too. With
AIRPODS_BENCH_BASE, the same two airpods commands of that earlier checkout run too (BEFORE). All
rows run in turns.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import before, bench_stack  # noqa: E402
from _timing import goal, interleaved, median_ms, report, run_quiet  # noqa: E402

GOAL_MS = 100.0
GOAL_RATIO = 3.0
SERVICES = ["llamacpp", "llamacpp-2", "llamacpp-3", "llamacpp-4"]
FLOOR = "floor: podman pod ps --format json"
REMOTE = "podman --remote pod ps --format json"
STATUS = "airpods status (4 running)"
STATUS_JSON = "airpods status --json (4 running)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    with bench_stack(extra_llama=len(SERVICES) - 1) as st:
        st.airpods("start", *SERVICES, timeout=300)
        rows_json = json.loads(st.airpods("status", "--json").stdout)["services"]
        ready = sorted(r["name"] for r in rows_json if r["state"] == "running" and r["healthy"])
        if ready != sorted(SERVICES):
            raise RuntimeError(f"expected {SERVICES} running and ready, got {rows_json}")
        print(st.airpods("status").stdout.rstrip())
        env = st.cli_env
        runs = {
            FLOOR: lambda: run_quiet(st.podman_cli("pod", "ps", "--format", "json"), env=env),
            REMOTE: lambda: run_quiet(st.podman_remote("pod", "ps", "--format", "json"), env=env),
            STATUS: lambda: run_quiet(st.airpods_argv("status"), env=st.env),
            STATUS_JSON: lambda: run_quiet(st.airpods_argv("status", "--json"), env=st.env),
        }
        if st.base_env is not None:
            runs[before(STATUS)] = lambda: run_quiet(st.airpods_argv("status"), env=st.base_env)
            runs[before(STATUS_JSON)] = lambda: run_quiet(st.airpods_argv("status", "--json"),
                                                          env=st.base_env)
        samples = interleaved(runs, args.repeat)

    rows = [(name, samples[name]) for name in runs]
    report("status with 4 services running", rows, floor=FLOOR,
           goal=f"<= {GOAL_MS:.0f} ms or <= {GOAL_RATIO:g}x the floor")
    floor = median_ms(samples[FLOOR])
    for name in (STATUS, STATUS_JSON):
        med = median_ms(samples[name])
        goal(f"{name.split(' (')[0]} <= {GOAL_MS:.0f} ms or <= {GOAL_RATIO:g}x floor",
             med <= GOAL_MS or med <= GOAL_RATIO * floor,
             f"median {med:.1f} ms = x{med / floor:.2f} of the floor ({floor:.1f} ms)")


if __name__ == "__main__":
    main()
