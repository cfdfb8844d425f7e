#!/usr/bin/env bash
# Build the local llama-server image (CPU) with no container registry:
#
#   llama.cpp source (from the PyPI sdist of llama-cpp-python, sha256-verified)
#     -> cmake, target llama-server only (about 7 minutes on 2 cores; cached)
#     -> minimal rootfs: /app/llama-server + the libraries ldd lists + busybox-static
#     -> podman import  ->  localhost/airpods/llama-server:<version>-cpu  (+ :local)
#
# Usage: containers/llama-server/build.sh [--prebuilt PATH] [--sdist PATH] [--binary-only]
#                                         [--force] [--rebuild]
#   --prebuilt PATH  use this llama-server binary (built from the same source with the same
#                    cmake flags) instead of compiling; it is stripped into the cache.
#   --sdist PATH     use this llama_cpp_python-<version>.tar.gz instead of downloading it.
#   --binary-only    compile (or reuse) the cached binary and stop: no podman needed. Prints
#                    the binary's path as the last line of stdout.
#   --force          re-import the image even if one with the same build key exists.
#   --rebuild        recompile even if a cached binary exists.
#
# Environment:
#   PODMAN           the podman command, word-split (default: "podman"). To import into an
#                    isolated storage: PODMAN="podman --root R --runroot RR --tmpdir T"
#                    (always pass --tmpdir with --root: see README.md). When PODMAN is set,
#                    CONTAINER_HOST is ignored. Without PODMAN, everything the caller sets is
#                    honoured as usual: CONTAINER_HOST (podman 4 then runs in remote mode and
#                    imports into the storage of the service on that socket), CONTAINERS_CONF.
#   AIRPODS_CACHE_DIR  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/airpods). The
#                    binary lives in $AIRPODS_CACHE_DIR/llama-server/<key>/llama-server, where
#                    key = source version + hash of the cmake flags and architecture.
#   PYTHON           python used for "pip download" (default: the repo's .venv, else python3).
#   JOBS             parallel compile jobs (default: nproc).
#
# Progress goes to stderr; the last line of stdout is the image name (or, with
# --binary-only, the binary path). Exit status is non-zero on any failure.
set -euo pipefail

LCPP_PY_VERSION="0.3.36"
LCPP_PY_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
# Bump when the rootfs/image layout below changes (forces a re-import, not a recompile).
IMAGE_REV="1"
IMAGE_REPO="localhost/airpods/llama-server"
IMAGE="${IMAGE_REPO}:${LCPP_PY_VERSION}-cpu"
IMAGE_LOCAL="${IMAGE_REPO}:local"
CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release
  -DLLAMA_BUILD_SERVER=ON
  -DBUILD_SHARED_LIBS=OFF
  -DGGML_NATIVE=OFF
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_CURL=OFF
  -DLLAMA_OPENSSL=OFF
  -DLLAMA_BUILD_UI=OFF
)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
T0=$SECONDS

log() { printf '[build.sh %3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { printf '[build.sh] error: %s\n' "$*" >&2; exit 1; }

PREBUILT="" SDIST="" BINARY_ONLY=0 FORCE=0 REBUILD=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prebuilt) [[ $# -ge 2 ]] || die "--prebuilt needs a path"; PREBUILT="$2"; shift 2 ;;
    --prebuilt=*) PREBUILT="${1#*=}"; shift ;;
    --sdist) [[ $# -ge 2 ]] || die "--sdist needs a path"; SDIST="$2"; shift 2 ;;
    --sdist=*) SDIST="${1#*=}"; shift ;;
    --binary-only) BINARY_ONLY=1; shift ;;
    --force) FORCE=1; shift ;;
    --rebuild) REBUILD=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

