"""The gateway's cost: what going through LiteLLM adds to a request to the local llama-server.

    python bench/bench_gateway.py [--repeat N] [--fallback-repeat M] [--layers L --hidden H]

One isolated Podman with the local llama-server image and the tiny GGUF (`llamacpp`, published
on loopback), the real LiteLLM proxy (PyPI, pinned; tests/litellm_env.py) run as a host process
with the config.yaml, guard and key files airpods renders for the gateway (tests/gateway_host.py),
and a loopback stand-in remote (tests/remote_standin.py) as `tiny`'s fallback. Measured in the
same run, in turns, medians:

- non-streaming: a tiny chat (max_tokens 1), straight to llama-server vs through the gateway;
  the difference of the medians is the added latency (goal <= 20 ms);
- streaming: tokens/s of a streamed chat (max_tokens 200, end tokens biased away so every run
  streams the same count), first to last token, through the gateway vs direct (goal >= 0.95x);
- fallback: `podman kill -s KILL` of llama-server, then a chat for `tiny` through the gateway:
  from the kill to the fallback's answer (goal <= 2 s). Between samples llama-server is started
  again and the gateway is waited on until it serves locally (untimed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import REPO_ROOT, BenchStack, bench_stack, load_note  # noqa: E402

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.gateway_host import run_gateway  # noqa: E402
from tests.remote_standin import StandinRemote  # noqa: E402

ADDED_GOAL_MS = 20.0
STREAM_GOAL = 0.95
FALLBACK_GOAL_S = 2.0
GATEWAY = """
[services.gateway]
enabled = true

[services.gateway.remotes.standin]
base_url = "{remote}"
models = ["big-model"]

