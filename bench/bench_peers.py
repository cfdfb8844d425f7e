"""Peers: two airpods machines on this host, one gateway in front of both (issue 22, part 4).

    python bench/bench_peers.py [--requests 200] [--workers 8] [--repeat 40]
                                [--strategies least-busy,simple-shuffle]

Two isolated Podman sandboxes (tests/sandbox.py), each a "machine" running llama-server `tiny`
and the gateway container, started by `airpods start` (tests/peer_machines.py). Gateway A peers
gateway B, reached on this host's own non-loopback address as a LAN peer would be. Measured in
the same run, medians:

- added latency: a tiny chat (max_tokens 1) straight to A's llama-server (the floor) vs through
  A's gateway with the peer and the `auto` model configured, naming `tiny` and naming `auto`,
  taken in turns; only requests the gateway served locally count (goal: difference of the
  medians <= 20 ms, the slower of the two);
- balance: N requests for `tiny`, W at a time, bounded to 60 s, per routing strategy: the share
  each deployment answered (goal: each 40-60 %, none failed);
- peer down: a load of requests, W at a time; B's llama-server is killed after a quarter of
  them, then B's whole gateway after half: failed requests (goal 0) and the slowest answer
  after each fault (goal <= 2 s).
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _gateway_bench import BOUND_S, balance_arguments, load  # noqa: E402
from _stack import REPO_ROOT  # noqa: E402

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.peer_machines import CHAT, Machine, lan_address  # noqa: E402
from tests.sandbox import (  # noqa: E402
    PodmanEnv,
    build_llama_image,
    build_python_service_image,
    start_isolated_podman,
    teardown_isolated_podman,
    write_tiny_model,
)

LOCAL, PEER = "local:llamacpp:tiny", "peer:b:tiny"
# A's gateway also has `auto` (a SIMPLE "hi" goes to `tiny`): the frontier is never reached, so
# it points at the container's own closed port rather than at any network.
ESCALATION = """
[services.gateway.remotes.frontier]
base_url = "http://127.0.0.1:9/v1"
models = ["big-model"]
[services.gateway.escalation]
local = "tiny"
frontier = "big-model"
"""
BODY = {**CHAT, "max_tokens": 1}


@contextlib.contextmanager
def sandbox() -> Iterator[PodmanEnv]:
    penv = start_isolated_podman()
    try:
        yield penv
    finally:
        teardown_isolated_podman(penv)


def added_latency(a: Machine, repeat: int) -> dict[str, tuple[float, int]]:
    """{path: (median ms, how many)}: direct, and through the gateway naming `tiny` and `auto`,
    in turns; a gateway sample counts only when A's own server answered (the floor's)."""
    key = a.get("services.llamacpp.env.LLAMA_API_KEY")
    direct_url = f"http://127.0.0.1:{a.port}/v1/chat/completions"
    samples: dict[str, list[float]] = {"direct": [], "tiny": [], "auto": []}
    with httpx.Client(timeout=30, trust_env=False) as http, a.client() as gw:
        for i in range(repeat + 1):
            t0 = time.perf_counter()
            http.post(direct_url, json=BODY, headers={"Authorization": f"Bearer {key}"})
            if i:
                samples["direct"].append(time.perf_counter() - t0)
            for model in ("tiny", "auto"):
                t0 = time.perf_counter()
                resp = gw.post("/v1/chat/completions", json={**BODY, "model": model})
                took = time.perf_counter() - t0
                if i and resp.status_code == 200 and \
                        resp.headers.get("x-litellm-model-id") == LOCAL:
                    samples[model].append(took)
    return {path: (statistics.median(s) * 1000, len(s)) for path, s in samples.items()}


def balance(a: Machine, b: Machine, strategy: str, count: int, workers: int) -> dict:
    a.write(peers={"b": f'url = "{b.url}"\napi_key_env = "B_KEY"'}, strategy=strategy)
    a.start("gateway")
    a.wait_route(PEER, "up", within_s=60)
    t0 = time.monotonic()
    results = load(lambda: a.client(timeout=BOUND_S), BODY, count, workers)
    wall = time.monotonic() - t0
    split = {d: sum(1 for _, dep, _, _ in results if dep == d) for d in (LOCAL, PEER)}
    failed = sum(1 for status, *_ in results if status != 200)
    shares = {d: n / count for d, n in split.items()}
    ok = failed == 0 and all(0.4 <= s <= 0.6 for s in shares.values())
    took = {d: statistics.median([s for _, dep, _, s in results if dep == d] or [0]) * 1000
            for d in (LOCAL, PEER)}
    # least-busy evens out requests in flight, not shares: a slower deployment (the peer's
    # extra gateway hop) holds each request longer and so is picked less often.
    print(f"balance, {strategy}: {count} requests, {workers} at a time, {wall:.1f} s: "
          f"local {split[LOCAL]} ({shares[LOCAL]:.0%}, median {took[LOCAL]:.0f} ms), peer "
          f"{split[PEER]} ({shares[PEER]:.0%}, median {took[PEER]:.0f} ms), failed {failed} -> "
          f"{'PASS' if ok else 'MISS'} (goal: each 40-60 %, none failed)", flush=True)
    return {"strategy": strategy, "split": split, "failed": failed, "ok": ok}


def peer_down(a: Machine, b: Machine, count: int, workers: int) -> bool:
    faults: dict[str, float] = {}
    lock = threading.Lock()

    def during(i: int) -> None:
        for at, what, service in ((count // 4, "llama-server", "llamacpp"),
                                  (count // 2, "gateway", "gateway")):
            with lock:
                if i == at and what not in faults:
                    b.kill(service)
                    faults[what] = time.monotonic()

    results = load(lambda: a.client(timeout=BOUND_S), BODY, count, workers, during)
    failed = [r for r in results if r[0] != 200]
    worst = {}
    for what, t_fault in faults.items():
        after = [s for status, _, start, s in results if start >= t_fault]
        worst[what] = max(after) if after else float("nan")
    slow = max(worst.values())
    ok = not failed and slow <= 2.0
    print(f"peer down: {count} requests, {workers} at a time; B's llama-server killed, then its "
          f"gateway: failed {len(failed)}, slowest answer after each fault "
          + ", ".join(f"{w} {s:.2f} s" for w, s in worst.items())
          + f", median {statistics.median(s for *_, s in results):.3f} s -> "
          f"{'PASS' if ok else 'MISS'} (goal: 0 failed, <= 2 s)", flush=True)
    return ok


def main() -> None:
    args = balance_arguments(__doc__)
    host_ip = lan_address()
    if host_ip is None:
        sys.exit("this host has no non-loopback IPv4 address to publish a peer on")
    with tempfile.TemporaryDirectory(prefix="airpods-bench-peers-") as tmp, \
            sandbox() as penv_a, sandbox() as penv_b:
        root = Path(tmp)
        model = write_tiny_model(root / "models")
        machines = []
        for name, penv in (("a", penv_a), ("b", penv_b)):
            machines.append(Machine.make(name, penv, root / name, build_llama_image(penv),
                                         build_python_service_image(penv, "litellm"), host_ip,
                                         model))
        a, b = machines
        try:
            b.start("llamacpp", "gateway")
            a.write(peers={"b": f'url = "{b.url}"\napi_key_env = "B_KEY"'},
                    env={"B_KEY": b.master_key}, extra=ESCALATION)
            a.start("llamacpp", "gateway")
            a.wait_route(PEER, "up", within_s=60)
            medians = added_latency(a, args.repeat)
            direct = medians["direct"][0]
            added = max(medians[m][0] for m in ("tiny", "auto")) - direct
            print(f"added latency with a peer and `auto` configured: direct {direct:.1f} ms; "
                  + ", ".join(f"gateway naming {m} {medians[m][0]:.1f} ms (x"
                              f"{medians[m][0] / direct:.2f}, +{medians[m][0] - direct:.1f} ms, "
                              f"n={medians[m][1]})" for m in ("tiny", "auto"))
                  + f" -> {'PASS' if added <= 20 else 'MISS'} (goal <= 20 ms)", flush=True)
            verdicts = [balance(a, b, s, args.requests, args.workers)["ok"]
                        for s in args.strategies.split(",")]
            down = peer_down(a, b, args.requests // 2, args.workers // 2 or 1)
        finally:
            a.stop()
            b.stop()
    verdict = {True: "PASS", False: "MISS"}
    print("\nsummary (issue 22, peers):")
    print(f"  {verdict[added <= 20]} added latency with a peer and `auto` configured "
          f"+{added:.1f} ms (<= 20 ms)")
    for strategy, ok in zip(args.strategies.split(","), verdicts, strict=True):
        print(f"  {verdict[ok]} balance {strategy}: each 40-60 %, none failed")
    print(f"  {verdict[down]} peer down: 0 failed, every answer <= 2 s")


if __name__ == "__main__":
    main()
