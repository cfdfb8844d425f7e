"""The gateway: LiteLLM's proxy, one OpenAI endpoint in front of every local model.

Every enabled model server (`served_models`: a llama-server's alias, a router's preset ids)
becomes a gateway model at its in-network URL with its key; `remotes` add models elsewhere, and
`fallbacks` send a local model's requests to remotes, in order, when local cannot answer.
Private models (and requests carrying `X-Airpods-Private: 1`) never leave: the guard module
shipped beside the config (gateway_files/airpods_guard.py) enforces it inside LiteLLM.
`escalation` adds an `auto` model routed by difficulty (gateway_escalation.py).

What reaches the container, all as Podman secrets (type=mount: `podman inspect` never shows
them, their content is in the config hash, so an edit recreates the container):
- /run/secrets/config.yaml: LiteLLM's config, rendered here from the TOML; no key in it: keys
  are `os.environ/NAME`;
- /run/secrets/airpods_*.py: the modules airpods ships (auth + private lane, usage records);
- /run/secrets/env.NAME: one file a key (llama-servers', the master key, remotes'); the entry
  script exports them before it starts LiteLLM, so the keys live in that process only;
- /run/secrets/airpods-clients.json: sha256 of each accepted key -> client name ("master").

Rendering (config.yaml and checks) is in airpods/kinds/gateway_config.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airpods.kinds.base import Backend, Kind, Reader, instance_defaults, service_url
from airpods.kinds.capabilities import Defers, HasApi, JoinsBackends, OwnsKeys, Renders
from airpods.kinds.gateway_names import (  # noqa: F401 (gateway.X is their public name)
    CONFIG_TARGET,
    ENTRY_SCRIPT,
    ENV_PREFIX,
    IMAGE,
    KEYS_TARGET,
    LITELLM_VERSION,
    MASTER_VARIABLE,
    PORT,
    REMOTE_KEY_PREFIX,
    REMOTE_KEYS,
    SECRETS_DIR,
    USAGE_DIR,
    WEBUI_CLIENT,
)
from airpods.record import replace

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from airpods.config.schema import AirpodsConfig, ServiceConfig
    from airpods.host import HostFacts
    from airpods.kinds.base import HostPath, Memory
    from airpods.spec import ContainerSpec



def usage_host_dir(service: str) -> Path:
    """Where the gateway's usage records live on this host (bind-mounted read-write)."""
    from airpods.paths import user_dir

    return user_dir("data") / "gateway" / service


