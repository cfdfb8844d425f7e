"""llama-server's router mode: many GGUF models behind one endpoint, loaded on demand.

The router (llama-server without `--model`) lists models from `--models-dir` (each GGUF by its
file stem) and/or a preset INI (`--models-preset`), and runs each loaded model as a child
llama-server; `--models-max` evicts the least recently used one. Checked against the binary
built from the llama-cpp-python 0.3.36 source:

- the router's own argv is merged over EVERY model's preset (its `--ctx-size` would beat a
  preset's), so the router gets only what is its own (host, port, key, router flags) and the
  service's other `command_args` go into the INI's `[*]` section, which presets override;
- INI keys are flag names without dashes (`ctx-size`, `c`); one value a key (no repeats);
  `load-on-startup = true` loads a model when the router starts (at most `--models-max` of
  them, or the router refuses to start);
- GET /models: `{"data": [{"id", "status": {"value": unloaded|loading|loaded|sleeping,
  "args": [...], "failed": true, "exit_code": N}}]}`; POST /models/load and /models/unload
  take `{"model": ID}`; a failed load leaves `value` "unloaded" with `failed`.

Rendering is pure (no files, no Podman). The INI reaches the container as a mounted Podman
secret (ConfigFile): written atomically by Podman, read-only, and its content is part of the
config hash, so an edit recreates the container. HTTP (`Router`) imports httpx lazily.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airpods.kinds.argv import ALIAS_FLAGS, CTX_FLAGS, MODEL_FLAGS, arg_value, as_int
from airpods.kinds.base import RouterModel
from airpods.record import replace

if TYPE_CHECKING:
    from airpods.config.schema import ServiceConfig
    from airpods.host import HostFacts
    from airpods.kinds.base import HostPath, Memory
    from airpods.spec import ContainerSpec, ServingSettings

PRESET_TARGET = "/run/secrets/models-preset.ini"
DEFAULT_MODELS_DIR = "/models"
# Flags that stay on the router's own command line; everything else goes to `[*]`.
ROUTER_FLAGS = frozenset({
    "--host", "--port", "--api-key", "--api-key-file", "--models-dir", "--models-preset",
    "--models-max", "--models-autoload", "--no-models-autoload", "--sleep-idle-seconds",
})
Path = tuple[str | int, ...]


# --- rendering ----------------------------------------------------------------------------------


def models_dir(svc: ServiceConfig) -> str:
    """Where the model volume is mounted: the `models` volume, else where `--model` points."""
    volume = svc.volumes.get("models")
    if volume is not None:
        return volume.target.rstrip("/") or "/"
    for key in ("model", "m"):
        model = svc.command_args.get(key)
        if isinstance(model, str) and "/" in model:
            return posixpath.dirname(model) or "/"
    return DEFAULT_MODELS_DIR


def ini_key(key: str) -> str:
    """`ctx_size` -> `ctx-size` (the long flag without dashes, as llama-server's INI reads)."""
    from airpods.argv import flag_name

    return flag_name(key).lstrip("-")


def ini_lines(args: Mapping[str, Any]) -> list[str]:
    """`key = value` lines under the flag rules: true -> "true", false/None omitted."""
    lines = []
    for key, value in args.items():
        if value is False or value is None:
            continue
        lines.append(f"{ini_key(key)} = {'true' if value is True else value}")
    return lines


def _global_args(svc: ServiceConfig) -> dict[str, Any]:
    """The service's own command_args for `[*]`: without model, alias and router flags."""
    from airpods.argv import flag_name

    dropped = ROUTER_FLAGS | set(MODEL_FLAGS) | set(ALIAS_FLAGS)
    return {k: v for k, v in svc.command_args.items() if flag_name(k) not in dropped}


def render_ini(svc: ServiceConfig, directory: str) -> str:
    """The preset INI: `[*]`, then one section per model (and per preloaded file stem)."""
    out = ["; written by airpods from its config: edit the TOML, not this file", "[*]"]
    out += ini_lines(_global_args(svc))
    preload = set(svc.router.preload)
    for model_id, preset in svc.models.items():
        out += ["", f"[{model_id}]", f"model = {posixpath.join(directory, preset.file)}"]
        out += ini_lines(preset.command_args)
        if model_id in preload:
            out.append("load-on-startup = true")
    if not svc.models:  # --models-dir names each file by its stem: mark the preloaded ones
        for model_id in svc.router.preload:
            out += ["", f"[{model_id}]", "load-on-startup = true"]
    return "\n".join(out) + "\n"


def serving(svc: ServiceConfig, api_keys: str, env: Mapping[str, str]) -> ServingSettings:
    """The router's settings, typed: what `render_ini` and `configure` write, for the readers
    below (never parsed back from the INI or the argv)."""
    from airpods.spec import ServedPreset, ServingSettings

    directory = models_dir(svc)
    common = _own_ctx(_global_args(svc), None)
    preload = set(svc.router.preload)
    presets = tuple(
        ServedPreset(model_id, posixpath.join(directory, preset.file),
                     _own_ctx(preset.command_args, common), model_id in preload)
        for model_id, preset in svc.models.items()
    ) or tuple(ServedPreset(model_id, None, common, True) for model_id in svc.router.preload)
    return ServingSettings(
        ctx_size=as_int(env.get("LLAMA_ARG_CTX_SIZE")), api_keys=api_keys, router=True,
        models_dir=None if svc.models else directory, models_ctx_size=common, presets=presets,
    )


def _own_ctx(args: Mapping[str, Any], common: int | None) -> int | None:
    """A preset's own ctx_size as its INI section holds it (`ctx-size` before `c`), else the
    router's `[*]` one."""
    for flag in CTX_FLAGS:
        own = arg_value(args, (flag,))
        if own is not None:
            return as_int(own)
    return common


AUTO_NOTE = "router models_max: auto"


def auto_placeholder(svc: ServiceConfig) -> int:
    """What `models_max = "auto"` renders until `settle_models_max` reads the model files."""
    return max(1, len(svc.router.preload))


def settle_models_max(spec: ContainerSpec, host_path: HostPath, memory: Memory) -> ContainerSpec:
    """`models_max = "auto"`: as many of the largest models as fit together in memory (weights
    + f16 K/V cache at each preset's ctx_size), at least 1 and at least the preloads."""
    from airpods.fit import RAM_HEADROOM, VRAM_HEADROOM, gb
    from airpods.spec import sealed

    needs = _model_needs(spec, host_path)
    floor = max(1, len(preload_ids(spec)))
    on_gpu = spec.accelerator != "cpu" and memory.vram_total
    total = memory.vram_total if on_gpu else memory.ram_total
    if not needs or not total:
        why = "no model file to estimate" if not needs else "the memory size is unknown"
        count = floor
    else:
        budget = int(total * (1 - (VRAM_HEADROOM if on_gpu else RAM_HEADROOM)))
        count, used = 0, 0
        for need in sorted(needs, reverse=True):
            if used + need > budget:
                break
            count, used = count + 1, used + need
        where = "VRAM" if on_gpu else "RAM"
        why = (f"the {count} largest of {len(needs)} models need {gb(used)} of {gb(budget)} "
               f"({where} less headroom)")
        count = max(count, floor)
    argv = list(spec.command)
    argv[argv.index("--models-max") + 1] = str(count)
    notes = [n for n in spec.notes if AUTO_NOTE not in n]
    notes.append(f"{spec.service}: {AUTO_NOTE} = {count}: {why}")
    return sealed(replace(spec, command=tuple(argv), notes=tuple(notes),
                          deferred=tuple(d for d in spec.deferred if d != "models_max")))


def _model_needs(spec: ContainerSpec, host_path: HostPath) -> list[int]:
    """Bytes each model of the router needs when loaded (those whose header reads)."""
    from airpods.errors import AirpodsError
    from airpods.fit import effective_ctx, estimate
    from airpods.gguf_meta import read_meta

    serving = spec.serving
    if serving is None:
        return []
    files = [(p.file, p.ctx_size) for p in serving.presets if p.file]
    if not files:  # every GGUF of the models dir
        directory = host_path(spec_models_dir(spec))
        found = sorted(directory.glob("*.gguf")) if directory is not None else []
        files = [(f"{spec_models_dir(spec)}/{p.name}", serving.models_ctx_size) for p in found]
    needs = []
    for model, ctx in files:
        path = host_path(model)
        if path is None or not path.is_file():
            continue
        try:
            meta = read_meta(path)
        except (AirpodsError, OSError):
            continue
        needs.append(estimate(meta, path.stat().st_size, effective_ctx(ctx, meta)).total_bytes)
    return needs


def configure(spec: ContainerSpec, svc: ServiceConfig, host: HostFacts) -> ContainerSpec:
    """Router mode: the router's argv and the preset INI; single mode: `spec` unchanged."""
    if svc.mode != "router":
        return spec
    from airpods.argv import flag_name, render_args
    from airpods.spec import ConfigFile

    directory = models_dir(svc)
    own = {k: v for k, v in svc.command_args.items() if flag_name(k) in ROUTER_FLAGS}
    argv = render_args(own)
    if not svc.models:
        argv += ["--models-dir", directory]
    argv += ["--models-preset", PRESET_TARGET]
    notes = list(spec.notes)
    limit = svc.router.models_max
    deferred = spec.deferred
    if limit == "auto":  # decided from the model files, once Podman shows them: start, status
        limit = auto_placeholder(svc)
        deferred = (*deferred, "models_max")
        notes.append(f"{spec.service}: {AUTO_NOTE}: decided at start from the model files' "
                     f"memory estimate ({limit} until then)")
    argv += ["--models-max", str(limit)]
    if svc.router.idle_unload_s > 0:
        argv += ["--sleep-idle-seconds", str(svc.router.idle_unload_s)]
    preset = ConfigFile(
        name=f"airpods-{spec.service}-models-preset",
        target=PRESET_TARGET,
        value=render_ini(svc, directory),
    )
    return replace(
        spec,
        command=tuple(argv),
        config_files=(*spec.config_files, preset),
        notes=tuple(notes),
        deferred=deferred,
    )


# --- reading a rendered spec ---------------------------------------------------------------------


def is_router(spec: ContainerSpec) -> bool:
    return spec.serving is not None and spec.serving.router


def preload_ids(spec: ContainerSpec) -> tuple[str, ...]:
    presets = spec.serving.presets if spec.serving else ()
    return tuple(p.id for p in presets if p.load_on_startup)


def preset_files(spec: ContainerSpec) -> dict[str, str]:
    """{model id: its model path inside the container} for the presets that name a file."""
    presets = spec.serving.presets if spec.serving else ()
    return {p.id: p.file for p in presets if p.file}


def required_files(spec: ContainerSpec) -> tuple[tuple[str, str], ...]:
    """(what, path inside the container) of the files the router cannot start without."""
    files = preset_files(spec)
    found = [(f"the file of model {model_id!r}", path) for model_id, path in files.items()]
    if is_router(spec) and spec.serving and spec.serving.models_dir:
        directory = spec_models_dir(spec)
        found += [(f"the file of preloaded model {model_id!r}",
                   posixpath.join(directory, f"{model_id}.gguf"))
                  for model_id in preload_ids(spec) if model_id not in files]
    return tuple(found)


def spec_models_dir(spec: ContainerSpec) -> str:
    if spec.serving and spec.serving.models_dir:
        return spec.serving.models_dir
    files = list(preset_files(spec).values())
    return posixpath.dirname(files[0]) if files else DEFAULT_MODELS_DIR


# --- the router's API ----------------------------------------------------------------------------


def parse_models(payload: Any, directory: str = DEFAULT_MODELS_DIR) -> list[RouterModel]:
    """GET /models's body -> RouterModel per listed model (anything unexpected is skipped)."""
    out: list[RouterModel] = []
    data = payload.get("data") if isinstance(payload, dict) else None
    prefix = directory.rstrip("/") + "/"
    for entry in data if isinstance(data, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
        raw = str(status.get("value", ""))
        args = status.get("args") if isinstance(status.get("args"), list) else []
        code = status.get("exit_code")
        failed = bool(status.get("failed")) or (raw == "unloaded" and code not in (None, 0))
        state = "failed" if failed else {
            "loaded": "loaded", "sleeping": "unloaded", "loading": "loading",
            "downloading": "loading",
        }.get(raw, "unloaded")
        path = _model_arg([str(a) for a in args])
        out.append(RouterModel(
            id=entry["id"], state=state, file=path.removeprefix(prefix), args=tuple(args),
            exit_code=code if isinstance(code, int) else None, raw=raw,
        ))
    return out


def _model_arg(args: list[str]) -> str:
    """The model path in a child's argv as the router reports it (its reply, not our argv)."""
    path = ""
    for i, arg in enumerate(args):
        if arg in MODEL_FLAGS and i + 1 < len(args):
            path = args[i + 1]
        elif arg.startswith("--model="):
            path = arg.removeprefix("--model=")
    return path


def load_states(payload: Any) -> dict[str, tuple[str, str]]:
    """For readiness: {id: (loaded | loading | unloaded | failed, detail)}.

    A sleeping model has loaded (it unloads its weights when idle and wakes on a request).
    """
    out = {}
    for m in parse_models(payload):
        state = "loaded" if m.raw == "sleeping" else m.state
        detail = f"exit code {m.exit_code}" if state == "failed" and m.exit_code else ""
        out[m.id] = (state, detail)
    return out


class Router:
    """A running router's API: list, load and unload models, with the service's key."""

    def __init__(self, spec: ContainerSpec, base_url: str, api_key: str | None) -> None:
        self.spec = spec
        self.service = spec.service
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.directory = spec_models_dir(spec)

    def _request(self, method: str, path: str, body: Any = None, timeout_s: float = 5.0) -> Any:
        import httpx

        from airpods.errors import AirpodsError
        from airpods.http_clients import local_httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = self.base_url + path
        try:
            with local_httpx(timeout_s) as client:
                resp = client.request(method, url, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise AirpodsError(
                f"{self.service}: its router does not answer at {url} ({type(exc).__name__})",
                hint=f"is it running? airpods status {self.service}",
            ) from None
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code != 200:
            message = _error_text(data) or f"HTTP {resp.status_code}"
            raise AirpodsError(f"{self.service}: {method} {path}: {message}")
        return data

    def models(self, timeout_s: float = 5.0) -> list[RouterModel]:
        return parse_models(self._request("GET", "/models", timeout_s=timeout_s), self.directory)

    def presets(self) -> list[RouterModel]:
        prefix = self.directory.rstrip("/") + "/"
        return [RouterModel(id=i, state="unloaded", file=path.removeprefix(prefix))
                for i, path in preset_files(self.spec).items()]

    def load(self, model_id: str) -> None:
        self._request("POST", "/models/load", {"model": model_id})

    def unload(self, model_id: str) -> None:
        self._request("POST", "/models/unload", {"model": model_id})


def _error_text(data: Any) -> str:
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
    return ""
