"""`airpods status` (and `status --json`) with 4 services absent, running, then stopped, each
beside the floor `podman pod ps --format json` measured in the same turns (goals, issue 23: a
median of at most 100 ms in every phase, and while running at most 3x the floor too).

    python bench/bench_status.py [--repeat N]
    AIRPODS_BENCH_BASE=/tmp/perf-base python bench/bench_status.py   # + BEFORE rows

The 4 services: `llamacpp` and 3 more llama-server instances added in the user TOML
(`llamacpp-2` .. `llamacpp-4`), each on its own port, all serving the tiny model. The phases:

- absent: never started, so no secret is saved yet (a new user's first `status`). The full
  loader's answer (`AIRPODS_NO_CACHE=1`) is shown beside it: what every such `status` cost
  before the resolved-services cache kept generated, unsaved secrets (airpods/cache.py).
- running: all 4 started and ready; status probes each one (/health, /v1/models).
- stopped: their containers stopped behind airpods' back (`podman stop`): Podman keeps them,
  exited.

The floor is the local-mode podman CLI on the sandbox storage; the same query through the REST
service is shown too. With AIRPODS_BENCH_BASE, the same two airpods commands of that earlier
checkout run too (BEFORE). All rows of a phase run in turns.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import BenchStack, before, bench_stack  # noqa: E402
from _timing import goal, interleaved, median_ms, report, run_quiet  # noqa: E402

GOAL_MS = 100.0
GOAL_RATIO = 3.0
SERVICES = ["llamacpp", "llamacpp-2", "llamacpp-3", "llamacpp-4"]
FLOOR = "floor: podman pod ps --format json"
REMOTE = "podman --remote pod ps --format json"
STATUS = "airpods status"
STATUS_JSON = "airpods status --json"
LOADER = "AIRPODS_NO_CACHE=1 airpods status"


def states(st: BenchStack) -> dict[str, tuple[str, bool]]:
    rows = json.loads(st.airpods("status", "--json", check=False).stdout)["services"]
    return {r["name"]: (r["state"], r["healthy"]) for r in rows}


def measure(st: BenchStack, phase: str, repeat: int, *, loader: bool = False
            ) -> tuple[list[tuple[str, list[float]]], dict[str, float]]:
    """(rows, medians) of one phase: the floor, its remote form, status and status --json (and
    the full loader's status), in turns. Status exits 1 unless every service is ready."""
    env, cli_env = st.env, st.cli_env

    def airpods(*args: str, env: dict[str, str] = env) -> Callable[[], None]:
        return lambda: run_quiet(st.airpods_argv(*args), env=env, check=False)

    runs = {
        FLOOR: lambda: run_quiet(st.podman_cli("pod", "ps", "--format", "json"), env=cli_env),
        REMOTE: lambda: run_quiet(st.podman_remote("pod", "ps", "--format", "json"),
                                  env=cli_env),
        STATUS: airpods("status"),
        STATUS_JSON: airpods("status", "--json"),
    }
    if loader:
        runs[LOADER] = airpods("status", env={**env, "AIRPODS_NO_CACHE": "1"})
    if st.base_env is not None:
        runs[before(STATUS)] = airpods("status", env=st.base_env)
        runs[before(STATUS_JSON)] = airpods("status", "--json", env=st.base_env)
    samples = interleaved(runs, repeat)
    rows = [(f"{name} ({phase})", samples[name]) for name in runs]
    return rows, {name: median_ms(samples[name]) for name in runs}


def verdicts(phase: str, medians: dict[str, float], ratio: bool) -> None:
    floor = medians[FLOOR]
    for name in (STATUS, STATUS_JSON):
        med, what = medians[name], f"{name.removeprefix('airpods ')} ({phase})"
        detail = f"median {med:.1f} ms = x{med / floor:.2f} of the floor ({floor:.1f} ms)"
        goal(f"{what} <= {GOAL_MS:.0f} ms", med <= GOAL_MS, detail)
        if ratio:
            goal(f"{what} <= {GOAL_RATIO:g}x floor", med <= GOAL_RATIO * floor, detail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    phases = []
    with bench_stack(extra_llama=len(SERVICES) - 1) as st:
        if set(states(st).values()) != {("absent", False)}:
            raise RuntimeError(f"expected {SERVICES} absent, got {states(st)}")
        secrets = Path(st.env["XDG_DATA_HOME"]) / "airpods" / "secrets"
        if any(secrets.glob("llamacpp*")):
            raise RuntimeError(f"secrets saved before any start: {sorted(secrets.iterdir())}")
        phases.append(("4 absent", *measure(st, "4 absent", args.repeat, loader=True), False))

        st.airpods("start", *SERVICES, timeout=300)
        if states(st) != dict.fromkeys(SERVICES, ("running", True)):
            raise RuntimeError(f"expected {SERVICES} running and ready, got {states(st)}")
        print(st.airpods("status").stdout.rstrip())
        phases.append(("4 running", *measure(st, "4 running", args.repeat), True))

        containers = [f"airpods-{name}-server" for name in SERVICES]
        run_quiet(st.podman_cli("stop", "-t", "1", *containers), env=st.cli_env)
        if {state for state, _ in states(st).values()} & {"running", "absent"}:
            raise RuntimeError(f"expected {SERVICES} stopped, got {states(st)}")
        print(st.airpods("status", check=False).stdout.rstrip())
        phases.append(("4 stopped", *measure(st, "4 stopped", args.repeat), False))

    for phase, rows, medians, ratio in phases:
        goal_text = f"<= {GOAL_MS:.0f} ms" + (f" and <= {GOAL_RATIO:g}x the floor" if ratio
                                              else "")
        report(f"status with {phase}", rows, floor=f"{FLOOR} ({phase})", goal=goal_text)
        verdicts(phase, medians, ratio)


if __name__ == "__main__":
    main()
