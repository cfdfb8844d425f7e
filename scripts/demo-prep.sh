#!/usr/bin/env bash
# Prepare a registry-free demo of airpods on this machine:
#   1. build (or reuse) the local llama-server image  localhost/airpods/llama-server:local
#   2. put a tiny random-weight model (tiny.gguf, ~240 KB, its text is noise) into the
#      models volume that airpods mounts (default: airpods_llamacpp_models)
#   3. print the settings that make airpods use both
#
#   bash scripts/demo-prep.sh [VOLUME]
#
# It uses the Podman the environment selects (default storage, or CONTAINER_HOST / PODMAN as
# for containers/llama-server/build.sh). CONTAINERS_CONF defaults to containers/containers.conf
# (runc, ulimits within RLIMIT_NOFILE 20000, cgroupfs: what Debian 12 hosts without systemd
# need); export CONTAINERS_CONF yourself to use another.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$PWD"
VOLUME="${1:-airpods_llamacpp_models}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$REPO/containers/containers.conf}"
read -r -a PODMAN_CMD <<< "${PODMAN:-podman}"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY="$REPO/.venv/bin/python"; else PY=python3; fi
fi

echo "==> CONTAINERS_CONF=$CONTAINERS_CONF"
echo "==> image"
IMAGE="$(bash containers/llama-server/build.sh | tail -n 1)"

echo "==> model volume $VOLUME"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/models"
"$PY" -m airpods.models.tiny "$WORK/models/tiny.gguf"
tar --numeric-owner --owner=0 --group=0 -C "$WORK/models" -cf "$WORK/models.tar" tiny.gguf
"${PODMAN_CMD[@]}" volume exists "$VOLUME" || "${PODMAN_CMD[@]}" volume create "$VOLUME" >/dev/null
"${PODMAN_CMD[@]}" volume import "$VOLUME" "$WORK/models.tar"
# Prove it: list the volume through the image's own busybox.
"${PODMAN_CMD[@]}" run --rm --entrypoint /bin/ls -v "$VOLUME:/models:ro" "$IMAGE" -l /models

cat <<EOF

==> ready. Point airpods at the local image and the tiny model, e.g. in your user config:

  [services.llamacpp]
  image = "localhost/airpods/llama-server:local"
  images = { cpu = "localhost/airpods/llama-server:local" }
  default_model = "tiny.gguf"

(and keep CONTAINERS_CONF=$CONTAINERS_CONF exported for airpods' Podman).
EOF