class Gateway(Kind, HasApi, OwnsKeys, Renders, Defers, JoinsBackends):
    name = "gateway"
    local_build = "containers/python-service/build.sh litellm"
    # Open WebUI with `via_gateway = true` takes this list instead of `openai_backends`.
    backend_list = "gateway_backends"

    def defaults(self, service: str) -> dict[str, Any]:
        return {
            **instance_defaults(service),
            "image": IMAGE,
            # The master key: generated once, kept 0600, mounted as a file (never in inspect).
            "generated_secrets": [MASTER_VARIABLE],
            "ports": [{"host": PORT, "container": PORT}],
            "volumes": {
                "usage": {"source": str(usage_host_dir(service)), "target": USAGE_DIR,
                          "mode": "rw"},
            },
            "gpu": {"enabled": False, "force_cpu": True},
            "health": {"path": "/health/liveliness", "expected_status": 200, "timeout_s": 180,
                       "interval_s": 1.0},
            "env": {
                # Else LiteLLM fetches its model cost map from the internet at every start.
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                # LiteLLM's aiohttp transport caches DNS answers for 300 s; a llama-server
                # container that is recreated gets a new address, and the gateway would dial
                # the old one (3 s per try for ARP to fail) for 5 minutes.
                "AIOHTTP_TTL_DNS_CACHE": "1",
                "AIRPODS_USAGE_FILE": f"{USAGE_DIR}/usage.jsonl",
                "AIRPODS_GATEWAY_CLIENTS": KEYS_TARGET,
            },
        }

    def backend(self, service: str, read: Reader) -> Backend:
        """The gateway as Open WebUI's one connection, with the key of the client named
        WEBUI_CLIENT (so its requests are counted, and revoked, as that client's)."""
        key = read(("clients", WEBUI_CLIENT, "key"), "")
        return Backend(service, service_url(service, read, "/v1"), str(key or ""))

    def api_key(self, spec: ContainerSpec) -> str | None:
        for secret in spec.secret_files:
            if secret.target == ENV_PREFIX + MASTER_VARIABLE:
                return secret.value
        return spec.env.get(MASTER_VARIABLE)

    def wire(
        self, spec: ContainerSpec, svc: ServiceConfig, config: AirpodsConfig, host: HostFacts
    ) -> ContainerSpec:
        from airpods.kinds import gateway_config

        return gateway_config.wire(spec, svc, config)

    def config_tables(self) -> dict[str, Any]:
        from airpods.kinds import gateway_schema

        return gateway_schema.config_tables()

    def config_problems_in(
        self, service: str, config: AirpodsConfig
    ) -> list[tuple[tuple[str | int, ...], str, str | None]]:
        from airpods.kinds import gateway_config

        return gateway_config.problems(service, config)

    def start_problems(self, spec: ContainerSpec, environ: Mapping[str, str]) -> list[str]:
        from airpods.kinds import gateway_config, gateway_peers

        keyed = [("remote", "remotes", r, var) for r, var, _inner in
                 gateway_config.remote_key_variables(spec)]
        keyed += [("peer", "peers", p, var) for p, var, _inner in
                  gateway_peers.key_variables(spec)]
        return [
            f"{spec.service}: {what} {name!r} needs the environment variable {var} "
            f"(services.{spec.service}.{table}.{name}.api_key_env), which is not set: "
            f"export {var}=... before `airpods start`"
            for what, table, name, var in keyed if not environ.get(var, "").strip()
        ]

    def start_warnings(self, spec: ContainerSpec, environ: Mapping[str, str]) -> list[str]:
        """Each peer that does not answer now: one line (the gateway starts without it)."""
        from airpods.kinds import gateway_peers

        return gateway_peers.start_warnings(spec, environ)

    def settle(self, spec: ContainerSpec, host_path: HostPath, memory: Memory) -> ContainerSpec:
        """At start: the remotes' keys from the environment (as mounted files)."""
        import os

        if REMOTE_KEYS not in spec.deferred:
            return spec
        return with_remote_keys(spec, os.environ)

    def prepare_host(self, spec: ContainerSpec) -> None:
        """The usage directory, made (0700) so Podman can bind-mount it."""
        import os

        for mount in spec.mounts:
            if mount.is_bind and mount.target == USAGE_DIR:
                os.makedirs(mount.source, mode=0o700, exist_ok=True)

    def for_export(self, spec: ContainerSpec, environ: Mapping[str, str]) -> ContainerSpec:
        """The remotes' keys travel as secrets in the export too (no directory is made)."""
        if REMOTE_KEYS not in spec.deferred:
            return spec
        return with_remote_keys(spec, environ)


def with_remote_keys(spec: ContainerSpec, environ: Mapping[str, str]) -> ContainerSpec:
    """`spec` with each remote's key, read from the user's variable in `environ`, as a mounted
    file under airpods' own name for it (env.AIRPODS_REMOTE_KEY_N)."""
    from airpods.kinds import gateway_config, gateway_peers
    from airpods.spec import SecretFile, sealed

    ours = (ENV_PREFIX + REMOTE_KEY_PREFIX, ENV_PREFIX + gateway_peers.PEER_KEY_PREFIX)
    files = [f for f in spec.secret_files if not f.target.startswith(ours)]
    keyed = [*gateway_config.remote_key_variables(spec), *gateway_peers.key_variables(spec)]
    for _name, var, inner in keyed:
        value = environ.get(var, "").strip()
        if value:
            files.append(SecretFile(
                name=f"airpods-{spec.service}-env-{inner.lower().replace('_', '-')}",
                target=ENV_PREFIX + inner, value=value,
            ))
    deferred = tuple(d for d in spec.deferred if d != REMOTE_KEYS)
    return sealed(replace(spec, secret_files=tuple(files), deferred=deferred))