read -r -a PODMAN_CMD <<< "${PODMAN:-podman}"
ARCH="$(uname -m)"
FLAGS_HASH="$(printf '%s\n' "${CMAKE_FLAGS[@]}" "$ARCH" | sha256sum | cut -c1-12)"
KEY="llama-cpp-python-${LCPP_PY_VERSION}-${ARCH}-${FLAGS_HASH}"
CACHE_ROOT="${AIRPODS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/airpods}/llama-server"
KEY_DIR="$CACHE_ROOT/$KEY"
BIN="$KEY_DIR/llama-server"
mkdir -p "$KEY_DIR" "$CACHE_ROOT/src"

podman_() {
  # An explicit PODMAN is authoritative: drop CONTAINER_HOST, which would switch the podman
  # CLI to remote mode (and remote mode rejects --root/--runroot).
  if [[ -n "${PODMAN:-}" ]]; then
    env -u CONTAINER_HOST "${PODMAN_CMD[@]}" "$@"
  else
    "${PODMAN_CMD[@]}" "$@"
  fi
}

image_label() {  # image label -> stdout ("" when the image or label is missing)
  podman_ image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

# --- fast path: the image is already there --------------------------------------------
if [[ $BINARY_ONLY -eq 0 && $FORCE -eq 0 && $REBUILD -eq 0 && -z "$PREBUILT" ]]; then
  command -v "${PODMAN_CMD[0]}" >/dev/null || die "podman not found (PODMAN=${PODMAN:-podman})"
  have_key="$(image_label "$IMAGE" airpods.llama-server.key)"
  if [[ "$have_key" == "$KEY-r$IMAGE_REV" ]]; then
    have_sha="$(image_label "$IMAGE" airpods.llama-server.binary-sha256)"
    if [[ ! -f "$BIN" ]] || [[ "$have_sha" == "$(sha256sum "$BIN" | cut -d' ' -f1)" ]]; then
      if [[ -z "$(image_label "$IMAGE_LOCAL" airpods.llama-server.key)" ]]; then
        podman_ tag "$IMAGE" "$IMAGE_LOCAL"
      fi
      log "image $IMAGE is up to date (key $KEY-r$IMAGE_REV)"
      echo "$IMAGE"
      exit 0
    fi
  fi
fi

# --- the binary -----------------------------------------------------------------------
pick_python() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"
  elif [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then echo "$REPO_ROOT/.venv/bin/python"
  else echo python3
  fi
}

fetch_sdist() {  # -> path of the verified sdist on stdout
  local want="$CACHE_ROOT/src/llama_cpp_python-${LCPP_PY_VERSION}.tar.gz"
  if [[ -n "$SDIST" ]]; then
    [[ -f "$SDIST" ]] || die "--sdist $SDIST: no such file"
    want="$SDIST"
  elif [[ ! -f "$want" ]]; then
    local py dl args=()
    py="$(pick_python)"
    "$py" -m pip --version >/dev/null 2>&1 || die "$py has no pip: set PYTHON to a python with pip"
    # Without build isolation pip only needs scikit-build-core (llama-cpp-python's backend) to
    # read the sdist's metadata; otherwise it installs the backend into a temporary env first.
    if "$py" -c 'import scikit_build_core' >/dev/null 2>&1; then args+=(--no-build-isolation); fi
    dl="$(mktemp -d "$CACHE_ROOT/src/.dl.XXXXXX")"
    log "step 1/4: downloading llama-cpp-python==${LCPP_PY_VERSION} sdist with $py -m pip download"
    if ! "$py" -m pip download --no-deps --no-binary :all: "${args[@]}" --progress-bar off \
        -d "$dl" "llama-cpp-python==${LCPP_PY_VERSION}" >"$dl.log" 2>&1; then
      cat "$dl.log" >&2; rm -rf "$dl" "$dl.log"; die "pip download failed"
    fi
    [[ -f "$dl/llama_cpp_python-${LCPP_PY_VERSION}.tar.gz" ]] || die "pip saved no sdist in $dl"
    mv "$dl/llama_cpp_python-${LCPP_PY_VERSION}.tar.gz" "$want.part"
    rm -rf "$dl" "$dl.log"
    # Verify before the final name exists: a cached sdist is always a verified one.
    if [[ "$(sha256sum "$want.part" | cut -d' ' -f1)" != "$LCPP_PY_SHA256" ]]; then
      rm -f "$want.part"; die "sha256 mismatch for the downloaded sdist (want $LCPP_PY_SHA256)"
    fi
    mv "$want.part" "$want"
  fi
  [[ "$(sha256sum "$want" | cut -d' ' -f1)" == "$LCPP_PY_SHA256" ]] \
    || die "sha256 mismatch for $want (want $LCPP_PY_SHA256)"
  log "step 1/4: sdist ok: $want (sha256 verified)"
  echo "$want"
}

compile() {
  for tool in cmake c++ make strip tar; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install cmake g++ make binutils)"
  done
  local sdist src build blog jobs
  sdist="$(fetch_sdist)"
  src="$KEY_DIR/src" build="$KEY_DIR/build" blog="$KEY_DIR/build.log"
  jobs="${JOBS:-$(nproc)}"
  if [[ ! -f "$src/.extracted" ]]; then
    log "step 2/4: extracting llama.cpp source (vendor/llama.cpp) into $src"
    rm -rf "$src"; mkdir -p "$src"
    tar -xzf "$sdist" -C "$src" --strip-components=3 \
      "llama_cpp_python-${LCPP_PY_VERSION}/vendor/llama.cpp"
    touch "$src/.extracted"
  fi
  log "step 3/4: cmake configure (${CMAKE_FLAGS[*]})"
  if ! cmake -S "$src" -B "$build" "${CMAKE_FLAGS[@]}" >"$blog" 2>&1; then
    tail -40 "$blog" >&2; die "cmake configure failed (full log: $blog)"
  fi
  log "step 4/4: compiling target llama-server with -j$jobs (about 7 min on 2 cores); log: $blog"
  # Show cmake's [NN%] progress lines; everything goes to the log.
  set +e
  cmake --build "$build" --target llama-server -j "$jobs" 2>&1 | tee -a "$blog" \
    | grep --line-buffered -E '^\[ *[0-9]+%\]' | sed -u 's/^/    /' >&2
  local rc=${PIPESTATUS[0]}
  set -e
  if [[ $rc -ne 0 ]]; then
    grep -E -B2 -A8 'error|Error' "$blog" | tail -60 >&2
    die "compile failed (rc=$rc; full log: $blog; the build dir is kept, so a rerun resumes)"
  fi
  strip -o "$BIN.part" "$build/bin/llama-server"
  mv "$BIN.part" "$BIN"
  rm -rf "$build" "$src"
  log "compiled and cached $BIN ($(du -h "$BIN" | cut -f1))"
}

