"""Which values are secret, and how they are shown: one definition for every command.

Light on purpose (no pydantic): `status`, `start --dry-run` and `config show` all use it.

A value is secret when its env name contains KEY, SECRET, TOKEN, PASSWORD or PASSWD, when the
service lists the name in `generated_secrets` (whatever it is called), or when it follows a
command-line flag whose name matches the same words (`--api-key X`, `--hf-token=X`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

# Env keys (and flag names) whose values are never shown (dry-run, status, config show).
SECRET_KEY_RE = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD)", re.IGNORECASE)
MASK = "****"


def is_secret_key(key: str, extra: Collection[str] = ()) -> bool:
    """True for a name matching SECRET_KEY_RE, or one of `extra` (a service's generated_secrets)."""
    return key in extra or SECRET_KEY_RE.search(key) is not None


def secret_env_keys(env: Iterable[str], generated: Iterable[Any] = ()) -> frozenset[str]:
    """The names in `env` whose values are secret, given the service's `generated_secrets`."""
    extra = frozenset(name for name in generated if isinstance(name, str))
    return frozenset(key for key in env if is_secret_key(key, extra))


def _shown(value: Any) -> bool:
    # An empty (or absent) value hides nothing: showing it says "no secret set".
    return value is not None and value != ""


def mask_env(env: Mapping[str, Any], secret_keys: Collection[str] = frozenset()) -> dict[str, Any]:
    """A copy of `env` with the (non-empty) values of secret keys replaced by MASK."""
    return {k: (MASK if is_secret_key(k, secret_keys) and _shown(v) else v) for k, v in env.items()}


def mask_tree(tree: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a resolved config tree with the secret values of each service masked.

    Masked: `env` values of secret names (each service's `generated_secrets` are secret
    whatever their names), and `command_args` values of secret flags (`api_key`). Only those
    tables change; the rest of the tree is shared with `tree`, not copied.
    """
    masked = dict(tree)
    services = tree.get("services")
    if isinstance(services, Mapping):
        masked["services"] = {
            name: _mask_service(svc) if isinstance(svc, Mapping) else svc
            for name, svc in services.items()
        }
    return masked


def _mask_service(svc: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(svc)
    env = svc.get("env")
    if isinstance(env, Mapping):
        generated = svc.get("generated_secrets")
        extra = secret_env_keys(env, generated if isinstance(generated, list) else ())
        out["env"] = mask_env(env, extra)
    args = svc.get("command_args")
    if isinstance(args, Mapping):
        out["command_args"] = {
            k: _mask_arg(v) if SECRET_KEY_RE.search(k) else v for k, v in args.items()
        }
    return out


def _mask_arg(value: Any) -> Any:
    if isinstance(value, list):
        return [_mask_arg(v) for v in value]
    # A boolean is a switch (`--flag` or nothing), not a value.
    return MASK if _shown(value) and not isinstance(value, bool) else value


def _secret_flag(item: str) -> bool:
    """`--api-key`, `--hf-token`, `-hf-token`: a flag whose name says its value is secret.

    A `...-file` flag (`--api-key-file`) names where the secret is, not the secret.
    """
    name = item.lstrip("-")
    return (
        item.startswith("-")
        and SECRET_KEY_RE.search(name) is not None
        and not name.endswith(("-file", "_file"))
    )


def mask_argv(argv: Iterable[str]) -> list[str]:
    """A copy of `argv` with the values of secret flags masked: `--api-key ****`, `--k=****`.

    The item after a secret flag is masked whatever it looks like (a value may start with
    '-'): a boolean flag with a secret-sounding name costs one hidden item, never a leak.
    """
    out: list[str] = []
    mask_next = False
    for item in argv:
        if mask_next:
            out.append(MASK if item != "" else item)
            mask_next = False
            continue
        flag, eq, value = item.partition("=")
        if eq and _secret_flag(flag):
            out.append(f"{flag}={MASK}" if value else item)
        else:
            out.append(item)
            mask_next = not eq and _secret_flag(item)
    return out
