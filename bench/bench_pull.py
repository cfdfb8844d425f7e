"""Pull throughput from a loopback Hugging Face mirror vs `curl` of the same file (goal: the
real `airpods models pull`, end to end, at least 0.8x curl's rate on the 315 MB file), and what
a resumed pull moves vs what was missing.

    python bench/bench_pull.py [--size-mb 300] [--repeat 5]
    AIRPODS_BENCH_BASE=/tmp/perf-base python bench/bench_pull.py   # + a BEFORE row

The mirror is tests/hf_server.py (zero-copy sendfile on the fast path, so the server is not the
bottleneck) serving a generated file: a tiny GGUF header, then random bytes (300 MiB = 315 MB).
Each run, taken in turns so noise hits all alike:

* curl:     `curl -s -o OUT URL` of the resolve URL (no checksum, no fsync);
* curl + sync: the same, then `sync OUT` (an fsync of that file): what curl would cost if it,
            too, waited for its bytes to reach the disk, as a pull does before its rename;
* airpods models pull: the command a user runs (`airpods --config CFG models pull REPO/FILE`,
            HF_ENDPOINT at the mirror), into a model "volume" that is a bind-mounted directory
            (so no Podman is involved), with the API keys saved as after a first `start` (so
            the resolved-config cache answers): interpreter, imports, config, the HEAD for
            size/sha256/commit, the GET into `<name>.partial`, sha256 over every byte, fsync,
            atomic rename, the usage record;
* airpods pull.pull: `airpods.models.pull.pull` alone in a fresh interpreter, which also prints
            its transfer time (from its GET to the verified, fsynced rename).

Printed: end-to-end rates (size / median wall time of the whole process) with the goal's
verdict, and the transfer throughput (curl's own time_total vs hub.pull's transfer time).
Then the resume: a pull is killed (SIGKILL) once half the file is on disk, and a rerun's bytes
on the wire (counted by the server) are compared with the bytes that were missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import _airpods_cmd, before, bench_base  # noqa: E402
from _timing import goal, interleaved, report  # noqa: E402

from tests.hf_server import FakeHub, write_gguf_blob  # noqa: E402

REPO, FILE = "bench/Big-GGUF", "big-Q8_0.gguf"
GOAL = 0.8  # end to end, `airpods models pull` vs curl
CURL = "curl -o (floor)"
CURL_SYNC = "curl -o, then sync OUT"
CLI = "airpods models pull"
HUB = "airpods hub.pull (library only)"
CONFIG = """
[services.llamacpp]
volumes = {{ models = {{ source = "{volume}", target = "/models", mode = "ro" }} }}
[services.open-webui]
enabled = false
"""
PULL = """
import sys, time
from pathlib import Path
from airpods.hub.client import Hub
from airpods.models.pull import pull
from airpods.models.transfer import NoProgress

class Clock(NoProgress):
    first = None
    def begin(self, name, total, done):
        self.first = self.first or time.perf_counter()