obtain_binary() {
  if [[ -n "$PREBUILT" ]]; then
    [[ -x "$PREBUILT" ]] || die "--prebuilt $PREBUILT is not an executable file"
    log "using prebuilt binary $PREBUILT (must come from llama-cpp-python $LCPP_PY_VERSION with: ${CMAKE_FLAGS[*]})"
    strip -o "$BIN.part" "$PREBUILT" 2>/dev/null || cp "$PREBUILT" "$BIN.part"
    chmod 755 "$BIN.part"
    mv "$BIN.part" "$BIN"
  elif [[ -x "$BIN" && $REBUILD -eq 0 ]]; then
    log "steps 1-4: reusing cached binary $BIN"
  else
    compile
  fi
}

# Serialise cache writers (parallel test sessions, CI retries) on a lock per key.
exec 9>"$KEY_DIR.lock"
if ! flock -n 9; then
  log "another build.sh holds $KEY_DIR.lock; waiting for it"
  flock 9
fi
obtain_binary
flock -u 9
"$BIN" --version >/dev/null 2>&1 || die "$BIN does not run on this host"

if [[ $BINARY_ONLY -eq 1 ]]; then
  echo "$BIN"
  exit 0
fi

# --- the rootfs -----------------------------------------------------------------------
command -v "${PODMAN_CMD[0]}" >/dev/null || die "podman not found (PODMAN=${PODMAN:-podman})"
# busybox-static gives the image a shell and tools (sh, wget for health checks, ls, cat...).
BUSYBOX=""
for cand in /bin/busybox /usr/bin/busybox "$(command -v busybox || true)"; do
  if [[ -n "$cand" && -x "$cand" ]] && ! ldd "$cand" 2>/dev/null | grep -q '=>'; then
    BUSYBOX="$cand"; break
  fi
