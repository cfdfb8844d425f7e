"""`airpods models list` and `airpods usage` with 50 models in the model volume (goal: each a
median of at most 150 ms), beside `podman volume inspect` of that volume (the floor).

    python bench/bench_listing.py [--repeat N] [--models 50]
    AIRPODS_BENCH_BASE=/tmp/perf-base python bench/bench_listing.py   # + BEFORE rows

The volume holds the tiny model 50 times under different names (each a real GGUF whose header
`models list` reads), copied straight into the volume's directory. The generated API keys are
saved first (as by a first `start`), so the resolved-config cache is in use, as for a user.
`airpods usage` is measured only where this tree has that command (`airpods usage --help`
answers); where it does not, its goal is printed as a MISS saying so. With AIRPODS_BENCH_BASE,
that earlier checkout's commands run too (BEFORE). All rows run in turns.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import VOLUME, before, bench_stack  # noqa: E402
from _timing import goal, interleaved, median_ms, report, run_quiet, verdict  # noqa: E402

GOAL_MS = 150.0
FLOOR = "floor: podman volume inspect"
LIST = "airpods models list"
LIST_JSON = "airpods models list --json"
USAGE = "airpods usage"
USAGE_JSON = "airpods usage --json"


def fill_volume(st, count: int) -> Path:
    """`count` copies of the tiny model in the bench volume; its directory on this host."""
    out = st.penv.podman("volume", "inspect", VOLUME, check=True).stdout
    directory = Path(json.loads(out)[0]["Mountpoint"])
    for i in range(count - 1):
        shutil.copyfile(st.model, directory / f"model-{i:02d}.gguf")
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--models", type=int, default=50)
    args = parser.parse_args()

    with bench_stack() as st:
        # As after a first `start`: the generated API keys are saved, so commands reuse the
        # resolved-config cache (a command that would have to generate keys loads the config).
        st.api_key()
        directory = fill_volume(st, args.models)
        listed = json.loads(st.airpods("models", "list", "--json").stdout)["models"]
        if len(listed) != args.models:
            raise RuntimeError(f"expected {args.models} models in {directory}, "
                               f"`models list` shows {len(listed)}")
        has_usage = st.airpods("usage", "--help", check=False).returncode == 0
        env = st.cli_env
        commands = {LIST: ("models", "list"), LIST_JSON: ("models", "list", "--json")}
        if has_usage:
            commands |= {USAGE: ("usage",), USAGE_JSON: ("usage", "--json")}
        runs = {FLOOR: lambda: run_quiet(st.podman_cli("volume", "inspect", VOLUME), env=env)}
        for name, argv in commands.items():
            runs[name] = lambda argv=argv: run_quiet(st.airpods_argv(*argv), env=st.env)
        base_env = st.base_env
        if base_env is not None:
            for name, argv in commands.items():
                # An earlier tree may lack a command: measured all the same, as its exit.
                runs[before(name)] = lambda argv=argv: run_quiet(
                    st.airpods_argv(*argv), env=base_env, check=False)
        samples = interleaved(runs, args.repeat)

    report(f"listing with {args.models} models in the volume", list(samples.items()),
           floor=FLOOR, goal=f"each <= {GOAL_MS:.0f} ms")
    for name in (LIST, LIST_JSON):
        verdict(f"{name} ({args.models} models) <= {GOAL_MS:.0f} ms",
                median_ms(samples[name]), GOAL_MS)
    if has_usage:
        for name in (USAGE, USAGE_JSON):
            verdict(f"{name} <= {GOAL_MS:.0f} ms", median_ms(samples[name]), GOAL_MS)
    else:
        goal(f"{USAGE} <= {GOAL_MS:.0f} ms", False,
             "this tree has no `airpods usage` command yet: not measured")


if __name__ == "__main__":
    main()
