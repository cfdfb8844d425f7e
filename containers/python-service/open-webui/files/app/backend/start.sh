#!/usr/bin/env bash
# Open WebUI's start script, as the official image runs it (WORKDIR /app/backend,
# CMD ["bash", "start.sh"]): a secret key kept in the data dir when none is given, then uvicorn
# on $HOST:$PORT.
set -e
cd "$(dirname "$0")"
KEY_FILE="${WEBUI_SECRET_KEY_FILE:-${DATA_DIR:-/app/backend/data}/.webui_secret_key}"
if [ -z "${WEBUI_SECRET_KEY:-}" ] && [ -z "${WEBUI_JWT_SECRET_KEY:-}" ]; then
  if [ ! -s "$KEY_FILE" ]; then
    mkdir -p "$(dirname "$KEY_FILE")"
    (umask 077; head -c 24 /dev/urandom | base64 > "$KEY_FILE")
  fi
  WEBUI_SECRET_KEY="$(cat "$KEY_FILE")"
  export WEBUI_SECRET_KEY
fi
exec python3 -m uvicorn open_webui.main:app --host "${HOST:-0.0.0.0}" --port "${PORT:-8080}" \
  --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-*}" --workers "${UVICORN_WORKERS:-1}"
