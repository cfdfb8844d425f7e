"""Load airpods' configuration: built-in defaults, then the user file, then the environment.

Layers, later wins:

1. the built-in defaults (`default_config_path()`: shipped in the wheel, or `config/airpods.toml`
   in a source checkout) — they document every setting;
2. the user file: `--config PATH` / `AIRPODS_CONFIG`, else `config.toml` in the platform config
   directory (`$XDG_CONFIG_HOME/airpods/config.toml` on Linux). It holds only the keys it
   changes and may add whole new services (`[services.llamacpp-large]`);
3. environment overrides:
   - `AIRPODS_ACCELERATOR` sets `runtime.accelerator` (auto, cpu, cuda, rocm, vulkan).

`runtime.accelerator` is read before templates (host detection needs it, and templates need
the host), so it must be a plain value, not a template.

Tables merge key by key; arrays and scalars replace. Then templates are rendered (see
`airpods.config.templates`), `env` values that are (or render to) an empty string are dropped
(so `OLLAMA_BASE_URL` disappears while Ollama is disabled, and a user file can remove a default
variable with `NAME = ""`), and the result is validated. Every failure is one `ConfigError`
naming the file, line (when it can be found) and TOML key path that caused it. Files are read
by airpods.config.files: regular files of at most 4 MiB only (/dev/null reads as empty), and a
leading UTF-8 BOM is ignored.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airpods.config.cross_checks import cross_service_problems
from airpods.config.files import (  # noqa: F401  (read_text, parse_layer...: importable here)
    Layer,
    parse_layer,
    read_optional_text,
    read_text,
)
from airpods.config.kind_checks import config_model, kind_problems, missing_keys, other_kinds_keys
from airpods.config.problems import (  # noqa: F401  (find_line, key_lines: importable here)
    depth,
    find_line,
    key_lines,
    located,
    origin,
    pydantic_problem,
    secret_error,
    set_secret_problem,
)
from airpods.config.replicas import expand as expand_replicas
from airpods.config.schema import ENV_KEY_RE, AirpodsConfig, is_service_name
from airpods.errors import ConfigError, TemplateError
from airpods.gpu import REQUESTS as _ACCELERATOR_CHOICES
from airpods.host import HostFacts
from airpods.keys import KeyPath, Problem
from airpods.paths import ENV_OVERRIDES, default_config_path, user_config_path
from airpods.record import field, record
from airpods.secrets import SecretStore


@record
class LoadedConfig:
    """The configuration in effect, and where it came from."""

    config: AirpodsConfig  # validated, templates resolved
    user_path: Path  # the user file in effect (it may not exist)
    raw: dict[str, Any]  # the merged tree before templates, as plain Python values
    host: HostFacts
    files: tuple[Path, ...] = ()  # the files actually read, defaults first
    overrides: tuple[str, ...] = ()  # the environment variables that overrode keys
    # service -> {"image" / "images": where that key was set}, for `--dry-run`'s "why".
    image_origins: dict[str, dict[str, str]] = field(default_factory=dict)


class _Problems(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems[0].message)
        self.problems = problems


# --- loading ----------------------------------------------------------------------------------


def load_config(
    user_path: Path | None = None,
    *,
    host: HostFacts | None = None,
    environ: Mapping[str, str] | None = None,
    secrets: SecretStore | None = None,
) -> LoadedConfig:
    """Load, layer, resolve and validate. An explicit `user_path` must exist.

    `host` skips detection (tests); `environ` replaces os.environ for the overrides.
    """
    path = user_path if user_path is not None else user_config_path()
    text = read_optional_text(path)
    if user_path is not None and text is None:
        raise ConfigError(
            "file not found",
            file=str(path),
            hint="create it with `airpods config init`, or fix --config / AIRPODS_CONFIG",
        )
    return load_config_text(path, text, host=host, environ=environ, secrets=secrets)


def load_config_text(
    user_path: Path,
    text: str | None,
    *,
    host: HostFacts | None = None,
    environ: Mapping[str, str] | None = None,
    secrets: SecretStore | None = None,
) -> LoadedConfig:
    """Like load_config, with the user file's content given (None: no user file).

    This is how an edit is validated before it is written.
    """
    defaults = default_config_path()
    layers = [parse_layer(defaults, read_text(defaults))]
    files = [defaults]
    if text is not None:
        layers.append(parse_layer(user_path, text))
        files.append(user_path)
    raw: dict[str, Any] = {}
    for layer in layers:
        raw = deep_merge(raw, layer.data)
    env_layers = _env_layers(os.environ if environ is None else environ)
    if env_layers:
        # An override must not hide a bad value in a file from `config validate`.
        try:
            _requested_accelerator(raw)
        except _Problems as exc:
            raise located(exc.problems, layers) from None
    layers.extend(env_layers)
    for layer in env_layers:
        raw = deep_merge(raw, layer.data)
    # Each service starts from its kind's defaults: the least specific layer of all.
    try:
        kind_layer = _kind_defaults_layer(raw)
    except _Problems as exc:
        raise located(exc.problems, layers) from None
    layers.insert(0, kind_layer)
    raw = deep_merge(kind_layer.data, raw)
    missing = missing_keys(raw)
    if missing:
        raise located(missing, layers) from None
    image_origins = _honour_specific_image(raw, layers)
    try:
        _fill_generated_secrets(raw, secrets if secrets is not None else SecretStore(), layers)
        config, facts = _resolve_and_validate(raw, host)
    except _Problems as exc:
        raise located(exc.problems, layers) from None
    overrides = tuple(layer.label.lstrip("$") for layer in env_layers)
    return LoadedConfig(
        config, user_path, raw, facts, tuple(files), overrides, image_origins
    )


KIND_LAYER_LABEL = "the built-in kind defaults"


def _kind_defaults_layer(raw: Mapping[str, Any]) -> Layer:
    """What each service's kind gives a new instance (pod, image, health, command_args...)."""
    from airpods import kinds

    services = raw.get("services")
    data: dict[str, Any] = {}
    for name, svc in services.items() if isinstance(services, dict) else ():
        if not isinstance(svc, dict) or not is_service_name(name):
            continue  # validation reports a service that is not a table, or a bad name
        kind = svc.get("kind", kinds.DEFAULT_KIND)
        if kinds.looks_like_llama_server(svc):  # never silently generic
            raise _Problems([Problem(
                ("services", name),
                "looks like a llama-server (llama.cpp image or a .gguf model) but has no kind, "
                "so it would run as a generic container, left out of Open WebUI",
                'add kind = "llama-server" (or kind = "generic" to keep it plain)',
            )])
        if kind not in kinds.names():  # before templates: the defaults depend on it
            raise _Problems([Problem(
                ("services", name, "kind"),
                f"unknown kind {kind!r}",
                f"use one of: {', '.join(kinds.names())}",
            )])
        data[name] = kinds.get(kind).defaults(name)
    return Layer(KIND_LAYER_LABEL, {"services": data} if data else {})