done
[[ -n "$BUSYBOX" ]] || die "no static busybox found: apt-get install busybox-static"

BIN_SHA="$(sha256sum "$BIN" | cut -d' ' -f1)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/airpods-llama-rootfs.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"
log "assembling rootfs in $ROOTFS"
mkdir -p "$ROOTFS"/{app,bin,etc,tmp,models,root,proc,sys,dev}
chmod 755 "$ROOTFS"   # the top dir must be 755 or non-root processes cannot resolve paths
chmod 1777 "$ROOTFS/tmp"
chmod 700 "$ROOTFS/root"
install -m 755 "$BIN" "$ROOTFS/app/llama-server"

# The shared libraries the dynamic loader needs, at the same paths as on the host.
while read -r lib; do
  [[ -n "$lib" ]] || continue
  mkdir -p "$ROOTFS$(dirname "$lib")"
  cp -L "$lib" "$ROOTFS$lib"
done < <(ldd "$BIN" | awk '/=> \//{print $3} /^[[:space:]]*\/[^ ]+ \(/{print $1}' | sort -u)

install -m 755 "$BUSYBOX" "$ROOTFS/bin/busybox"
while read -r applet; do
  [[ -n "$applet" && "$applet" != busybox ]] && ln -sf busybox "$ROOTFS/bin/$applet"
done < <("$BUSYBOX" --list)

cat > "$ROOTFS/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat > "$ROOTFS/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
: > "$ROOTFS/etc/hosts"
: > "$ROOTFS/etc/resolv.conf"

tar --numeric-owner --owner=0 --group=0 -C "$ROOTFS" -cf "$WORK/rootfs.tar" .
log "rootfs: $(du -sh "$ROOTFS" | cut -f1) ($(find "$ROOTFS" -type f | wc -l) files)"

# --- the image ------------------------------------------------------------------------
old_id="$(podman_ image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
log "importing $IMAGE with ${PODMAN_CMD[*]}"
podman_ import \
  --change 'ENTRYPOINT ["/app/llama-server"]' \
  --change 'ENV LLAMA_ARG_HOST=0.0.0.0' \
  --change 'ENV PATH=/app:/bin' \
  --change 'WORKDIR /app' \
  --change 'EXPOSE 8080' \
  --change "LABEL org.opencontainers.image.title=airpods-llama-server" \
  --change "LABEL org.opencontainers.image.description=llama.cpp llama-server (CPU) from llama-cpp-python ${LCPP_PY_VERSION}" \
  --change "LABEL org.opencontainers.image.version=${LCPP_PY_VERSION}-cpu" \
  --change "LABEL airpods.llama-server.key=${KEY}-r${IMAGE_REV}" \
  --change "LABEL airpods.llama-server.binary-sha256=${BIN_SHA}" \
  --message "airpods llama-server ${LCPP_PY_VERSION}-cpu" \
  "$WORK/rootfs.tar" "$IMAGE" >/dev/null
podman_ tag "$IMAGE" "$IMAGE_LOCAL"
new_id="$(podman_ image inspect --format '{{.Id}}' "$IMAGE")"
if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
  podman_ rmi "$old_id" >/dev/null 2>&1 || true  # dangling now; still in use -> keep it
fi
size="$(podman_ image inspect --format '{{.Size}}' "$IMAGE" 2>/dev/null || echo '?')"
log "built $IMAGE (also $IMAGE_LOCAL), id ${new_id:0:12}, $size bytes, in $((SECONDS - T0))s"
echo "$IMAGE"
