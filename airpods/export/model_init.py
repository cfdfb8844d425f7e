"""The Deployment's optional initContainer (`export kube --model-init`): it downloads a service's
`model_source` into its volume when the file is missing."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any

from airpods.errors import UsageError
from airpods.spec import ContainerSpec

HF_ENDPOINT = "https://huggingface.co"

# The initContainer's script: download only when the model is missing, through a partial file
# (never visible as a model) and a rename. `${VAR%/*}` rather than `$(dirname ...)`: Kubernetes
# expands `$(NAME)` in command lines.
MODEL_INIT_SCRIPT = """\
set -eu
if [ -s "$MODEL_PATH" ]; then echo "model present: $MODEL_PATH"; exit 0; fi
mkdir -p "${MODEL_PATH%/*}"
part="$MODEL_PATH.partial"
echo "downloading $MODEL_URL to $MODEL_PATH"
if command -v curl >/dev/null 2>&1; then curl -fL --retry 5 -C - -o "$part" "$MODEL_URL"
else wget -c -O "$part" "$MODEL_URL"; fi
mv "$part" "$MODEL_PATH"
"""


def hf_url(source: str, endpoint: str = HF_ENDPOINT) -> str:
    """`hf://ORG/REPO/PATH.gguf`, `ORG/REPO/PATH.gguf` or an http(s) URL -> a download URL."""
    if source.startswith(("http://", "https://")):
        return source
    ref = source.removeprefix("hf://")
    parts = ref.split("/", 2)
    if len(parts) < 3 or not parts[2].endswith(".gguf") or ":" in ref:
        raise UsageError(
            f"model_source {source!r} names no file",
            hint="--model-init needs hf://ORG/REPO/FILE.gguf (the ORG/REPO:QUANT form is "
            "resolved by `airpods models pull`, which needs the hub)",
        )
    org, repo, path = parts
    return f"{endpoint.rstrip('/')}/{org}/{repo}/resolve/main/{path}"


def model_init(
    spec: ContainerSpec, source: str, volumes: Mapping[str, str], security: dict[str, Any]
) -> dict[str, Any]:
    from airpods.models.store import model_location

    volume, path = model_location(spec)
    target = next(m.target for m in spec.mounts if m.source == volume and not m.is_bind)
    return {
        "name": "model-init",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", MODEL_INIT_SCRIPT],
        "env": [
            {"name": "MODEL_URL",
             "value": hf_url(source, os.environ.get("HF_ENDPOINT") or HF_ENDPOINT)},
            {"name": "MODEL_PATH", "value": posixpath.join(target, path)},
        ],
        # The only writable mount of the model volume: the server itself mounts it read-only.
        "volumeMounts": [{"name": volumes[volume], "mountPath": target}],
        "securityContext": security,
    }
