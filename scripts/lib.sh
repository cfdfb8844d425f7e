# Shared by scripts/test.sh and scripts/demo.sh: timed phases, system packages, the venv.
# Source it from the repo root with `set -euo pipefail` in effect.

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

APT_PACKAGES=(
  podman runc netavark aardvark-dns catatonit iptables uidmap slirp4netns fuse-overlayfs
  busybox-static mmdebstrap
  cmake g++ make binutils
  python3 python3-venv python3-pip ca-certificates
  chromium chromium-driver  # the heavy tier's real browser (selenium drives it; no download)
)

install_system_packages() {
  if [[ "${SKIP_APT:-0}" == 1 ]]; then
    echo "SKIP_APT=1: not checking system packages"
  elif command -v dpkg-query >/dev/null && command -v apt-get >/dev/null; then
    local missing=() pkg status
    for pkg in "${APT_PACKAGES[@]}"; do
      status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
      [[ "$status" == installed ]] || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
      echo "all present: ${APT_PACKAGES[*]}"
    else
      local sudo=()
      if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; return 1; }
        sudo=(sudo)
      fi
      echo "installing: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      "${sudo[@]}" apt-get update -qq
      "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
  else
    echo "no apt-get here: assuming podman, runc, busybox (static), cmake and g++ are installed"
  fi
  local cmd
  for cmd in podman python3; do
    command -v "$cmd" >/dev/null || { echo "$cmd not found" >&2; return 1; }
  done
  podman --version
}

ensure_venv() {  # creates .venv and installs airpods with its test extras; sets PY
  if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
  fi
  PY="$REPO/.venv/bin/python"
  local stamp=".venv/.airpods-test-deps" want
  want="$(sha256sum < pyproject.toml | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]] || ! "$PY" -c 'import airpods' 2>/dev/null; then
    "$PY" -m pip install -q -e '.[test]'
    echo "$want" > "$stamp"
  else
    echo ".venv is up to date with pyproject.toml"
  fi
  "$PY" --version
}

use_host_containers_conf() {
  # Hosts without systemd as PID 1 (containers, CI machines) need runc, cgroupfs, file events
  # and ulimits within RLIMIT_NOFILE: containers/containers.conf says so. Others keep theirs.
  if [[ -z "${CONTAINERS_CONF:-}" && ! -d /run/systemd/system ]]; then
    export CONTAINERS_CONF="$REPO/containers/containers.conf"
    echo "no systemd here: CONTAINERS_CONF=$CONTAINERS_CONF"
  fi
}

build_python_images() {  # build_python_images PYTHON: the LiteLLM and Open WebUI image archives
  # Built in a throwaway Podman storage; only the archives in the cache are kept (the tests'
  # isolated Podmans `podman load` them). A warm cache makes this a no-op.
  local tmp app rc=0
  tmp="$(mktemp -d /tmp/airpods-images.XXXXXX)"
  for app in litellm open-webui; do
    PYTHON="$1" CONTAINERS_CONF="${CONTAINERS_CONF:-$REPO/containers/containers.conf}" PODMAN="podman --root $tmp/root --runroot $tmp/run --tmpdir $tmp/tmp" \
      bash containers/python-service/build.sh --cache-only "$app" >/dev/null || { rc=$?; break; }
  done
  podman --root "$tmp/root" --runroot "$tmp/run" --tmpdir "$tmp/tmp" system reset -f >/dev/null 2>&1 || true
  rm -rf "$tmp"
  return "$rc"
}
