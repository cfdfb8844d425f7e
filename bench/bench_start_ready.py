"""`airpods start llamacpp` from nothing running until ready, against bare Podman (goal: the
overhead, airpods median - floor median, at most 100 ms). Image and model are present.

    python bench/bench_start_ready.py [--repeat N]
    AIRPODS_BENCH_BASE=/tmp/perf-base python bench/bench_start_ready.py   # + a BEFORE row

Floor: the two commands `airpods start llamacpp --dry-run` says it runs (same network, port
mapping, volume, env, security options and llama-server argv; only the pod/container names, the
host port and the masked API key differ), then GET /health every 10 ms until 200, timed from
before `pod create` to the first 200. Measured twice: the local-mode podman CLI on the sandbox
storage (the honest "bare podman" cost) and the same CLI through the sandbox's REST service
(`podman --remote`, the process path airpods itself uses). Removal is not timed.

airpods: `airpods start llamacpp` (which waits for /health and for the model in /v1/models)
until it returns, after an untimed `airpods stop llamacpp`; with AIRPODS_BENCH_BASE, the same
for that earlier checkout (BEFORE). All are run in turns (floor, remote floor, airpods, ...)
so that noise hits them alike; one untimed round first warms caches (the resolved-config
cache, the page cache, the network).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import (  # noqa: E402
    BenchStack,
    before,
    bench_stack,
    run_checked,
    wait_http,
)
from _timing import report, verdict  # noqa: E402

from tests.sandbox import free_ports  # noqa: E402

GOAL_MS = 100.0
FLOOR = "floor: podman CLI (local) create+run+/health"
REMOTE = "floor: podman --remote create+run+/health"
AIRPODS = "airpods start llamacpp"
FLOOR_SECRET = "bench-floor-key"


Command = tuple[list[str], "str | None"]  # podman arguments, and what goes to its stdin


def floor_commands(st: BenchStack, key: str, pod: str, ctr: str, port: int) -> list[Command]:
    """The podman commands airpods' dry-run prints, with our names, port and the real key.

    The API key goes in as airpods does it: a Podman secret (created from stdin, as the dry-run
    prints it) mounted into the container, so the floor does the same work.
    """
    spec = st.dry_run("llamacpp")
    secret = f"airpods-{spec['service']}-llama-api-key"
    subst = {
        spec["pod"]: pod,
        spec["container"]: ctr,
        f"127.0.0.1:{st.port}:8080": f"127.0.0.1:{port}:8080",
    }
    cmds: list[Command] = []
    seen: set[str] = set()
    for line in spec["podman"]:
        words = shlex.split(line)
        if words[:2] == ["printf", "%s"]:  # printf %s "$KEY" | podman secret create NAME -
            assert words[3:] == ["|", "podman", "secret", "create", secret, "-"], line
            cmds.append((["secret", "create", FLOOR_SECRET, "-"], key))
            continue
        assert words[0] == "podman", line
        out = []
        for w in words[1:]:
            if w in subst:
                seen.add(w)
                out.append(subst[w])
            else:
                out.append(w.replace(f"{secret},", f"{FLOOR_SECRET},"))
        cmds.append((out, None))
    missing = set(subst) - seen
    if missing:
        raise RuntimeError(f"dry-run commands lack {missing}: {spec['podman']}")
    return cmds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with bench_stack() as st, httpx.Client(timeout=1.0) as http:
        # Not the port the stack already picked for llamacpp (free until it starts).
        port = next(p for p in free_ports(len(st.ports) + 1) if p not in st.ports.values())
        pod, ctr = "bench-floor", "bench-floor-server"
        key = st.api_key()
        cmds = floor_commands(st, key, pod, ctr, port)
        health = f"http://127.0.0.1:{port}/health"
        env = st.cli_env
        print("floor commands (podman GLOBAL-FLAGS ...):")
        for c, stdin in cmds:
            print("  $ podman " + shlex.join(c) + (" < KEY" if stdin else ""))

        def floor(argv_of) -> float:
            t0 = time.perf_counter()
            for c, stdin in cmds:
                run_checked(argv_of(*c), env, stdin)
            t1 = wait_http(http, health, every_s=0.01)
            run_checked(st.podman_cli("pod", "rm", "-f", "-t", "0", pod), env)  # not timed
            run_checked(st.podman_cli("secret", "rm", FLOOR_SECRET), env)  # not timed
            return t1 - t0

        def airpods(env: dict[str, str] | None = None) -> float:
            st.airpods("stop", "llamacpp", "--timeout", "1", env=env)  # not timed
            t0 = time.perf_counter()
            st.airpods("start", "llamacpp", env=env)
            dt = time.perf_counter() - t0
            if http.get(f"{st.base_url()}/health").status_code != 200:
                raise RuntimeError("airpods start returned but /health is not 200")
            return dt

        runs = {FLOOR: lambda: floor(st.podman_cli), REMOTE: lambda: floor(st.podman_remote),
                AIRPODS: airpods}
        if st.base_env is not None:
            runs[before(AIRPODS)] = lambda: airpods(st.base_env)
        order = [AIRPODS, *(n for n in runs if n != AIRPODS)]  # airpods first: it creates the
        for name in order:                                     # network (warm-up, untimed)
            runs[name]()
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name in runs:
                samples[name].append(runs[name]())
        st.airpods("stop", "llamacpp", "--timeout", "1")

    rows = [(name, samples[name]) for name in runs]
    report("start -> ready, llamacpp (image and model present, nothing running)", rows,
           floor=FLOOR, goal=f"airpods overhead <= {GOAL_MS:.0f} ms")
    med = {name: statistics.median(s) * 1000 for name, s in rows}
    for name in [n for n in runs if n not in (FLOOR, REMOTE)]:
        print(f"  {name}: overhead vs local CLI floor {med[name] - med[FLOOR]:+8.1f} ms, "
              f"vs remote CLI floor {med[name] - med[REMOTE]:+8.1f} ms")
    verdict(f"airpods overhead over bare podman (local CLI) <= {GOAL_MS:.0f} ms",
            med[AIRPODS] - med[FLOOR], GOAL_MS, what="overhead")
    verdict(f"airpods overhead over bare podman (--remote) <= {GOAL_MS:.0f} ms",
            med[AIRPODS] - med[REMOTE], GOAL_MS, what="overhead")


if __name__ == "__main__":
    main()
