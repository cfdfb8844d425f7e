"""llama.cpp's llama-server: one GGUF model from the model volume, an OpenAI API at /v1.

`mode = "router"` serves every model of the volume (or the `models` presets) from one endpoint,
loading them on demand: airpods/kinds/llama_router.py.

The API key rule, written once: `--api-key` (command_args.api_key) wins over the LLAMA_API_KEY
variable, as in llama-server itself; either may hold several comma-separated keys, and clients
(Open WebUI, readiness) use the first. At render time the key moves out of the environment and
argv into a Podman secret mounted as a file (`--api-key-file`), so `podman inspect` never
shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airpods.kinds import capabilities as can
from airpods.kinds import llama_router
from airpods.kinds.argv import ALIAS_FLAGS, CTX_FLAGS, MODEL_FLAGS, arg_value, as_int, drop_option
from airpods.kinds.base import (
    Backend,
    HostPath,
    Kind,
    Memory,
    ModelCheck,
    ModelRouter,
    Reader,
    ServedModel,
    StatusContext,
    instance_defaults,
    service_url,
)
from airpods.kinds.image_pins import LLAMA_CPP, LLAMA_CPP_RELEASE  # noqa: F401 (re-exported)
from airpods.record import replace

if TYPE_CHECKING:
    from airpods.config.schema import ServiceConfig
    from airpods.host import HostFacts
    from airpods.spec import ContainerSpec, ServingSettings

KEY_VARIABLE = "LLAMA_API_KEY"
KEY_FLAG = "--api-key"
KEY_FILE_FLAG = "--api-key-file"
KEY_FILE_TARGET = "/run/secrets/llama-api-key"
# A known-good llama.cpp release, pinned by tag and digest (airpods.kinds.image_pins says where
# each was seen published): the floating `server` tags change under a running setup (flags,
# router mode). `doctor` names the release.
IMAGES = {accel: pin.ref for accel, pin in LLAMA_CPP.items()}
MODEL_VOLUME = "airpods_llamacpp_models"
_ROUTER = "(mode | default('single')) == 'router'"  # in a template, about the service itself


class LlamaServer(Kind, can.ServesModels, can.HasApi, can.RoutesModels, can.AddsStatus,
                  can.OwnsKeys, can.Renders, can.Defers, can.JoinsBackends):
    name = "llama-server"
    local_build = "containers/llama-server/build.sh"
    holds_models = True
    loading_on_503 = True
    backend_list = "openai_backends"
    modes = ("single", "router")

    def defaults(self, service: str) -> dict[str, Any]:
        from airpods.fit import LLAMA_DEFAULT_CTX

        return {
            **instance_defaults(service),
            "image": IMAGES["cpu"],
            "images": dict(IMAGES),
            "generated_secrets": [KEY_VARIABLE],
            "ports": [{"host": 8080, "container": 8080}],
            # Every instance shares the one model volume, read-only: servers never write it.
            "volumes": {"models": {"source": MODEL_VOLUME, "target": "/models", "mode": "ro"}},
            "gpu": {"enabled": True, "force_cpu": False},
            # Big models take minutes to load; a container that exits ends the wait at once.
            "health": {"path": "/health", "expected_status": 200, "timeout_s": 900,
                       "interval_s": 1.0},
            "command_args": {
                # A router (mode = "router") serves many models and needs no default_model.
                "model": f"{{{{ '' if {_ROUTER} else '/models/' ~ default_model }}}}",
                "alias": f"{{{{ '' if {_ROUTER} else default_model | replace('.gguf', '') }}}}",
                "ctx_size": LLAMA_DEFAULT_CTX,
                "host": "0.0.0.0",
                "port": "{{ ports[0].container }}",
                "n_gpu_layers": "{{ 'all' if host.accelerator != 'cpu' else 0 }}",
                "threads": "{{ host.physical_cores }}",
            },
        }

    def missing_keys(self, svc: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        """A single-model server whose model path or alias still come from default_model needs
        one: no silent download of a model nobody named (the built-in llamacpp names one)."""
        args = svc.get("command_args")
        uses = [v for v in (args.get(k) for k in ("model", "alias")) if isinstance(v, str)
                and "default_model" in v] if isinstance(args, dict) else []
        if "default_model" in svc or svc.get("mode", "single") != "single" or not uses:
            return []
        return [("default_model", "a file in its model volume",
                 'set default_model = "FILE.gguf" in its table (`airpods models list` shows '
                 'the files), or command_args.model and alias, or mode = "router"')]

    def model_path(self, spec: ContainerSpec) -> str | None:
        if llama_router.is_router(spec):  # many models: the first preset's file, if any
            return next(iter(llama_router.preset_files(spec).values()), None)
        return spec.serving.model if spec.serving else None

    def model_files(self, spec: ContainerSpec) -> tuple[str, ...]:
        if llama_router.is_router(spec):
            return tuple(llama_router.preset_files(spec).values())
        return super().model_files(spec)

    def model_dir(self, spec: ContainerSpec) -> str | None:
        if llama_router.is_router(spec) and spec.serving and spec.serving.models_dir:
            return llama_router.spec_models_dir(spec)  # every GGUF there, named by its stem
        return None

    def context_size(self, spec: ContainerSpec) -> int | None:
        return spec.serving.ctx_size if spec.serving else None

    def model_id(self, spec: ContainerSpec) -> str | None:
        if llama_router.is_router(spec):
            return None  # `status` lists its models instead
        return next(iter(expected_model_ids(spec)), None)

    def api_key(self, spec: ContainerSpec) -> str | None:
        for secret in spec.secret_files:
            if secret.target == KEY_FILE_TARGET:  # one key a line
                return next(iter(secret.value.split()), None)
        return first_key(spec.serving.api_keys if spec.serving else "") or None

    def ready_check(self, spec: ContainerSpec) -> ModelCheck:
        if llama_router.is_router(spec):
            return ModelCheck("/models", llama_router.preload_ids(spec), self.api_key(spec),
                              states=llama_router.load_states)
        return ModelCheck("/v1/models", expected_model_ids(spec), self.api_key(spec))

    def configure(self, spec: ContainerSpec, svc: ServiceConfig, host: HostFacts) -> ContainerSpec:
        return llama_router.configure(replace(spec, serving=serving(spec, svc)), svc, host)

    def config_tables(self) -> dict[str, Any]:
        from airpods.kinds import llama_config

        return llama_config.config_tables()

    def config_problems(
        self, svc: ServiceConfig
    ) -> list[tuple[tuple[str | int, ...], str, str | None]]:
        from airpods.kinds import llama_checks

        return llama_checks.config_problems(svc)

    def required_files(self, spec: ContainerSpec) -> tuple[tuple[str, str], ...]:
        """Router mode: each preset's file (a missing one would only fail at its first use),
        and without presets each preloaded id's GGUF in the models dir (the router names
        files by their stem)."""
        return llama_router.required_files(spec)

    def router(self, spec: ContainerSpec) -> ModelRouter | None:
        if not llama_router.is_router(spec) or not spec.ports:
            return None
        return llama_router.Router(spec, spec.ports[0].url, self.api_key(spec))

    def status_fields(self, spec: ContainerSpec, ctx: StatusContext) -> dict[str, Any]:
        """A router's models: [{"id", "state", "file"}], asked from it while it runs (none while
        it does not answer: `health` says why), else its presets, unloaded."""
        router = self.router(spec)
        if router is None:
            return {}
        if not ctx.running:
            prefix = router.directory.rstrip("/") + "/"
            return {"models": [{"id": i, "state": "unloaded", "file": path.removeprefix(prefix)}
                               for i, path in llama_router.preset_files(spec).items()]}
        from airpods.errors import AirpodsError

        try:
            return {"models": [{"id": m.id, "state": m.state, "file": m.file}
                               for m in router.models(timeout_s=ctx.timeout_s)]}
        except AirpodsError:
            return {"models": []}

    def backend(self, service: str, read: Reader) -> Backend:
        flag = read(("command_args", "api_key"), None)
        if flag is None:
            flag = read(("command_args", "api-key"), None)
        if isinstance(flag, list):  # a repeated flag: llama-server keeps the last
            flag = flag[-1] if flag else None
        if isinstance(flag, bool):
            flag = None
        keys = choose_keys(flag, read(("env", KEY_VARIABLE), None))
        return Backend(service, service_url(service, read, "/v1"), first_key(keys), "llama.cpp")

    def served_models(self, spec: ContainerSpec, svc: ServiceConfig) -> tuple[ServedModel, ...]:
        """Single mode: its alias; router mode: each preset id (a router that serves the whole
        models dir names its models only once it runs: it offers its preloads)."""
        if not spec.ports:
            return ()
        host = spec.network_aliases[0] if spec.network_aliases else spec.pod
        base = f"http://{host}:{spec.ports[0].container_port}/v1"
        key = self.api_key(spec) or ""
        if llama_router.is_router(spec):
            ids = [p.id for p in spec.serving.presets] if spec.serving else []
            private = {i for i, preset in svc.models.items() if preset.private}
            return tuple(ServedModel(i, base, key, svc.private or i in private) for i in ids)
        ids = expected_model_ids(spec)
        return (ServedModel(ids[0], base, key, svc.private),) if ids else ()

    def settle(self, spec: ContainerSpec, host_path: HostPath, memory: Memory) -> ContainerSpec:
        if "models_max" in spec.deferred:
            return llama_router.settle_models_max(spec, host_path, memory)
        return spec

    def finalize(self, spec: ContainerSpec) -> ContainerSpec:
        """Move the API key from env/argv into a mounted Podman secret (`--api-key-file`)."""
        from airpods.spec import SecretFile

        keys = spec.serving.api_keys if spec.serving else ""
        if not keys:
            return spec
        lines = "\n".join(k.strip() for k in keys.split(",") if k.strip()) + "\n"
        secret = SecretFile(
            name=f"airpods-{spec.service}-llama-api-key", target=KEY_FILE_TARGET, value=lines
        )
        env = {k: v for k, v in spec.env.items() if k != KEY_VARIABLE}
        command = (*drop_option(spec.command, KEY_FLAG), KEY_FILE_FLAG, KEY_FILE_TARGET)
        return replace(
            spec,
            env=env,
            command=command,
            secret_env=spec.secret_env - {KEY_VARIABLE},
            secret_files=(*spec.secret_files, secret),
        )


def serving(spec: ContainerSpec, svc: ServiceConfig) -> ServingSettings:
    """Its settings, typed, from its resolved `command_args` and environment (the values its
    argv is rendered from): what every hook here reads."""
    from airpods.spec import ServingSettings

    args, env = svc.command_args, spec.env
    keys = choose_keys(arg_value(args, (KEY_FLAG,)), env.get(KEY_VARIABLE))
    if svc.mode == "router":
        return llama_router.serving(svc, keys, env)
    ctx = arg_value(args, CTX_FLAGS) or env.get("LLAMA_ARG_CTX_SIZE")
    return ServingSettings(
        model=arg_value(args, MODEL_FLAGS) or env.get("LLAMA_ARG_MODEL") or None,
        alias=arg_value(args, ALIAS_FLAGS) or env.get("LLAMA_ARG_ALIAS") or None,
        ctx_size=as_int(ctx), api_keys=keys,
    )


def choose_keys(flag_value: Any, env_value: Any) -> str:
    """The keys llama-server checks: the flag's value over the variable's; "" for none."""
    for value in (flag_value, env_value):
        if value is not None and str(value).strip():
            return str(value)
    return ""


def first_key(keys: str) -> str:
    return keys.split(",")[0].strip() if keys else ""


def expected_model_ids(spec: ContainerSpec) -> tuple[str, ...]:
    """Model ids llama-server lists in /v1/models for this spec; () = any model will do.

    Named after its alias (comma-separated aliases allowed), else after its model path (its
    basename is accepted too), as `serving` took them from `--alias` / `--model` or
    LLAMA_ARG_ALIAS / LLAMA_ARG_MODEL.
    """
    alias = spec.serving.alias if spec.serving else None
    if alias:
        return tuple(a.strip() for a in alias.split(",") if a.strip())
    model = spec.serving.model if spec.serving else None
    if model:
        base = model.rstrip("/").rsplit("/", 1)[-1]
        return (model,) if base == model else (model, base)
    return ()
