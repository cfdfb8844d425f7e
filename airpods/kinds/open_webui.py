"""Open WebUI: a chat UI wired to every enabled OpenAI-style backend (llama-server) and Ollama."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airpods.kinds.base import Kind, instance_defaults
from airpods.kinds.capabilities import JoinsBackends, OwnsKeys
from airpods.kinds.image_pins import OPEN_WEBUI

if TYPE_CHECKING:
    from airpods.config.schema import AirpodsConfig

GATEWAY_LIST = "gateway_backends"
# The backends Open WebUI connects to, as a template expression about the service itself.
_CONNECTIONS = f"({GATEWAY_LIST} if via_gateway else openai_backends)"


def _joined(attribute: str) -> str:
    return f"{{{{ {_CONNECTIONS} | map(attribute='{attribute}') | join(';') }}}}"


class OpenWebUI(Kind, OwnsKeys):
    name = "open-webui"
    local_build = "containers/python-service/build.sh open-webui"

    def defaults(self, service: str) -> dict[str, Any]:
        return {
            **instance_defaults(service),
            "image": OPEN_WEBUI.ref,  # the release the tests run, pinned (image_pins)
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
            # true: the gateway is its one OpenAI connection (its URL, the key of the gateway's
            # client `open_webui`) instead of one connection per llama-server.
            "via_gateway": False,
            "env": {
                "OPENAI_API_BASE_URLS": _joined("url"),
                "OPENAI_API_KEYS": _joined("api_key"),
                # Per connection, by index: llama-server is "llama.cpp" to Open WebUI, which then
                # shows each model's load state and can unload a router's models.
                "OPENAI_API_CONFIGS": (
                    f"{{% for b in {_CONNECTIONS} %}}{{{{ '{{' if loop.first }}}}"
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

    def config_tables(self) -> dict[str, Any]:
        from pydantic import Field

        # true: the gateway is its one OpenAI connection instead of one per llama-server.
        return {"via_gateway": (bool, Field(default=False))}

    def config_problems_in(
        self, service: str, config: AirpodsConfig
    ) -> list[tuple[tuple[str | int, ...], str, str | None]]:
        """`via_gateway` needs an enabled gateway, and each gateway a client key for it."""
        from airpods.kinds import registry as kinds
        from airpods.kinds.gateway import WEBUI_CLIENT

        svc = config.services[service]
        if not (svc.enabled and svc.via_gateway):
            return []
        gateways = [name for name, other in config.services.items() if other.enabled
                    and getattr(kinds.capable(other.kind, JoinsBackends), "backend_list", None)
                    == GATEWAY_LIST]
        if not gateways:
            return [(("services", service, "via_gateway"), "no enabled gateway to go through",
                     "enable one: [services.gateway] enabled = true; or set via_gateway = false")]
        return [
            (("services", name, "clients"), f"{service} goes through this gateway "
             f"(via_gateway) with the key of its client {WEBUI_CLIENT!r}, which is not declared",
             f"add [services.{name}.clients.{WEBUI_CLIENT}]; its key is generated once")
            for name in gateways if WEBUI_CLIENT not in config.services[name].clients
        ]
