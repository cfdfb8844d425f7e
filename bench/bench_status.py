"""`airpods status` (and `status --json`) with 4 services running (goal: under 0.5 s wall),
beside `podman pod ps --format json` (the floor).

    python bench/bench_status.py [--repeat N]

The 4 services: `llamacpp` and 3 more llama-server instances added in the user TOML
(`llamacpp-2` .. `llamacpp-4`), each on its own port, all serving the tiny model. airpods
status probes each one (/health, and /v1/models for the model name). The floor is the local-mode
podman CLI on the sandbox storage; the same query through the REST service is shown too. All
rows run in turns.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import bench_stack  # noqa: E402
from _timing import interleaved, report, run_quiet, verdict  # noqa: E402

GOAL_S = 0.5
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
        samples = interleaved(runs, args.repeat)

    rows = [(name, samples[name]) for name in runs]
    report("status with 4 services running", rows, floor=FLOOR,
           goal=f"airpods status under {GOAL_S} s wall")
    for name in (STATUS, STATUS_JSON):
        verdict(f"{name.split(' (')[0]} under {GOAL_S} s wall",
                statistics.median(samples[name]) * 1000, GOAL_S * 1000)


if __name__ == "__main__":
    main()
