"""Readiness latency: from the server turning ready to `airpods start` reporting it (goal: a
median of at most 10 ms after the first /health 200).

    python bench/bench_readiness.py [--repeat N]
    AIRPODS_BENCH_BASE=/tmp/perf-base python bench/bench_readiness.py   # + BEFORE runs

Each run (after an untimed `airpods stop llamacpp`): two threads poll the published port every
5 ms from before the launch, one GET /health (recording the first 200), one GET /v1/models with
the API key (recording the first answer that lists the model's alias; airpods requires that
too for llama-server); then `airpods start llamacpp` runs with its stderr read line by line,
and the arrival of the line with "ready after" is recorded. Latency = that arrival - the first
200 (and - the first listing). A negative latency means airpods saw it before our poller did
(each poller is up to one 5 ms gap plus one request late), so the true latency is at most the
number printed plus about 5 ms. All times are perf_counter() in this process, raw numbers are
printed for every run.

Also shown, as times since launch: first /health 200 (the floor: the server itself), model
listed, airpods' "ready" line, and airpods' exit (what a user waits for). With
AIRPODS_BENCH_BASE, runs of that earlier checkout alternate with this tree's (BEFORE).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import MODEL_ALIAS, BenchStack, before, bench_stack  # noqa: E402
from _timing import report, verdict  # noqa: E402

GOAL_MS = 10.0
POLL_S = 0.005
READY_LINE = re.compile(r"\bllamacpp ready after\b")


class Poller(threading.Thread):
    """GET url every POLL_S until ok(response); ``first`` = perf_counter() of that answer."""

    def __init__(self, url: str, ok, headers: dict | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.ok, self.headers = url, ok, headers or {}
        self.first: float | None = None
        self.polls = 0
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=1.0, headers=self.headers) as http:
            while not self.halt.is_set():
                self.polls += 1
                try:
                    resp = http.get(self.url)
                    if self.ok(resp):
                        self.first = time.perf_counter()
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(POLL_S)


def models_listed(resp: httpx.Response) -> bool:
    if resp.status_code != 200:
        return False
    try:
        return any(m.get("id") == MODEL_ALIAS for m in resp.json().get("data", []))
    except ValueError:
        return False


def one_run(st: BenchStack, key: str, env: dict[str, str] | None = None) -> dict[str, float]:
    st.airpods("stop", "llamacpp", "--timeout", "1", env=env)  # not timed
    base = st.base_url()
    health = Poller(f"{base}/health", lambda r: r.status_code == 200)
    models = Poller(f"{base}/v1/models", models_listed, {"Authorization": f"Bearer {key}"})
    health.start()
    models.start()
    t0 = time.perf_counter()
    proc = subprocess.Popen(st.airpods_argv("start", "llamacpp"), env=env or st.env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ready_at: float | None = None
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:  # each line as it arrives (stderr is line-buffered)
        now = time.perf_counter()
        lines.append(line)
        if ready_at is None and READY_LINE.search(line):
            ready_at = now
    proc.wait()
    exited = time.perf_counter()
    for p in (health, models):
        p.join(timeout=5)
        p.halt.set()
    if proc.returncode != 0 or ready_at is None or health.first is None or models.first is None:
        raise RuntimeError(f"run failed: rc={proc.returncode} ready_line={ready_at} "
                           f"health={health.first} models={models.first}\n{''.join(lines)}")
    return {
        "health": health.first - t0,
        "models": models.first - t0,
        "ready_line": ready_at - t0,
        "exit": exited - t0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with bench_stack() as st:
        st.airpods("start", "llamacpp")  # warm-up (network, caches, the API key)
        key = st.api_key()
        base_env = st.base_env
        results: dict[str, list[dict[str, float]]] = {"": [], "BEFORE ": []}
        if base_env is not None:
            one_run(st, key, base_env)  # its warm-up (its own resolved-config cache entry)
        for _ in range(args.repeat):
            results[""].append(one_run(st, key))
            if base_env is not None:
                results["BEFORE "].append(one_run(st, key, base_env))
        st.airpods("stop", "llamacpp", "--timeout", "1")
    for prefix, runs in results.items():
        if runs:
            show(prefix, runs)
    lat = latencies(results[""])
    verdict(f"readiness latency vs /health 200 <= {GOAL_MS:.0f} ms",
            statistics.median(lat["vs first /health 200"]), GOAL_MS)
    verdict(f"readiness latency vs model listed <= {GOAL_MS:.0f} ms",
            statistics.median(lat["vs model first listed"]), GOAL_MS)


def latencies(runs: list[dict[str, float]]) -> dict[str, list[float]]:
    return {
        "vs first /health 200": [(r["ready_line"] - r["health"]) * 1000 for r in runs],
        "vs model first listed": [(r["ready_line"] - r["models"]) * 1000 for r in runs],
        "ready line -> exit": [(r["exit"] - r["ready_line"]) * 1000 for r in runs],
    }


def show(prefix: str, runs: list[dict[str, float]]) -> None:
    print(f"\n{prefix}raw, ms since launch: first /health 200 | model listed | airpods 'ready' "
          "line | airpods exit | latency vs health | latency vs model listed")
    for r in runs:
        print(f"  {r['health'] * 1000:7.1f} | {r['models'] * 1000:7.1f} | "
              f"{r['ready_line'] * 1000:7.1f} | {r['exit'] * 1000:7.1f} | "
              f"{(r['ready_line'] - r['health']) * 1000:+7.1f} | "
              f"{(r['ready_line'] - r['models']) * 1000:+7.1f}")

    def col(key: str) -> list[float]:
        return [r[key] for r in runs]

    report(f"{prefix}start -> ready, times since launch", [
        ("floor: server /health first 200", col("health")),
        ("server /v1/models first lists the model", col("models")),
        (before("airpods prints 'ready'") if prefix else "airpods prints 'ready'",
         col("ready_line")),
        (before("airpods start exits") if prefix else "airpods start exits", col("exit")),
    ], floor="floor: server /health first 200")

    print(f"\n== {prefix}readiness latency (goal: median <= {GOAL_MS:.0f} ms)")
    for name, vals in latencies(runs).items():
        print(f"  {name:<24} median {statistics.median(vals):+8.1f} ms  min {min(vals):+8.1f}  "
              f"max {max(vals):+8.1f}  n={len(vals)}")


if __name__ == "__main__":
    main()
