"""Open WebUI: a chat UI wired to every enabled OpenAI-style backend (llama-server) and Ollama."""

from __future__ import annotations

from typing import Any

from airpods.kinds.base import Kind, instance_defaults


class OpenWebUI(Kind):
    name = "open-webui"

    def defaults(self, service: str) -> dict[str, Any]:
        return {
            **instance_defaults(service),
            "image": "ghcr.io/open-webui/open-webui:main",
            # Signs its sessions; generated once and kept so logins survive restarts.
            "generated_secrets": ["WEBUI_SECRET_KEY"],
            # Its start script changes file ownership and user.
            "cap_add": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID"],
            "ports": [{"host": 3000, "container": 8080}],
            "volumes": {
                "data": {"source": "airpods_webui_data", "target": "/app/backend/data",
                         "mode": "rw"},
            },
            "gpu": {"enabled": False, "force_cpu": True},
            # First boot downloads embedding models and can take minutes.
            "health": {"path": "/health", "expected_status": 200, "timeout_s": 600,
                       "interval_s": 1.0},
            "env": {
                "OPENAI_API_BASE_URLS": "{{ openai_backends | map(attribute='url') | join(';') }}",
                "OPENAI_API_KEYS": "{{ openai_backends | map(attribute='api_key') | join(';') }}",
                # Per connection, by index: llama-server is "llama.cpp" to Open WebUI, which then
                # shows each model's load state and can unload a router's models.
                "OPENAI_API_CONFIGS": (
                    "{% for b in openai_backends %}{{ '{' if loop.first }}"
                    "\"{{ loop.index0 }}\": {\"provider\": \"{{ b.provider }}\"}"
                    "{{ '}' if loop.last else ', ' }}{% endfor %}"
                ),
                "ENABLE_OPENAI_API": "True",
                "ENABLE_OLLAMA_API": "{{ 'True' if ollama_backends else 'False' }}",
                "OLLAMA_BASE_URL": "{{ ollama_backends[0].url if ollama_backends else '' }}",
                # Without this, settings saved in its database silently win over these.
                "ENABLE_PERSISTENT_CONFIG": "False",
            },
        }