def _honour_specific_image(
    raw: dict[str, Any], layers: list[Layer]
) -> dict[str, dict[str, str]]:
    """An `images.X` set by a less specific layer than `image` no longer applies.

    Otherwise a user's `image` would lose to the built-in `images.cpu`: the more specific
    layer wins, and a user's `image` with no `images` of their own applies to every
    accelerator. Returns, per service, where `image` and each `images.X` kept were set.
    """
    origins: dict[str, dict[str, str]] = {}
    services = raw.get("services")
    for name, svc in services.items() if isinstance(services, dict) else ():
        if not isinstance(svc, dict):
            continue
        image_layer = _setter(("services", name, "image"), layers)
        found = {"image": layers[image_layer].label} if image_layer is not None else {}
        images = svc.get("images")
        for accelerator in list(images) if isinstance(images, dict) else ():
            layer = _setter(("services", name, "images", accelerator), layers)
            if layer is None:
                continue
            if image_layer is not None and layer < image_layer:
                del images[accelerator]
            else:
                found[f"images.{accelerator}"] = layers[layer].label
        origins[name] = found
    return origins


def _setter(path: KeyPath, layers: list[Layer]) -> int | None:
    """The index of the last layer that sets `path` itself, or None."""
    found = None
    for index, layer in enumerate(layers):
        if depth(layer.data, path) == len(path):
            found = index
    return found


def _env_layers(environ: Mapping[str, str]) -> list[Layer]:
    layers = []
    for variable, path in ENV_OVERRIDES.items():
        value = environ.get(variable, "").strip()
        if value:
            data: Any = value
            for part in reversed(path):
                data = {part: data}
            layers.append(Layer(f"${variable}", data))
    return layers


def _fill_generated_secrets(raw: dict[str, Any], store: SecretStore, layers: list[Layer]) -> None:
    """Give each `generated_secrets` variable its kept value, before templates read env.

    The store is asked only for valid service and variable names (they become a file's path):
    validation reports any other as the config problem it is. A secret that cannot be read is
    one ConfigError naming the setting that asked for it.
    """
    services = raw.get("services")
    if not isinstance(services, dict):
        return
    for name, svc in services.items():
        if isinstance(svc, dict) and is_service_name(name):
            _fill_client_keys(name, svc, store, layers)
        wanted = svc.get("generated_secrets") if isinstance(svc, dict) else None
        if not isinstance(wanted, list) or not is_service_name(name):
            continue  # validation reports the wrong type or name
        env = svc.setdefault("env", {})
        if not isinstance(env, dict):
            continue
        for index, var in enumerate(wanted):
            if _is_name(ENV_KEY_RE, var) and var not in env:
                try:
                    env[var] = store.get(name, var)
                except (OSError, UnicodeDecodeError) as exc:
                    raise secret_error(
                        exc, store.path(name, var), ("services", name, "generated_secrets", index),
                        layers,
                    ) from None


