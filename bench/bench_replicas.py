"""Replicas: two llama-servers of one model on this machine behind the gateway (issue 22, part 5).

    python bench/bench_replicas.py [--requests 200] [--workers 8] [--repeat 40]
                                   [--strategies least-busy,simple-shuffle]

One isolated Podman sandbox, the stack of the replicas suite (tests/gateway_stack.py with
`replicas = 2`): llamacpp and llamacpp-2 serving `tiny`, and the gateway CONTAINER from the
locally built LiteLLM image, all started by `airpods start`. Measured in the same run, medians:

- added latency: a tiny chat (max_tokens 1) straight to replica 1's published port (the floor)
  vs through the gateway, taken in turns (goal: difference of the medians <= 20 ms);
- balance: N requests for `tiny`, W at a time, bounded to 60 s, per routing strategy (the
  gateway restarted with it): the share each replica answered (goal: each 40-60 %, none failed);
- a replica down: a load of requests, W at a time, replica 2 killed (`podman kill`) after a
  quarter of them: failed requests (goal 0) and the slowest answer after the fault (goal <= 2 s).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _gateway_bench import BOUND_S, balance_arguments, gateway_sandbox, load  # noqa: E402
from _timing import interleaved, median_ms, report, verdict  # noqa: E402

from tests.gateway_stack import CHAT, GatewayStack, gateway_stack  # noqa: E402

FIRST, SECOND = "local:llamacpp:tiny", "local:llamacpp-2:tiny"
BODY = {**CHAT, "max_tokens": 1}


def added_latency(stack: GatewayStack, repeat: int) -> float:
    key = stack.config_get("services.llamacpp.env.LLAMA_API_KEY")
    with httpx.Client(timeout=30, trust_env=False) as http, stack.client() as gw:
        def direct() -> None:
            http.post(f"http://127.0.0.1:{stack.port}/v1/chat/completions", json=BODY,
                      headers={"Authorization": f"Bearer {key}"}).raise_for_status()

        def gateway() -> None:
            gw.post("/v1/chat/completions", json=BODY).raise_for_status()

        for _ in range(5):  # past LiteLLM's first-request setup
            gateway()
        samples = interleaved({"replica 1 direct (floor)": direct,
                               "gateway, tiny over 2 replicas": gateway}, repeat)
    rows = list(samples.items())
    report(f"a tiny chat, {repeat} turns", rows, rows[0][0])
    added = median_ms(rows[1][1]) - median_ms(rows[0][1])
    verdict("gateway added latency with 2 replicas <= 20 ms", added, 20.0,
            "median(gateway) - median(direct)")
    return added


def balance(stack: GatewayStack, strategy: str, count: int, workers: int) -> bool:
    out = stack.airpods("config", "set", "services.gateway.routing_strategy", strategy)
    assert out.returncode == 0, out.stderr
    stack.airpods("stop", "gateway", "--timeout", "1")
    stack.start("gateway")
    t0 = time.monotonic()
    results = load(lambda: stack.client(timeout=BOUND_S), BODY, count, workers)
    wall = time.monotonic() - t0
    split = {d: sum(1 for _, dep, _, _ in results if dep == d) for d in (FIRST, SECOND)}
    failed = sum(1 for status, *_ in results if status != 200)
    shares = {d: n / count for d, n in split.items()}
    ok = failed == 0 and all(0.4 <= s <= 0.6 for s in shares.values())
    print(f"\nbalance, {strategy}: {count} requests, {workers} at a time, {wall:.1f} s: "
          f"llamacpp {split[FIRST]} ({shares[FIRST]:.0%}), llamacpp-2 {split[SECOND]} "
          f"({shares[SECOND]:.0%}), failed {failed}, median "
          f"{statistics.median(s for *_, s in results) * 1000:.0f} ms -> "
          f"{'PASS' if ok else 'MISS'} (goal: each 40-60 %, none failed)", flush=True)
    return ok


def replica_down(stack: GatewayStack, count: int, workers: int) -> bool:
    fault: list[float] = []
    lock = threading.Lock()

    def during(i: int) -> None:
        with lock:
            if i == count // 4 and not fault:
                stack.penv.podman("kill", "airpods-llamacpp-2-server", check=True)
                fault.append(time.monotonic())

    results = load(lambda: stack.client(timeout=BOUND_S), BODY, count, workers, during)
    failed = [r for r in results if r[0] != 200]
    after = [s for status, _, start, s in results if fault and start >= fault[0]]
    slow = max(after) if after else float("nan")
    ok = not failed and slow <= 2.0
    print(f"\nreplica down: {count} requests, {workers} at a time; llamacpp-2 killed after "
          f"{count // 4}: failed {len(failed)}, slowest answer after the kill {slow:.2f} s, "
          f"median {statistics.median(s for *_, s in results) * 1000:.0f} ms -> "
          f"{'PASS' if ok else 'MISS'} (goal: 0 failed, <= 2 s)", flush=True)
    return ok


def main() -> int:
    args = balance_arguments(__doc__)
    strategies = args.strategies.split(",")
    with gateway_sandbox() as (penv, llama_image, litellm_image, tmp, model), \
            gateway_stack(penv, llama_image, litellm_image, model, tmp, replicas=2) as stack:
        stack.start("gateway")
        added = added_latency(stack, args.repeat)
        spread = [balance(stack, s, args.requests, args.workers) for s in strategies]
        down = replica_down(stack, args.requests // 2, args.workers // 2 or 1)
    mark = {True: "PASS", False: "MISS"}
    print("\nsummary (issue 22, replicas):")
    print(f"  {mark[added <= 20]} added latency with 2 replicas +{added:.1f} ms (<= 20 ms)")
    for strategy, ok in zip(strategies, spread, strict=True):
        print(f"  {mark[ok]} balance {strategy}: each 40-60 %, none failed")
    print(f"  {mark[down]} replica down: 0 failed, every answer <= 2 s")
    return 0  # a MISS is a figure, not a failure (bench/run_all.sh)


if __name__ == "__main__":
    raise SystemExit(main())
