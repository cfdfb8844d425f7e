#!/usr/bin/env bash
# Run every benchmark in sequence and print the results (nothing is written into the repo).
#
#   bench/run_all.sh [--repeat N]     # ARGS go to every benchmark; default: each one's own
#   AIRPODS_BENCH_BASE=/tmp/perf-base bench/run_all.sh   # + BEFORE rows from that checkout
#
# Each benchmark prints PASS/MISS per goal of issue 15 (bench/README.md lists them).
# Each Podman benchmark creates its own isolated Podman sandbox (tests/sandbox.py), local
# llama-server image and tiny model, and removes them when done; the llama-server binary comes
# from the build cache (~/.cache/airpods), so a sandbox takes a few seconds. About 2-3 minutes
# in all on 2 cores. PYTHON overrides the interpreter (default: the repo's .venv).
# Exit status: non-zero if any benchmark failed (the others still run). A MISS is not a failure.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/.." && pwd)"
PY="${PYTHON:-$REPO_ROOT/.venv/bin/python}"
[[ -x "$PY" ]] || PY=python3

failed=()
start=$SECONDS
log="$(mktemp "${TMPDIR:-/tmp}/airpods-benchlog.XXXXXX")"  # for the summary only; removed
trap 'rm -f "$log"' EXIT
for name in bench_cli_startup bench_start_ready bench_start_running bench_status bench_readiness bench_listing bench_router bench_pull bench_hub_down bench_gateway bench_escalation bench_peers bench_replicas; do
  printf '\n######## %s\n' "$name"
  t0=$SECONDS
  if ! "$PY" "$HERE/$name.py" "$@" 2>&1 | tee -a "$log"; then
    failed+=("$name")
  fi
  printf '(%s took %ds)\n' "$name" "$((SECONDS - t0))"
done
printf '\n######## summary (all done in %ds)\n' "$((SECONDS - start))"
grep -E '^ +(PASS|MISS|NOISY) ' "$log" || echo "  (no goal verdicts printed)"
if ((${#failed[@]})); then
  printf 'FAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
