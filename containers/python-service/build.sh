#!/usr/bin/env bash
# Build the local image of a Python service airpods runs (LiteLLM's proxy, Open WebUI) with no
# container registry:
#
#   mmdebstrap --variant=minbase (python3, ca-certificates, from this machine's apt sources)
#     -> podman import                        ->  localhost/airpods/pybase:bookworm-r<rev>
#   pip install --target site <the app's pins>  (on the host; Python 3.11 like Debian 12's)
#     -> podman build (a Containerfile written from <APP>/app.conf)  ->  the app's image
#     -> podman save into the cache; later builds only `podman load` it (seconds)
#
# Usage: containers/python-service/build.sh APP [--force] [--cache-only]
#   APP           litellm | open-webui (a directory beside this script: app.conf with the pins
#                 and the image's settings, files/ copied to / in the image)
#   --force       rebuild the app image (and re-save it) even if the cache has one.
#   --cache-only  make sure the cache holds the image archive (build it if not) and stop:
#                 nothing is loaded when it does (scripts/test.sh warms the cache this way).
#
# Images: localhost/airpods/litellm:1.106.12, localhost/airpods/open-webui:0.12.4 (app.conf).
#
# Environment:
#   PODMAN            the podman command, word-split (default "podman"); as in
#                     containers/llama-server/build.sh: when set, CONTAINER_HOST is ignored.
#   AIRPODS_CACHE_DIR cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/airpods). Here:
#                     python-service/base-<key>/root.tar (the Debian root) and
#                     python-service/<APP>-<key>/image.tar (the saved image), where key hashes
#                     the app's app.conf and files, the base recipe and the arch.
#   PYTHON            python that runs pip (default: the repo's .venv, else python3); it must
#                     be 3.11, the minor version of Debian 12's python3 in the image.
#   SKIP_APT=1        do not apt-get install mmdebstrap when it is missing.
#
# Progress goes to stderr; the last line of stdout is the image name. Non-zero on failure.
set -euo pipefail

# Bump when the base recipe below changes.
BASE_REV="1"
BASE_PACKAGES="python3,ca-certificates"
SUITE="bookworm"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
T0=$SECONDS
log() { printf '[python-service %3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { printf '[python-service] error: %s\n' "$*" >&2; exit 1; }

APP="" FORCE=0 CACHE_ONLY=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) FORCE=1; shift ;;
    --cache-only) CACHE_ONLY=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown argument: $1 (see --help)" ;;
    *) [[ -z "$APP" ]] || die "one APP only (got $APP and $1)"; APP="$1"; shift ;;
  esac
done
[[ -n "$APP" ]] || die "usage: build.sh APP (one of: $(cd "$HERE" && ls -d */ | tr -d / | xargs))"
APP_DIR="$HERE/$APP"
[[ -f "$APP_DIR/app.conf" ]] \
  || die "no such app: $APP (one of: $(cd "$HERE" && ls -d */ | tr -d / | xargs))"

