"""The gateway's fixed names and paths, shared by gateway.py and gateway_config.py."""

from __future__ import annotations

from airpods.kinds.image_pins import LITELLM, LITELLM_VERSION  # noqa: F401 (re-exported)

# Pinned together (image_pins): the PyPI release tests run and the image `start` runs.
IMAGE = LITELLM.ref
PORT = 4000
MASTER_VARIABLE = "LITELLM_MASTER_KEY"
SECRETS_DIR = "/run/secrets"
CONFIG_TARGET = f"{SECRETS_DIR}/config.yaml"
KEYS_TARGET = f"{SECRETS_DIR}/airpods-clients.json"
ENV_PREFIX = f"{SECRETS_DIR}/env."
USAGE_DIR = "/var/lib/airpods"
# The client whose key Open WebUI sends when it goes through the gateway (`via_gateway`).
WEBUI_CLIENT = "open_webui"
REMOTE_KEYS = "remote_keys"  # the `deferred` setting: remotes' keys read from the environment
# Inside the container every key lives under a name airpods picks, never one the user wrote:
# remote number N's key (read at `start` from the user's `api_key_env`) is exported as
# AIRPODS_REMOTE_KEY_N, so no remote can name the master key or a local server's key
# (AIRPODS_LOCAL_KEY_N). The loader refuses `api_key_env` names in these namespaces too
# (gateway_schema.RESERVED_PREFIXES).
REMOTE_KEY_PREFIX = "AIRPODS_REMOTE_KEY_"
# Exports each /run/secrets/env.NAME file as NAME, then becomes LiteLLM (same PID).
ENTRY_SCRIPT = (
    'for f in /run/secrets/env.*; do [ -f "$f" ] || continue; '
    'export "${f#/run/secrets/env.}=$(cat "$f")"; done; '
    'exec litellm --config /run/secrets/config.yaml --host 0.0.0.0 --port "$1"'
)