def _fill_client_keys(
    name: str, svc: dict[str, Any], store: SecretStore, layers: list[Layer]
) -> None:
    """A gateway's `clients.NAME` gets a key generated once and kept (0600); the kept key of a
    client no longer declared is deleted when the store saves (revoked for good: the name,
    added again, gets a new key)."""
    from airpods.kinds.gateway_schema import CLIENT_NAME_RE, client_variable

    if not _takes(svc, "clients"):
        return  # validation says `clients` is another kind's key
    clients = svc.get("clients")
    declared = set()
    for client, table in clients.items() if isinstance(clients, dict) else ():
        if not _is_name(CLIENT_NAME_RE, client) or not isinstance(table, dict):
            continue  # validation reports a bad name or type
        var = client_variable(client)
        if "key" in table:
            raise _Problems([Problem(
                ("services", name, "clients", client, "key"),
                "a client key does not belong in the config file",
                f"remove it: airpods generates the key once and keeps it in "
                f"{store.path(name, var)} (write your own there to choose it)",
            )])
        declared.add(var)
        try:
            table["key"] = store.get(name, var)
        except (OSError, UnicodeDecodeError) as exc:
            raise secret_error(
                exc, store.path(name, var), ("services", name, "clients", client), layers
            ) from None
    try:
        kept = store.names(name)
    except OSError as exc:
        raise secret_error(exc, store.root / name, ("services", name, "clients"),
                           layers) from None
    for var in kept:
        if var.startswith("CLIENT_") and var not in declared:
            store.drop(name, var)


def _takes(svc: dict[str, Any], key: str) -> bool:
    """Whether the service's kind is one that has `key` (its own table, OwnsKeys.config_tables)."""
    from airpods.config.kind_checks import key_owners, raw_kind

    return raw_kind(svc) in key_owners().get(key, ())


def _is_name(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge recursively; anything else in `override` replaces. Inputs are not changed."""
    merged = {key: copy.deepcopy(value) for key, value in base.items()}
    for key, value in override.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _resolve_and_validate(
    raw: dict[str, Any], host: HostFacts | None
) -> tuple[AirpodsConfig, HostFacts]:
    from pydantic import ValidationError

    from airpods.config.templates import resolve_tree

    requested = _requested_accelerator(raw)
    if host is None:
        from airpods.config.tiers import with_auto_model
        from airpods.host import detect_host

        host = with_auto_model(detect_host(requested))
    try:
        resolved = resolve_tree(raw, host)
    except TemplateError as exc:
        raise _Problems([Problem(exc.path, exc.message, exc.hint)]) from None
    _drop_empty_env(resolved)
    model = config_model()  # the shared schema and the keys the kinds add to it
    try:
        config = model.model_validate(resolved)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        not_here = other_kinds_keys(resolved)
        raise _Problems([pydantic_problem(error, model, not_here) for error in errors]) from None
    problems = [*cross_service_problems(config), *kind_problems(config)]
    if not problems:  # each checked once as written, then the copies `replicas` asks for
        config, problems = expand_replicas(config)
    if problems:
        raise _Problems(problems)
    return config, host


def _requested_accelerator(raw: dict[str, Any]) -> str:
    # Checked before detection, which must only ever see a valid choice.
    runtime = raw.get("runtime")
    value = runtime.get("accelerator", "auto") if isinstance(runtime, dict) else "auto"
    if value not in _ACCELERATOR_CHOICES:
        raise _Problems([Problem(("runtime", "accelerator"), f"unknown accelerator {value!r}",
                                 f"use one of: {', '.join(_ACCELERATOR_CHOICES)}")])
    return str(value)


def _drop_empty_env(resolved: dict[str, Any]) -> None:
    """Drop env values that are (or rendered to) "". A generated secret set to "" would run the
    service without its key: that, and a key with whitespace inside, is a problem instead."""
    from airpods.secrets import remember, tree_secret_values

    remember(tree_secret_values(resolved))  # error messages from here on mask these
    problems = []
    services = resolved.get("services")
    for name, svc in services.items() if isinstance(services, dict) else ():
        env = svc.get("env") if isinstance(svc, dict) else None
        if not isinstance(env, dict):
            continue
        generated = svc.get("generated_secrets")
        for var in generated if isinstance(generated, list) else ():
            problem = set_secret_problem(name, var, env.get(var))
            if problem is not None:
                problems.append(problem)
        for key in [k for k, v in env.items() if v == ""]:
            del env[key]
    if problems:
        raise _Problems(problems)
