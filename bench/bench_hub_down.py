"""With no route to the hub, how fast does a pull fail? (issue 14, goal: <= 10 s, one line)

    python bench/bench_hub_down.py [--repeat 3]

Each case is a fresh interpreter running `airpods.models.pull.pull` (what `models pull` and the
first-use download run) against an endpoint nothing answers at: a closed loopback port, a name
that does not resolve (`.invalid`), and an address that is not routed here (TEST-NET-1). The
floor is the same interpreter importing airpods and exiting. Before the reachability probe the
closed port took ~74 s here (huggingface_hub's 5 retries inside airpods' 3).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved, median_ms, report, verdict  # noqa: E402

PULL = """
import sys, tempfile
from pathlib import Path
from airpods.errors import AirpodsError
from airpods.hub.client import Hub
from airpods.models.pull import pull
try:
    pull("o/r:Q4_K_M", Path(tempfile.mkdtemp()), hub=Hub(endpoint=sys.argv[1], token=""))
except AirpodsError as exc:
    line = exc.one_line()
    assert "\\n" not in line and sys.argv[1] in line, line
    sys.exit(0)
sys.exit("the pull did not fail")
"""
GOAL_MS = 10_000


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HOME": tempfile.mkdtemp()}
    for key in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"):
        env.pop(key, None)

    def case(endpoint: str):
        return lambda: subprocess.run([sys.executable, "-c", PULL, endpoint], env=env,
                                      check=True, timeout=120, capture_output=True)

    runs = {
        "floor: python -c 'import airpods.models.pull'": lambda: subprocess.run(
            [sys.executable, "-c", "import airpods.models.pull"], env=env, check=True),
        "closed port": case(f"http://127.0.0.1:{closed_port()}"),
        "DNS failure (.invalid)": case("https://no-such-hub.invalid"),
        "unrouted address (192.0.2.1)": case("http://192.0.2.1"),
    }
    samples = interleaved(runs, args.repeat)
    rows = list(samples.items())
    report("pull with no route to the hub", rows, rows[0][0], goal="each <= 10 s, one line")
    ok = all([verdict(f"{name} fails fast", median_ms(s), GOAL_MS)
              for name, s in rows[1:]])
    print("  all PASS" if ok else "  some MISS")
    return 0  # a MISS is reported, not a failure (bench/run_all.sh)


if __name__ == "__main__":
    sys.exit(main())