clock = Clock()
pull(sys.argv[2], Path(sys.argv[3]), hub=Hub(endpoint=sys.argv[1], token=""), progress=clock)
print(time.perf_counter() - clock.first)  # from the GET to the verified, fsynced rename
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    if shutil.which("curl") is None:
        print("curl is not installed: nothing to compare against", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="airpods-bench-pull-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Bytecode, as a pip install has (bench/_stack.py does the same): without it every run
    # compiles airpods' modules again (0.2-0.4 s here), a cost no user pays.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    try:
        source = write_gguf_blob(work / "source.gguf", args.size_mb << 20)
        size = source.stat().st_size
        with FakeHub() as hub:
            hub.add(REPO, FILE, source)
            url = f"{hub.url}/{REPO}/resolve/main/{FILE}"
            dest = work / "vol"
            dest.mkdir()
            out = work / "curl.out"

            transfer: dict[str, list[float]] = {"curl": [], "airpods": []}
            config = work / "config.toml"
            config.write_text(CONFIG.format(volume=dest))
            cli_env = {**env, "HF_ENDPOINT": hub.url, "HF_TOKEN": "", "HF_HOME": str(work / "hf"),
                       "XDG_CONFIG_HOME": str(work / "cfg"), "XDG_DATA_HOME": str(work / "data"),
                       "XDG_CACHE_HOME": str(work / "cache"), "AIRPODS_ACCELERATOR": "cpu"}
            cli_env.pop("PYTHONPATH")
            cmd = [*_airpods_cmd(), "--config", str(config), "models", "pull", f"{REPO}/{FILE}"]
            # As after a first `start` (and as bench_listing does): the generated API keys are
            # saved, so the command reuses the resolved-config cache instead of loading the
            # configuration (pydantic, jinja2: a few hundred ms) on every run.
            subprocess.run([*_airpods_cmd(), "--config", str(config), "config", "get",
                            "services.llamacpp.env.LLAMA_API_KEY"], env=cli_env, check=True,
                           capture_output=True)

            def curl() -> None:
                out.unlink(missing_ok=True)
                done = subprocess.run(["curl", "-s", "-f", "-o", str(out), "-w",
                                       "%{time_total}", url], check=True, capture_output=True,
                                      text=True)
                transfer["curl"].append(float(done.stdout))

            def curl_sync() -> None:
                out.unlink(missing_ok=True)
                subprocess.run(["curl", "-s", "-f", "-o", str(out), url], check=True,
                               capture_output=True)
                subprocess.run(["sync", str(out)], check=True)

            def library() -> None:
                (dest / FILE).unlink(missing_ok=True)
                done = subprocess.run([sys.executable, "-c", PULL, hub.url, f"{REPO}/{FILE}",
                                       str(dest)], env=env, check=True, capture_output=True,
                                      text=True)
                transfer["airpods"].append(float(done.stdout))

            def cli(run_env: dict[str, str]) -> None:
                (dest / FILE).unlink(missing_ok=True)
                subprocess.run(cmd, env=run_env, check=True, capture_output=True)

            runs = {CURL: curl, CURL_SYNC: curl_sync, CLI: lambda: cli(cli_env), HUB: library}
            base = bench_base()
            if base is not None:
                runs[before(CLI)] = lambda: cli({**cli_env, "PYTHONPATH": str(base)})
            samples = interleaved(runs, args.repeat)
            assert (dest / FILE).stat().st_size == size
            report(f"pull {size / 1e6:.0f} MB from a loopback mirror", list(samples.items()),
                   CURL, goal=f"models pull end to end >= {GOAL}x curl")
            import statistics

            rate = {k: size / statistics.median(v) / 1e6 for k, v in samples.items()}
            for name in runs:
                if name != CURL:
                    print(f"  end to end (process start to exit): {name} {rate[name]:.0f} MB/s "
                          f"= {rate[name] / rate[CURL]:.2f}x curl ({rate[CURL]:.0f} MB/s)")
            # The transfer alone: curl's own time_total (connect to last byte written) vs
            # hub.pull from its GET to the sha256-verified, fsynced rename.
            t_curl = size / statistics.median(transfer["curl"][1:]) / 1e6
            t_air = size / statistics.median(transfer["airpods"][1:]) / 1e6
            print(f"  transfer throughput: curl {t_curl:.0f} MB/s, airpods {t_air:.0f} MB/s "
                  f"= {t_air / t_curl:.2f}x curl (medians of {args.repeat})")
            ratio = rate[CLI] / rate[CURL]
            goal(f"{CLI} end to end >= {GOAL}x curl", ratio >= GOAL, f"{ratio:.2f}x")
            synced = rate[CLI] / rate[CURL_SYNC]
            sync_s = statistics.median(samples[CURL_SYNC]) - statistics.median(samples[CURL])
            print(f"  beside curl + sync (both wait for the disk): {synced:.2f}x; the sync "
                  f"adds {sync_s:+.2f} s to curl's median")
            print(f"  fixed cost of models pull (interpreter, imports, config, HEAD): about "
                  f"{statistics.median(samples[CLI]) - size / t_air / 1e6:.2f} s")
            resume(hub, dest, size, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def resume(hub: FakeHub, dest: Path, size: int, env: dict[str, str]) -> None:
    """Kill -9 a pull halfway, rerun it: bytes on the wire vs bytes missing."""
    (dest / FILE).unlink(missing_ok=True)
    half = size // 2
    hub.fault(FILE, stall_after=half)
    hub.release.clear()
    proc = subprocess.Popen([sys.executable, "-c", PULL, hub.url, f"{REPO}/{FILE}", str(dest)],
                            env=env)
    partial = dest / (FILE + ".partial")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not partial.exists() or partial.stat().st_size < half):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    hub.fault(FILE, stall_after=None)
    hub.release.set()
    kept = partial.stat().st_size
    before = len(hub.gets(FILE))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", PULL, hub.url, f"{REPO}/{FILE}", str(dest)], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    moved = sum(r.sent for r in hub.gets(FILE)[before:])
    missing = size - kept
    print(f"\n== resume after kill -9 at {kept / 1e6:.1f} of {size / 1e6:.1f} MB")
    print(f"  bytes missing {missing}, bytes moved by the rerun {moved} "
          f"(x{moved / missing:.3f}), rerun {wall:.2f} s including hashing the kept part")
    print(f"  {'PASS' if moved == missing else 'MISS'}  the rerun moves only the missing bytes")


if __name__ == "__main__":
    raise SystemExit(main())