[services.gateway.fallbacks]
tiny = ["big-model"]
"""


def gateway_spec(st: BenchStack):
    """The gateway's ContainerSpec as `start` renders it, from the stack's own XDG dirs."""
    from airpods.resolving import resolve
    from airpods.secrets import SecretStore

    saved = {k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")}
    os.environ.update({k: st.env[k] for k in saved})
    try:
        store = SecretStore()
        spec = resolve(st.config, environ={"AIRPODS_NO_CACHE": "1"}, secrets=store).specs
        store.save()
        return spec["gateway"]
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def end_bias() -> dict[str, int]:
    from airpods.models.tiny import SPECIAL_TOKENS, _vocab

    tokens = _vocab()[0]
    return {str(tokens.index(t)): -100 for t in SPECIAL_TOKENS}


def chat(http: httpx.Client, base: str, key: str, **extra: object) -> httpx.Response:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1,
            **extra}
    resp = http.post(f"{base}/v1/chat/completions", json=body,
                     headers={"Authorization": f"Bearer {key}"})
    resp.raise_for_status()
    return resp


def stream_rate(http: httpx.Client, base: str, key: str, bias: dict[str, int]) -> float:
    """Tokens per second between the first and the last content chunk."""
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 200, "stream": True, "logit_bias": bias}
    times: list[float] = []
    with http.stream("POST", f"{base}/v1/chat/completions", json=body,
                     headers={"Authorization": f"Bearer {key}"}) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"]
            if delta and delta[0].get("delta", {}).get("content"):
                times.append(time.perf_counter())
    if len(times) < 10:
        raise RuntimeError(f"only {len(times)} tokens streamed")
    return (len(times) - 1) / (times[-1] - times[0])


def served_locally(http: httpx.Client, base: str, key: str) -> bool:
    try:
        resp = chat(http, base, key)
    except httpx.HTTPError:
        return False
    return resp.headers.get("x-litellm-model-id", "").startswith("local:")


def wait_local(http: httpx.Client, base: str, key: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not served_locally(http, base, key):
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not return to local")
        time.sleep(0.5)


def bare(config: dict) -> None:
    """No airpods module: LiteLLM's own master-key check, no callbacks."""
    config["general_settings"].pop("custom_auth")
    config["litellm_settings"]["callbacks"] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--fallback-repeat", type=int, default=5)
    parser.add_argument("--bare", action="store_true",
                        help="LiteLLM without airpods' guard module (auth, private lane): to "
                        "tell LiteLLM's own cost from the guard's")
    parser.add_argument("--layers", type=int, default=2, help="model size (default: tiny, "
                        "~2000 tok/s: the proxy's per-token cost dominates)")
    parser.add_argument("--hidden", type=int, default=64,
                        help="e.g. --layers 8 --hidden 1024 for a model near 100 tok/s")
    args = parser.parse_args()
    bias = end_bias()

    with bench_stack() as st, StandinRemote(["big-model"]) as remote:
        text = st.config.read_text() + GATEWAY.format(remote=remote.base_url)
        if (args.layers, args.hidden) != (2, 64):  # served as `tiny` all the same
            from airpods.models.tiny import write_tiny_gguf

            size = {"layers": args.layers, "hidden": args.hidden,
                    "heads": max(4, args.hidden // 64), "ffn": args.hidden * 2}
            path = write_tiny_gguf(st.model.parent / "sized.gguf", **size)
            st.airpods("models", "add", str(path), "--service", "llamacpp")
            text = text.replace('default_model = "tiny.gguf"', 'default_model = "sized.gguf"')
            text = text.replace("[services.llamacpp.command_args]",
                                '[services.llamacpp.command_args]\nalias = "tiny"')
        st.config.write_text(text)
        st.airpods("start", "llamacpp")
        direct, lkey = st.base_url("llamacpp"), st.api_key("llamacpp")
        spec = gateway_spec(st)
        urls = {"http://llamacpp:8080/v1": f"{direct}/v1"}
        with run_gateway(spec, st.penv.base / "gateway", urls,
                         edit=bare if args.bare else None) as gw, \
                httpx.Client(timeout=60, trust_env=False) as http:
            gkey = gw.master_key
            for _ in range(3):  # warm both paths (connections, LiteLLM's first-call setup)
                chat(http, direct, lkey)
                chat(http, gw.url, gkey)
            plain: dict[str, list[float]] = {"direct": [], "gateway": []}
            rates: dict[str, list[float]] = {"direct": [], "gateway": []}
            for _ in range(args.repeat):
                for name, base, key in (("direct", direct, lkey), ("gateway", gw.url, gkey)):
                    t0 = time.perf_counter()
                    chat(http, base, key)
                    plain[name].append(time.perf_counter() - t0)
                    rates[name].append(stream_rate(http, base, key, bias))
            fallback: list[float] = []
            for _ in range(args.fallback_repeat):
                wait_local(http, gw.url, gkey)
                t0 = time.perf_counter()
                st.penv.podman("kill", "--signal", "KILL", "airpods-llamacpp-server")
                resp = chat(http, gw.url, gkey)
                fallback.append(time.perf_counter() - t0)
                if not resp.headers.get("x-litellm-model-id", "").startswith("remote:"):
                    raise RuntimeError("the fallback did not answer")
                st.airpods("start", "llamacpp")
            if remote.count < args.fallback_repeat:
                raise RuntimeError(f"the stand-in saw {remote.count} requests")

    med = {k: statistics.median(v) * 1000 for k, v in plain.items()}
    rate = {k: statistics.median(v) for k, v in rates.items()}
    added = med["gateway"] - med["direct"]
    ratio = rate["gateway"] / rate["direct"]
    fb = statistics.median(fallback)
    what = "bare LiteLLM, no airpods guard" if args.bare else "LiteLLM + airpods guard"
    print(f"\n== gateway ({what}, host process) vs llama-server direct; model layers "
          f"{args.layers} hidden {args.hidden}; {load_note()}")
    print(f"  tiny chat, non-streaming: direct {med['direct']:.1f} ms, gateway "
          f"{med['gateway']:.1f} ms (median of {args.repeat}) -> added {added:.1f} ms")
    print(f"  streaming: direct {rate['direct']:.0f} tok/s, gateway {rate['gateway']:.0f} tok/s"
          f" -> x{ratio:.3f}")
    print(f"  local killed -> fallback answer: median {fb:.2f} s "
          f"(min {min(fallback):.2f}, max {max(fallback):.2f}, n={len(fallback)})")
    print(f"  {'PASS' if added <= ADDED_GOAL_MS else 'MISS'}  added latency: {added:.1f} ms "
          f"(goal <= {ADDED_GOAL_MS:.0f} ms)")
    print(f"  {'PASS' if ratio >= STREAM_GOAL else 'MISS'}  streaming tokens/s: x{ratio:.3f} "
          f"of direct (goal >= {STREAM_GOAL})")
    print(f"  {'PASS' if fb <= FALLBACK_GOAL_S else 'MISS'}  local down -> fallback answer: "
          f"{fb:.2f} s (goal <= {FALLBACK_GOAL_S:.0f} s)")


if __name__ == "__main__":
    main()