VERSION="" IMAGE="" PIP_REQUIREMENTS=() SKIP_REQUIREMENTS="" CHECK="" DIRS=() IMAGE_ENV=()
WORKDIR=/ PORT="" ENTRYPOINT="" CMD=""
# shellcheck source=/dev/null
source "$APP_DIR/app.conf"
[[ -n "$IMAGE" && ${#PIP_REQUIREMENTS[@]} -gt 0 ]] || die "$APP_DIR/app.conf: IMAGE and PIP_REQUIREMENTS are required"

read -r -a PODMAN_CMD <<< "${PODMAN:-podman}"
podman_() {
  if [[ -n "${PODMAN:-}" ]]; then env -u CONTAINER_HOST "${PODMAN_CMD[@]}" "$@"
  else "${PODMAN_CMD[@]}" "$@"; fi
}
command -v "${PODMAN_CMD[0]}" >/dev/null || die "podman not found (PODMAN=${PODMAN:-podman})"

ARCH="$(uname -m)"
SOURCES=/etc/apt/sources.list.d/debian.sources
BASE_KEY="$(printf '%s\n' "$BASE_REV" "$BASE_PACKAGES" "$SUITE" "$ARCH" | sha256sum | cut -c1-12)"
BASE_IMAGE="localhost/airpods/pybase:${SUITE}-${BASE_KEY}"
APP_KEY="$( { echo "$BASE_KEY"; (cd "$APP_DIR" && find . -type f | LC_ALL=C sort | xargs sha256sum); } \
  | sha256sum | cut -c1-12)"
CACHE_ROOT="${AIRPODS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/airpods}/python-service"
BASE_DIR="$CACHE_ROOT/base-$BASE_KEY"
APP_CACHE="$CACHE_ROOT/$APP-$APP_KEY"
ARCHIVE="$APP_CACHE/image.tar"
LABEL="airpods.python-service.key"
mkdir -p "$BASE_DIR" "$APP_CACHE"

image_key() {  # the build key label of $1 ("" when the image is missing)
  podman_ image inspect --format "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true
}

# --- fast path: the image is already in this storage -----------------------------------------
if [[ $FORCE -eq 0 && $CACHE_ONLY -eq 0 && "$(image_key "$IMAGE")" == "$APP-$APP_KEY" ]]; then
  log "image $IMAGE is up to date (key $APP-$APP_KEY)"
  echo "$IMAGE"; exit 0
fi

# Serialise writers of this app's cache (parallel test sessions) on a lock per key.
exec 9>"$APP_CACHE.lock"
if ! flock -n 9; then log "another build holds $APP_CACHE.lock; waiting"; flock 9; fi

# --- cached image archive: load it ----------------------------------------------------------
if [[ $FORCE -eq 0 && -f "$ARCHIVE" && $CACHE_ONLY -eq 1 ]]; then
  log "cached: $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
  echo "$IMAGE"; exit 0
fi
if [[ $FORCE -eq 0 && -f "$ARCHIVE" ]]; then
  log "loading $IMAGE from $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
  podman_ load -q -i "$ARCHIVE" >/dev/null
  [[ "$(image_key "$IMAGE")" == "$APP-$APP_KEY" ]] || die "$ARCHIVE did not give $IMAGE with key $APP-$APP_KEY: remove it and run again"
  log "loaded $IMAGE in $((SECONDS - T0))s"
  echo "$IMAGE"; exit 0
fi

# --- the base: a minimal Debian root, made once ---------------------------------------------
base_root() {
  local tar="$BASE_DIR/root.tar"
  exec 8>"$BASE_DIR.lock"
  flock 8
  if [[ ! -f "$tar" ]]; then
    if ! command -v mmdebstrap >/dev/null; then
      [[ "${SKIP_APT:-0}" != 1 ]] || die "mmdebstrap not found (apt-get install mmdebstrap)"
      local sudo=()
      [[ $(id -u) -eq 0 ]] || sudo=(sudo)
      log "installing mmdebstrap"
      DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends mmdebstrap >&2 \
        || die "apt-get install mmdebstrap failed"
    fi
    [[ -f "$SOURCES" ]] || die "$SOURCES not found: mmdebstrap reads this machine's apt sources from it"
    log "mmdebstrap --variant=minbase --include=$BASE_PACKAGES $SUITE (about 25 s)"
    # "-" as the mirror reads the apt sources from stdin: the machine's own, no mirror named.
    mmdebstrap --quiet --format=tar --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$tar.part" - \
      < "$SOURCES" >&2 || { rm -f "$tar.part"; die "mmdebstrap failed"; }
    mv "$tar.part" "$tar"
  fi
  flock -u 8
  echo "$tar"
}

if [[ -z "$(podman_ image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)" ]]; then
  root_tar="$(base_root)"
  log "importing $BASE_IMAGE"
  podman_ import --change 'CMD ["/bin/bash"]' --message "airpods minimal Debian $SUITE + python3" \
    "$root_tar" "$BASE_IMAGE" >/dev/null
fi

# --- the application: pip --target on the host, then podman build ---------------------------
pick_python() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"
  elif [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then echo "$REPO_ROOT/.venv/bin/python"
  else echo python3; fi
}
PY="$(pick_python)"
[[ "$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" == 3.11 ]] \
  || die "$PY is not Python 3.11 (the image's is 3.11): set PYTHON to a python3.11 with pip"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/airpods-pyservice.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
SITE="$WORK/site"
PIP=("$PY" -m pip install --no-input --disable-pip-version-check --progress-bar off --target "$SITE")
log "pip install --target: ${PIP_REQUIREMENTS[*]}"
if [[ -n "$SKIP_REQUIREMENTS" ]]; then
  # The wheel alone, then what its metadata pins minus SKIP_REQUIREMENTS.
  "${PIP[@]}" --no-deps "${PIP_REQUIREMENTS[@]}" >"$WORK/pip.log" 2>&1 || { tail -30 "$WORK/pip.log" >&2; die "pip failed"; }
  PYTHONPATH="$SITE" "$PY" - "$SKIP_REQUIREMENTS" "${PIP_REQUIREMENTS[0]%%[=<>\[]*}" > "$WORK/reqs.txt" <<'PYEOF'
import re, sys
from importlib.metadata import requires
skip = set(sys.argv[1].split(","))
for req in requires(sys.argv[2]) or []:
    if ";" in req:  # extras only
        continue
    if re.split(r"[\[=<>!~ ]", req, maxsplit=1)[0].lower().replace("_", "-") not in skip:
        print(req)
PYEOF
  "${PIP[@]}" -r "$WORK/reqs.txt" >>"$WORK/pip.log" 2>&1 || { tail -30 "$WORK/pip.log" >&2; die "pip failed"; }
else
  "${PIP[@]}" "${PIP_REQUIREMENTS[@]}" >"$WORK/pip.log" 2>&1 || { tail -30 "$WORK/pip.log" >&2; die "pip failed"; }
fi
# Console scripts carry the host python's path: point them at the image's.
if [[ -d "$SITE/bin" ]]; then
  grep -rlI '^#!.*python' "$SITE/bin" | xargs -r sed -i '1s|^#!.*python[0-9.]*.*$|#!/usr/bin/python3|'
fi
find "$SITE" -name __pycache__ -type d -prune -exec rm -rf {} +
log "site: $(du -sh "$SITE" | cut -f1)"

{
  echo "FROM $BASE_IMAGE"
  echo "COPY site /opt/site"
  echo "COPY files/ /"
  echo "ENV PYTHONPATH=/opt/site PYTHONUNBUFFERED=1 PATH=/opt/site/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  for kv in "${IMAGE_ENV[@]}"; do echo "ENV $kv"; done
  echo "WORKDIR $WORKDIR"
  [[ -z "$PORT" ]] || echo "EXPOSE $PORT"
  [[ -z "$ENTRYPOINT" ]] || echo "ENTRYPOINT $ENTRYPOINT"
  [[ -z "$CMD" ]] || echo "CMD $CMD"
} > "$WORK/Containerfile"
mkdir -p "$WORK/files"
[[ -d "$APP_DIR/files" ]] && cp -a "$APP_DIR/files/." "$WORK/files/"
for d in "${DIRS[@]}"; do mkdir -p "$WORK/files$d"; done
log "podman build $IMAGE"
podman_ build -q --label "$LABEL=$APP-$APP_KEY" \
  --label "org.opencontainers.image.version=$VERSION" -t "$IMAGE" "$WORK" >/dev/null
if [[ -n "$CHECK" ]]; then
  podman_ run --rm --network none --entrypoint /bin/sh "$IMAGE" -c "$CHECK" >&2 \
    || die "the built $IMAGE failed its check: $CHECK"
fi
log "saving $IMAGE to $ARCHIVE"
podman_ save -q -o "$ARCHIVE.part" "$IMAGE"
mv "$ARCHIVE.part" "$ARCHIVE"
# Other keys of this app unused for a week are dead weight (hundreds of MB each).
find "$CACHE_ROOT" -maxdepth 1 -name "$APP-*" ! -name "$APP-$APP_KEY*" -mtime +7 -exec rm -rf {} +
log "built $IMAGE in $((SECONDS - T0))s ($(du -h "$ARCHIVE" | cut -f1) archive)"
echo "$IMAGE"
