#!/usr/bin/env bash
# The one test command (README, CI): unit + integration tests against real Podman.
#
#   bash scripts/test.sh [PYTEST ARGS...]     (arguments replace the default: tests)
#
# On a fresh Debian 12 machine (as root, or with sudo) it:
#   1. apt-get installs what is missing: podman + runc + netavark (+ friends), busybox-static,
#      the C++ toolchain and cmake (to compile llama-server), python3-venv;
#   2. creates .venv if missing and pip installs -e '.[test]' (again when pyproject changes);
#   3. compiles llama-server once (about 7-10 min on 2 cores; cached in
#      ${AIRPODS_CACHE_DIR:-~/.cache/airpods}, so later runs take seconds);
#   4. ruff check airpods tests (and bench if present);
#   5. AIRPODS_REQUIRE_INTEGRATION=1 python -m pytest -q tests  (integration tests FAIL, not
#      skip, when Podman is unusable; pytest's exit status is this script's exit status, so
#      "no tests collected" (5) is a failure too).
#
# Environment: SKIP_APT=1 skips step 1; AIRPODS_LLAMA_PREBUILT=/path/llama-server seeds the
# binary cache from an existing build of the same source and flags.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$PWD"
START=$SECONDS
PHASES=()
PHASE="" PHASE_T0=$SECONDS

phase() {  # phase NAME: ends the running phase (recording its time) and starts NAME
  local now=$SECONDS
  if [[ -n "$PHASE" ]]; then PHASES+=("$(printf '%-28s %5ds' "$PHASE" "$((now - PHASE_T0))")"); fi
  PHASE="$1" PHASE_T0=$now
  [[ -n "$PHASE" ]] && printf '\n==> [%4ds] %s\n' "$((now - START))" "$PHASE"
  return 0
}

summary() {
  local rc=$?
  phase ""
  echo
  echo "==> timings"
  local line
  for line in "${PHASES[@]}"; do echo "    $line"; done
  printf '    %-28s %5ds\n' "total" "$((SECONDS - START))"
  if [[ $rc -eq 0 ]]; then echo "==> OK"; else echo "==> FAILED (exit $rc)"; fi
  exit "$rc"
}
trap summary EXIT

# --- 1. system packages ----------------------------------------------------------------
phase "system packages"
APT_PACKAGES=(
  podman runc netavark aardvark-dns catatonit iptables uidmap slirp4netns fuse-overlayfs
  busybox-static
  cmake g++ make binutils
  python3 python3-venv python3-pip ca-certificates
)
if [[ "${SKIP_APT:-0}" == 1 ]]; then
  echo "SKIP_APT=1: not checking system packages"
elif command -v dpkg-query >/dev/null && command -v apt-get >/dev/null; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == installed ]] || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    echo "all present: ${APT_PACKAGES[*]}"
  else
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
      command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
      SUDO=(sudo)
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  echo "no apt-get here: assuming podman, runc, busybox (static), cmake and g++ are installed"
fi
for cmd in podman python3; do
  command -v "$cmd" >/dev/null || { echo "$cmd not found" >&2; exit 1; }
done
podman --version

# --- 2. python environment -------------------------------------------------------------
phase "python venv + pip install"
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
PY="$REPO/.venv/bin/python"
STAMP=".venv/.airpods-test-deps"
want_stamp="$(sha256sum < pyproject.toml | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$want_stamp" ]] || ! "$PY" -c 'import airpods' 2>/dev/null; then
  "$PY" -m pip install -q -e '.[test]'
  echo "$want_stamp" > "$STAMP"
else
  echo ".venv is up to date with pyproject.toml"
fi
"$PY" --version

# --- 3. llama-server binary (compiled once, cached outside the repo) -------------------
phase "llama-server binary"
build_args=(--binary-only)
if [[ -n "${AIRPODS_LLAMA_PREBUILT:-}" ]]; then build_args+=(--prebuilt "$AIRPODS_LLAMA_PREBUILT"); fi
PYTHON="$PY" bash containers/llama-server/build.sh "${build_args[@]}"

# --- 4. lint ----------------------------------------------------------------------------
phase "ruff"
lint_paths=(airpods tests)
[[ -d bench ]] && lint_paths+=(bench)
"$REPO/.venv/bin/ruff" check "${lint_paths[@]}"

# --- 5. tests ---------------------------------------------------------------------------
phase "pytest (unit + integration)"
export AIRPODS_REQUIRE_INTEGRATION=1
set +e
if [[ $# -eq 0 ]]; then set -- tests; fi  # arguments replace the default "tests"
"$PY" -m pytest -q "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then echo "pytest collected no tests: that is a failure" >&2; fi
exit "$rc"
