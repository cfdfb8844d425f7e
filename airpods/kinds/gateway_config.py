"""The gateway's LiteLLM config.yaml and key files, rendered from the TOML; its config checks.

Checked against LiteLLM 1.106.12's source:
- `general_settings.custom_auth: module.fn` replaces key checking: `fn(request, api_key)` gets the
  Bearer token without "Bearer " and returns a UserAPIKeyAuth (airpods_guard.py);
- `router_settings.fallbacks: [{group: [groups...]}]` are tried when a group's call fails
  (connection refused included); a request with `disable_fallbacks: true` gets none;
- `model_info.id` names the deployment; the proxy answers with it in `x-litellm-model-id` and
  the backend's URL in `x-litellm-model-api-base`;
- `litellm_params.input_cost_per_token` / `output_cost_per_token` price a deployment (and are
  registered into the cost map on every request: main.py `_register_custom_pricing_for_request`);
  the same keys in `model_info` are registered once, when the router is built;
- modules named in the config (`airpods_guard.guard`) are loaded from the config's directory.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from airpods.kinds.base import ServedModel
from airpods.kinds.capabilities import ServesModels
from airpods.record import replace
from airpods.replica_names import group

if TYPE_CHECKING:
    from airpods.config.schema import AirpodsConfig, ServiceConfig
    from airpods.host import HostFacts
    from airpods.spec import ContainerSpec

Path = tuple[str | int, ...]
FILES_PACKAGE = "airpods.kinds.gateway_files"
GUARD_MODULE = "airpods_guard"
USAGE_MODULE = "airpods_usage"
# Local first: no retry of a refused connection (it only adds latency before the fallback),
# and a failed local server is skipped for `cooldown_time` seconds, then tried again.
ROUTER_SETTINGS = {"num_retries": 0, "allowed_fails": 1, "cooldown_time": 10, "timeout": 600}
# Local costs nothing. Priced in model_info, which the router registers once at start: a price
# in litellm_params is registered again on every request, and each registration makes LiteLLM
# rebuild its whole cost-map index (about 2.7 ms of CPU per request, bench/bench_gateway.py).
LOCAL_PRICE = {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0}
# A stopped server's old address never answers, and LiteLLM's connect timeout is the whole
# request's: the guard bounds a local connect (one lost SYN, resent at 1 s; bench/README).
LOCAL_CONNECT_S = 1.5
REMOTE_NO_KEY = "airpods-no-key"  # OpenAI clients insist on some key; a keyless remote ignores it
REMOTE_KEYS_ENV = "AIRPODS_REMOTE_ENV_NAMES"
# Several local deployments of one model (`replicas`): each is cooled down at its first failure
# (model_info.allowed_fails = 0: the others serve meanwhile), and a request that fails on one is
# retried on the others, so a dead replica costs no answer: twice the number of other
# deployments, since least-busy may pick a dead one again before its cooldown is seen (it
# takes the first of equally idle deployments).
SIBLING_RETRIES = 2
# Each hop is one more failed call before an answer; past a few, a chain is a mistake.
MAX_FALLBACK_DEPTH = 8


# --- what the gateway serves --------------------------------------------------------------------


def local_models(
    service: str, config: AirpodsConfig, host: HostFacts | None = None
) -> list[tuple[str, ServedModel]]:
    """(service, model) for every model of every enabled model server, in config order."""
    from airpods.kinds import registry as kinds
    from airpods.kinds.render import render_service

    host = host or _neutral_host()
    found = []
    for name, svc in config.services.items():
        kind = kinds.capable(svc.kind, ServesModels)
        if name == service or not svc.enabled or kind is None:
            continue
        peer = render_service(name, svc, config, host)
        found += [(name, model) for model in kind.served_models(peer, svc)]
    return found


def _neutral_host() -> HostFacts:
    # Model names, ports and keys do not depend on the host: checks need no detection.
    from airpods.host import HostFacts

    return HostFacts(accelerator="cpu", reason="", physical_cores=1, logical_cores=1)


def key_variable(index: int) -> str:
    return f"AIRPODS_LOCAL_KEY_{index}"


def remote_key_slots(svc: ServiceConfig) -> dict[str, tuple[str, str]]:
    """{remote: (variable inside the container, the user's variable on the host)} for each
    remote with an `api_key_env`, numbered in config order. The container's name is always
    airpods' own (AIRPODS_REMOTE_KEY_N): a user's name never reaches LiteLLM's environment, so it
    cannot shadow the master key or a local key there."""
    from airpods.kinds.gateway_names import REMOTE_KEY_PREFIX

    keyed = [(name, spec.api_key_env) for name, spec in svc.remotes.items() if spec.api_key_env]
    return {name: (f"{REMOTE_KEY_PREFIX}{i}", var) for i, (name, var) in enumerate(keyed)}


def model_list(svc: ServiceConfig, local: list[tuple[str, ServedModel]]) -> list[dict[str, Any]]:
    """LiteLLM's model_list: local models (cost 0), then each remote's models (its prices)."""
    keys: dict[str, str] = {}  # key value -> variable, so one server's key is passed once
    entries = []
    copies = Counter(model.id for _service, model in local)
    for service, model in local:
        params: dict[str, Any] = {"model": f"openai/{model.id}", "api_base": model.api_base}
        siblings = copies[model.id] - 1
        if siblings:
            params["num_retries"] = SIBLING_RETRIES * siblings
        if model.api_key:
            var = keys.setdefault(model.api_key, key_variable(len(keys)))
            params["api_key"] = f"os.environ/{var}"
        else:
            params["api_key"] = REMOTE_NO_KEY
        entries.append({"model_name": model.id, "litellm_params": params, "model_info": {
            "id": f"local:{service}:{model.id}", "airpods_backend": "local",
            "airpods_service": service, "airpods_private": model.private,
            "airpods_connect_s": LOCAL_CONNECT_S, **LOCAL_PRICE,
            **({"allowed_fails": 0} if siblings else {}),
        }})
    slots = remote_key_slots(svc)
    for remote, spec in svc.remotes.items():
        key = f"os.environ/{slots[remote][0]}" if remote in slots else REMOTE_NO_KEY
        for name in spec.models:
            params = {"model": f"openai/{name}", "api_base": spec.base_url, "api_key": key,
                      "timeout": spec.timeout_s, "stream_timeout": spec.timeout_s,
                      "input_cost_per_token": (spec.price_in or 0.0) / 1e6,
                      "output_cost_per_token": (spec.price_out or 0.0) / 1e6}
            entries.append({"model_name": name, "litellm_params": params, "model_info": {
                "id": f"remote:{remote}:{name}", "airpods_backend": "remote",
                "airpods_remote": remote, "airpods_private": False,
                # No price set: its records say so, and `usage` shows "cost unknown", not $0.
                "airpods_priced": spec.priced,
            }})
    return entries


def local_keys(local: list[tuple[str, ServedModel]]) -> dict[str, str]:
    """{variable: key} as model_list names them."""
    keys: dict[str, str] = {}
    for _service, model in local:
        if model.api_key and model.api_key not in keys:
            keys[model.api_key] = key_variable(len(keys))
    return {var: key for key, var in keys.items()}


def shipped_modules() -> dict[str, str]:
    """{module name: source} of the modules airpods ships for the container (usage may be
    absent until that part lands: the config lists only what exists)."""
    from importlib import resources  # not at import: `status` loads this module

    from airpods.kinds.gateway_peers import PEERS_MODULE

    out = {}
    for module in (GUARD_MODULE, USAGE_MODULE, PEERS_MODULE):
        path = resources.files(FILES_PACKAGE) / f"{module}.py"
        if path.is_file():
            out[module] = path.read_text(encoding="utf-8")
    return out


def render_config(
    svc: ServiceConfig, local: list[tuple[str, ServedModel]], modules: list[str]
) -> dict[str, Any]:
    from airpods.kinds import gateway_escalation as esc
    from airpods.kinds.gateway_peers import PEERS_MODULE

    callbacks = [f"{GUARD_MODULE}.guard"]
    if USAGE_MODULE in modules:
        callbacks.append(f"{USAGE_MODULE}.usage_logger")
    auto = esc.model_entry(svc, local)
    extra = esc.router_settings(svc, local)
    fallbacks = [{model: list(chain)} for model, chain in svc.fallbacks.items()]
    if PEERS_MODULE in modules:
        callbacks.append(f"{PEERS_MODULE}.peers")
    return {
        "model_list": [*model_list(svc, local), *([auto] if auto else [])],
        "router_settings": {
            **ROUTER_SETTINGS, **extra,
            "routing_strategy": svc.routing_strategy,
            "fallbacks": [*fallbacks, *extra.get("fallbacks", [])],
        },
        "litellm_settings": {"callbacks": callbacks, "drop_params": True},
        "general_settings": {
            "master_key": "os.environ/LITELLM_MASTER_KEY",
            "custom_auth": f"{GUARD_MODULE}.user_api_key_auth",
        },
    }


def client_keys(svc: ServiceConfig, master: str) -> dict[str, str]:
    """sha256(key) -> client name, the master key as "master"."""
    out = {_digest(master): "master"} if master else {}
    for name, client in svc.clients.items():
        if client.key:
            out[_digest(client.key)] = name
    return out


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def wire(
    spec: ContainerSpec, svc: ServiceConfig, config: AirpodsConfig, host: HostFacts | None = None
) -> ContainerSpec:
    """The gateway's container: entry script, config files and key files."""
    from airpods.kinds import gateway_escalation as esc
    from airpods.kinds import gateway_names as g
    from airpods.kinds import gateway_peers
    from airpods.spec import ConfigFile, SecretFile

    local = local_models(spec.service, config, host)
    modules = shipped_modules()
    if not svc.peers:  # the poller ships only where there are peers to list
        modules.pop(gateway_peers.PEERS_MODULE, None)
    # JSON is YAML: every string quoted, so no model name is ever read back as another type.
    text = "# written by airpods from its config: edit the TOML, not this file\n" + json.dumps(
        render_config(svc, local, list(modules)), indent=2) + "\n"
    configs = [ConfigFile(f"airpods-{spec.service}-config", g.CONFIG_TARGET, text)]
    configs += [ConfigFile(f"airpods-{spec.service}-{m.replace('_', '-')}",
                           f"{g.SECRETS_DIR}/{m}.py", source) for m, source in modules.items()]
    if svc.peers:
        configs.append(ConfigFile(f"airpods-{spec.service}-peers", gateway_peers.PEERS_FILE,
                                  gateway_peers.peers_file(svc)))
    master = spec.env.get(g.MASTER_VARIABLE, "")
    env_keys = {**local_keys(local), **({g.MASTER_VARIABLE: master} if master else {})}
    secrets = [SecretFile(f"airpods-{spec.service}-env-{var.lower().replace('_', '-')}",
                          g.ENV_PREFIX + var, value) for var, value in env_keys.items()]
    secrets.append(SecretFile(f"airpods-{spec.service}-keys", g.KEYS_TARGET,
                              json.dumps(client_keys(svc, master), sort_keys=True)))
    port = spec.ports[0].container_port if spec.ports else g.PORT
    env = {k: v for k, v in spec.env.items() if k != g.MASTER_VARIABLE}
    # Names only (no value): which variables `start` must find set and mount as files, in
    # remote_key_slots' order (the Nth pair fills AIRPODS_REMOTE_KEY_N).
    remote_vars = ",".join(f"{r}={var}" for r, (_, var) in remote_key_slots(svc).items())
    if remote_vars:
        env[REMOTE_KEYS_ENV] = remote_vars
    env.update(gateway_peers.container_env(svc, g.USAGE_DIR))
    deferred = (*spec.deferred, g.REMOTE_KEYS)
    auto = esc.model_entry(svc, local)  # its rule in one line: `start --dry-run` shows it
    notes = spec.notes
    if auto:
        notes = (*notes, f"escalation {auto['model_info']['airpods_rule']}")
    return replace(
        spec, env=env, notes=notes, secret_env=spec.secret_env - {g.MASTER_VARIABLE},
        entrypoint=("/bin/sh", "-c", g.ENTRY_SCRIPT, "airpods-gateway"), command=(str(port),),
        config_files=(*spec.config_files, *configs), secret_files=(*spec.secret_files, *secrets),
        deferred=deferred,
    )


def remote_key_variables(spec: ContainerSpec) -> list[tuple[str, str, str]]:
    """(remote, the user's variable, the container's variable) for each remote whose key comes
    from the environment."""
    from airpods.kinds.gateway_names import REMOTE_KEY_PREFIX

    text = spec.env.get(REMOTE_KEYS_ENV, "")
    pairs = [item.split("=", 1) for item in text.split(",") if "=" in item]
    return [(remote, var, f"{REMOTE_KEY_PREFIX}{i}") for i, (remote, var) in enumerate(pairs)]


# --- checks ---------------------------------------------------------------------------------------


def problems(service: str, config: AirpodsConfig) -> list[tuple[Path, str, str | None]]:
    """What only every service in view shows: names, fallbacks, cycles, private models."""
    from airpods.kinds.gateway_peers import problems as peer_problems

    svc = config.services[service]
    if not svc.enabled:
        return []
    base: Path = ("services", service)
    out: list[tuple[Path, str, str | None]] = [*peer_problems(service, svc)]
    owners: dict[str, Path] = {}
    private: set[str] = set()
    try:
        local = local_models(service, config)
    except Exception:  # noqa: BLE001 - a peer that cannot render is reported as its own problem
        return []
    for name, model in local:
        path: Path = ("services", name)
        if model.id in owners and owners[model.id][:2] == ("services", group(config.services,
                                                                                name)):
            continue  # another replica of the same server: one more deployment of the model
        if model.id in owners:
            out.append((path, f"model name {model.id!r} is also served by "
                        f"{_where(owners[model.id])}",
                        "every gateway model needs its own name: change command_args.alias"))
        owners.setdefault(model.id, path)
        if model.private:
            private.add(model.id)
    generated = {var: name for name, peer in config.services.items()
                 for var in peer.generated_secrets}
    for remote, spec in svc.remotes.items():
        if spec.api_key_env in generated:
            out.append(((*base, "remotes", remote, "api_key_env"),
                        f"{spec.api_key_env} is a key airpods generates (services."
                        f"{generated[spec.api_key_env]}.generated_secrets)",
                        "name your own variable that holds this remote's key"))
        for i, name in enumerate(spec.models):
            path = (*base, "remotes", remote, "models", i)
            if name in owners:
                out.append((path, f"model name {name!r} is also served by {_where(owners[name])}",
                            "every gateway model needs its own name"))
            owners.setdefault(name, path)
    for model, chain in svc.fallbacks.items():
        path = (*base, "fallbacks", model)
        if model not in owners:
            out.append((path, f"unknown model {model!r}", _known(owners)))
        elif model in private:
            out.append((path, f"model {model!r} is private: it never falls back",
                        "remove its fallbacks, or its `private = true`"))
        for i, target in enumerate(chain):
            if target not in owners:
                out.append(((*path, i), f"unknown model {target!r}", _known(owners)))
            if target == model or chain.count(target) > 1:
                out.append(((*path, i), f"model {target!r} cannot be its own fallback or "
                            "appear twice", None))
    from airpods.kinds.gateway_escalation import problems as escalation_problems

    out += escalation_problems(service, svc, local)
    if not out:
        graph = {m: list(c) for m, c in svc.fallbacks.items()}
        from airpods.graphs import find_cycle

        cycle = find_cycle(graph)
        if cycle:
            out.append(((*base, "fallbacks", cycle[0]),
                        f"fallback cycle: {' -> '.join(cycle)}",
                        "fallbacks must end at a model that has none"))
        elif (deep := _too_deep(graph)) is not None:
            out.append(((*base, "fallbacks", deep),
                        f"model {deep!r} falls back more than {MAX_FALLBACK_DEPTH} models deep",
                        f"shorten the chain to at most {MAX_FALLBACK_DEPTH} hops"))
    return out


def _too_deep(graph: dict[str, list[str]]) -> str | None:
    """The first model whose fallback chain (graph acyclic) is over MAX_FALLBACK_DEPTH hops;
    walked bottom-up with an explicit stack, never recursively."""
    depth: dict[str, int] = {}
    for start in graph:
        stack = [start]
        while stack:
            node = stack[-1]
            waiting = [n for n in graph.get(node, []) if n not in depth]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            depth[node] = 1 + max((depth[n] for n in graph.get(node, [])), default=-1)
        if depth[start] > MAX_FALLBACK_DEPTH:
            return start
    return None


def _where(path: Path) -> str:
    from airpods.keys import format_key_path

    return format_key_path(path)


def _known(owners: dict[str, Path]) -> str:
    return f"gateway models: {', '.join(owners)}" if owners else "the gateway serves no model"
