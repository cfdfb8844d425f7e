"""What the gateway benchmarks share: a bounded load of chats that records which deployment
answered each, and one isolated Podman with the llama-server and LiteLLM images and the tiny
model (bench_escalation, bench_replicas)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import REPO_ROOT, load_note  # noqa: E402

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests import sandbox  # noqa: E402

BOUND_S = 60.0  # no request of a load is sent after this (issue 22: "at most 60 s")
Result = tuple[int, str, float, float]  # status, deployment (or the error), start, seconds


def load(client: Callable[[], httpx.Client], body: dict, count: int, workers: int,
         during: Callable[[int], None] | None = None) -> list[Result]:
    """`count` chats through the client `client()` opens, `workers` at a time, none started
    after BOUND_S; `during(i)` runs before request i is sent. The deployment is LiteLLM's
    x-litellm-model-id header."""
    t_end = time.monotonic() + BOUND_S
    with client() as http:
        def one(i: int) -> Result:
            if during is not None:
                during(i)
            t0 = time.monotonic()
            if t0 > t_end:
                return 0, "not sent (over the bound)", t0, 0.0
            try:
                resp = http.post("/v1/chat/completions", json=body)
            except httpx.HTTPError as exc:
                return 0, type(exc).__name__, t0, time.monotonic() - t0
            return resp.status_code, resp.headers.get("x-litellm-model-id", ""), t0, \
                time.monotonic() - t0

        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, range(count)))


def balance_arguments(doc: str | None) -> argparse.Namespace:
    """The options of the balance benchmarks (bench_peers, bench_replicas)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--strategies", default="least-busy,simple-shuffle")
    args, _ = parser.parse_known_args()  # bench/run_all.sh passes every benchmark its ARGS
    return args


@contextlib.contextmanager
def gateway_sandbox() -> Iterator[tuple[sandbox.PodmanEnv, str, str, Path, Path]]:
    """(podman env, llama-server image, LiteLLM image, scratch dir, tiny model) in a throwaway
    isolated Podman, removed at the end."""
    with sandbox.isolated_podman(prefix="airpods-bench-") as penv:
        llama_image = sandbox.build_llama_image(penv)
        litellm_image = sandbox.build_python_service_image(penv, "litellm")
        tmp = Path(tempfile.mkdtemp(dir=penv.base))
        model = sandbox.write_tiny_model(tmp / "models")
        print(f"sandbox: {penv.base}; {load_note()}", flush=True)
        yield penv, llama_image, litellm_image, tmp, model
        print(f"measured; {load_note()}")
