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
#      ${AIRPODS_CACHE_DIR:-~/.cache/airpods}, so later runs take seconds), and builds the
#      LiteLLM and Open WebUI images once (containers/python-service/build.sh: a Debian root by
#      mmdebstrap, pip, podman build; cached there as image archives that the tests load);
#   4. ruff check airpods tests (and bench if present);
#   5. AIRPODS_REQUIRE_INTEGRATION=1 AIRPODS_HEAVY=1 python -m pytest -q tests
#      (unit, integration on real Podman, and the real Open WebUI tier; integration tests FAIL, not
#      skip, when Podman is unusable; pytest's exit status is this script's exit status, so
#      "no tests collected" (5) is a failure too).
#
# Environment: SKIP_APT=1 skips step 1; AIRPODS_LLAMA_PREBUILT=/path/llama-server seeds the
# binary cache from an existing build of the same source and flags.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
trap summary EXIT

phase "system packages"
install_system_packages

phase "python venv + pip install"
ensure_venv

# --- 3. llama-server binary (compiled once, cached outside the repo) -------------------
phase "llama-server binary"
build_args=(--binary-only)
if [[ -n "${AIRPODS_LLAMA_PREBUILT:-}" ]]; then build_args+=(--prebuilt "$AIRPODS_LLAMA_PREBUILT"); fi
PYTHON="$PY" bash containers/llama-server/build.sh "${build_args[@]}"

phase "python service images"
build_python_images "$PY"

# --- 4. lint ----------------------------------------------------------------------------
phase "ruff"
lint_paths=(airpods tests)
[[ -d bench ]] && lint_paths+=(bench)
"$REPO/.venv/bin/ruff" check "${lint_paths[@]}"

# --- 5. tests ---------------------------------------------------------------------------
phase "pytest (unit + integration)"
export AIRPODS_REQUIRE_INTEGRATION=1
# The heavy tier (Open WebUI's container from the locally built image, direct and through the
# gateway, and headless chromium signing in and chatting) fits CI's time. AIRPODS_HEAVY=0 leaves it out.
export AIRPODS_HEAVY="${AIRPODS_HEAVY:-1}"
set +e
if [[ $# -eq 0 ]]; then set -- tests; fi  # arguments replace the default "tests"
"$PY" -m pytest -q "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then echo "pytest collected no tests: that is a failure" >&2; fi
exit "$rc"
