"""Ollama: a model store in its volume, an OpenAI-compatible API at /v1, wired into Open WebUI."""

from __future__ import annotations

from typing import Any

from airpods.kinds.base import Backend, Kind, Reader, instance_defaults, service_url
from airpods.kinds.capabilities import JoinsBackends
from airpods.kinds.image_pins import OLLAMA, OLLAMA_ROCM


class Ollama(Kind, JoinsBackends):
    name = "ollama"
    holds_models = True
    loading_on_503 = True
    backend_list = "ollama_backends"

    def defaults(self, service: str) -> dict[str, Any]:
        return {
            **instance_defaults(service),
            "image": OLLAMA.ref,
            "images": {"rocm": OLLAMA_ROCM.ref},
            "ports": [{"host": 11434, "container": 11434}],
            "volumes": {
                "data": {"source": f"airpods_{service}_data", "target": "/root/.ollama",
                         "mode": "rw"},
            },
            "gpu": {"enabled": True, "force_cpu": False},
            "health": {"path": "/api/tags", "expected_status": 200, "timeout_s": 120,
                       "interval_s": 1.0},
            "env": {"OLLAMA_HOST": "0.0.0.0:{{ ports[0].container }}"},
        }

    def backend(self, service: str, read: Reader) -> Backend:
        return Backend(service, service_url(service, read))
