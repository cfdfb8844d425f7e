"""Router mode: a chat naming an unloaded model -> its first token, against the same model
started alone (single mode: `airpods start` -> first token), and the swap with models_max = 1.

    python bench/bench_router.py [--repeat N] [--layers L --hidden H]

One isolated Podman, the local llama-server image, generated GGUFs (alpha, beta: same size,
different weights; tiny by default, `--layers 8 --hidden 1024` for ~200 MB) in one model
volume. Two services: `llamacpp` in single mode serving alpha, and `router` in router mode
(presets alpha and beta, models_max = 1), on their own ports.

- floor: a streamed chat to a model that is already loaded, request -> first token (what any
  answer costs; everything else is this plus loading).
- single: `airpods start llamacpp` (nothing running, image and model present) -> a streamed
  chat -> first token, timed from before `start`.
- router cold: the router runs with no model loaded; a streamed chat naming alpha -> first
  token (the router spawns alpha's llama-server, waits for it, proxies the request).
- router swap: beta is loaded; a streamed chat naming alpha -> first token (models_max = 1:
  beta is stopped first, then alpha loaded).

Untimed between samples: `airpods stop llamacpp`, POST /models/unload and waiting until the
router reports the state wanted. Runs are taken in turns so noise hits them alike; one untimed
round first. Medians, and ratios against the floor and against single mode.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import BenchStack, bench_stack  # noqa: E402
from _timing import report  # noqa: E402

from tests.sandbox import free_port  # noqa: E402

FLOOR = "floor: chat to a loaded model -> 1st token"
SINGLE = "single: airpods start -> 1st token"
COLD = "router: chat naming an unloaded model -> 1st token"
SWAP = "router: swap (models_max=1) -> 1st token"

ROUTER = """
[services.router]
kind = "llama-server"
mode = "router"
image = "{image}"
ports = [{{ host = {port}, container = 8080 }}]
volumes = {{ models = {{ source = "{volume}", target = "/models", mode = "ro" }} }}

[services.router.command_args]
threads = 1
ctx_size = 256

[services.router.router]
models_max = 1

[services.router.models.alpha]
file = "alpha.gguf"

[services.router.models.beta]
file = "beta.gguf"
"""


def first_token(http: httpx.Client, base: str, key: str, model: str) -> float:
    """Stream a chat naming `model`; perf_counter() when the first content delta arrives."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4, "stream": True}
    with http.stream("POST", f"{base}/v1/chat/completions", json=body,
                     headers={"Authorization": f"Bearer {key}"}) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"{model}: HTTP {resp.status_code}: {resp.read()[:300]!r}")
        last = ""
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(f"{model}: {chunk['error']}")
            choice = (chunk.get("choices") or [{}])[0]
            # The first generated token: text, or (random weights) an end token straight away.
            if isinstance(choice.get("delta", {}).get("content"), str) or choice.get(
                    "finish_reason"):
                return time.perf_counter()
            last = line
    raise RuntimeError(f"{model}: the stream ended without a token (last: {last[:300]})")


def router_states(http: httpx.Client, base: str, key: str) -> dict[str, str]:
    data = http.get(f"{base}/models", headers={"Authorization": f"Bearer {key}"}).json()
    return {m["id"]: m["status"]["value"] for m in data["data"]}


def settle(http: httpx.Client, base: str, key: str, want: dict[str, str]) -> None:
    """Unload what `want` says is unloaded, load what it says is loaded; wait until so."""
    headers = {"Authorization": f"Bearer {key}"}
    for action, state in (("unload", "unloaded"), ("load", "loaded")):  # unloads free the slot
        targets = {m: s for m, s in want.items() if s == state}
        now = router_states(http, base, key)
        for model in targets:
            if now[model] != state:
                http.post(f"{base}/models/{action}", json={"model": model}, headers=headers)
        deadline = time.monotonic() + 60
        while any(router_states(http, base, key)[m] != s for m, s in targets.items()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"router did not reach {want}: "
                                   f"{router_states(http, base, key)}")
            time.sleep(0.02)


def setup(st: BenchStack, size: dict[str, int]) -> tuple[str, int]:
    from tests.tiny_model import write_tiny_gguf

    for name, seed in (("alpha", 1), ("beta", 2)):
        path = write_tiny_gguf(st.model.parent / f"{name}.gguf", seed=seed, **size)
        st.airpods("models", "add", str(path), "--service", "llamacpp")
    port = free_port()
    volume = st.dry_run("llamacpp")["volumes"][0]["source"]
    text = st.config.read_text()
    assert text.count('default_model = "tiny.gguf"') == 1, text  # the single service's model
    text = text.replace('default_model = "tiny.gguf"', 'default_model = "alpha.gguf"')
    st.config.write_text(text + ROUTER.format(image=st.image, port=port, volume=volume))
    st.ports["router"] = port
    return st.base_url("router"), port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--layers", type=int, default=2, help="model size (default: tiny)")
    parser.add_argument("--hidden", type=int, default=64)
    args = parser.parse_args()
    size = {"layers": args.layers, "hidden": args.hidden, "heads": max(4, args.hidden // 64),
            "ffn": args.hidden * 2}

    with bench_stack() as st, httpx.Client(timeout=60, trust_env=False) as http:
        router, _ = setup(st, size)
        mb = (st.model.parent / "alpha.gguf").stat().st_size / 1e6
        st.airpods("start", "router")
        rkey, skey = st.api_key("router"), st.api_key("llamacpp")
        single = st.base_url("llamacpp")

        def floor() -> float:
            settle(http, router, rkey, {"alpha": "loaded", "beta": "unloaded"})
            t0 = time.perf_counter()
            return first_token(http, router, rkey, "alpha") - t0

        def single_start() -> float:
            st.airpods("stop", "llamacpp", "--timeout", "1")
            t0 = time.perf_counter()
            st.airpods("start", "llamacpp")
            return first_token(http, single, skey, "alpha") - t0

        def cold() -> float:
            settle(http, router, rkey, {"alpha": "unloaded", "beta": "unloaded"})
            t0 = time.perf_counter()
            return first_token(http, router, rkey, "alpha") - t0

        def swap() -> float:
            settle(http, router, rkey, {"alpha": "unloaded", "beta": "loaded"})
            t0 = time.perf_counter()
            return first_token(http, router, rkey, "alpha") - t0

        runs = {FLOOR: floor, SINGLE: single_start, COLD: cold, SWAP: swap}
        for fn in runs.values():  # one untimed round
            fn()
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, fn in runs.items():
                samples[name].append(fn())
        after = router_states(http, router, rkey)
        if after != {"alpha": "loaded", "beta": "unloaded"}:
            raise RuntimeError(f"models_max = 1 not kept: {after}")

    rows = [(name, samples[name]) for name in runs]
    report(f"router mode: first token of a model that is not loaded ({mb:.1f} MB GGUFs, "
           "CPU)", rows, floor=FLOOR)
    med = {name: statistics.median(s) * 1000 for name, s in rows}
    print(f"  router cold / single start:  x{med[COLD] / med[SINGLE]:5.2f} "
          f"({med[COLD]:.1f} ms vs {med[SINGLE]:.1f} ms)")
    print(f"  router swap / router cold:   x{med[SWAP] / med[COLD]:5.2f} "
          f"(evicting the loaded model costs {med[SWAP] - med[COLD]:+.1f} ms)")


if __name__ == "__main__":
    main()
